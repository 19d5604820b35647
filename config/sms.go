package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// SMSProviderConfig is one entry of sms.providers: an SMS provider by name,
// its type, and that type's options.
//
// Config stays undecoded here: the options belong to the sender type, whose
// registry (factors/sms) decodes them strictly — config imports no other
// otpgate package. Load only checks that it is a mapping; the server decodes
// and checks it before it listens (cmd/otpgate openSender), reporting each
// problem by key like this package does.
type SMSProviderConfig struct {
	// Name is unique; routes and logs use it.
	Name string `yaml:"name"`
	// Type is the sender type: orange, twilio, webhook, outbox or log.
	Type string `yaml:"type"`
	// Config holds the type's options.
	Config PluginConfig `yaml:"config"`
}

// PluginConfig holds a plug-in's options as they were written, undecoded,
// for the plug-in's registry to decode strictly (with their line numbers).
type PluginConfig struct {
	Node *yaml.Node `yaml:"-"` // a mapping, or nil when absent
}

// UnmarshalYAML keeps the node.
func (p *PluginConfig) UnmarshalYAML(n *yaml.Node) error {
	p.Node = n
	return nil
}

// MarshalYAML writes the node back.
func (p PluginConfig) MarshalYAML() (any, error) {
	if p.Node == nil {
		return nil, nil
	}
	return p.Node, nil
}

// SMSBreakerConfig is the circuit breaker each provider has.
type SMSBreakerConfig struct {
	// Failures in a row after which a provider is skipped.
	Failures int `yaml:"failures"`
	// Cooldown is how long it is skipped before one message tries it again.
	Cooldown Duration `yaml:"cooldown"`
}

var (
	providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	routePrefix  = regexp.MustCompile(`^\+[1-9][0-9]{0,5}$`)
)

// validateSMSDelivery checks who sends the SMS: the development shorthand
// sms.sender, or the providers with their routes and breaker. required is
// false when the factor texts its codes itself (orange): then neither is
// needed.
func validateSMSDelivery(s SMSConfig, dev, required bool, errs *Errors) {
	switch {
	case len(s.Providers) > 0:
		if s.Sender != "" {
			errs.add("sms.sender", "must be empty when 'providers' is set, got '%s': 'sender' is a shorthand for one development sender", s.Sender)
		}
		validateSMSProviders(s, dev, errs)
	case s.Sender == "" && !required:
	case s.Sender == "" && !dev:
		errs.add("sms.providers", "is required outside --dev: list the SMS providers to send through (see 'Sending real SMS' in README.md), or set 'sender: outbox' for a test server that texts nobody")
	default:
		if oneOf(errs, "sms.sender", s.Sender, smsSenders) && s.Sender == "log" && !dev {
			errs.add("sms.sender", "must not be 'log' outside --dev: the log sender writes every code in clear to the logs; use 'providers', or 'outbox' for a test server")
		}
	}
	if len(s.Routes) > 0 && len(s.Providers) == 0 {
		errs.add("sms.routes", "needs 'providers': routes name providers")
	}
	between(errs, "sms.breaker.failures", s.Breaker.Failures, 1, 100)
	between(errs, "sms.breaker.cooldown", s.Breaker.Cooldown, seconds(1), hours(1))
}

func validateSMSProviders(s SMSConfig, dev bool, errs *Errors) {
	first := map[string]int{} // name → index of its first use
	for i, p := range s.Providers {
		key := func(option string) string { return fmt.Sprintf("sms.providers[%d].%s", i, option) }
		switch j, dup := first[p.Name]; {
		case p.Name == "":
			errs.add(key("name"), "is required: a short name like 'primary', used by routes and logs")
		case !providerName.MatchString(p.Name):
			errs.add(key("name"), "must be 1 to 32 lower-case letters, digits, '-' or '_', starting with a letter or digit, got '%s'", p.Name)
		case dup:
			errs.add(key("name"), "must be unique, got '%s' which sms.providers[%d] already uses", p.Name, j)
		default:
			first[p.Name] = i
		}
		switch {
		case p.Type == "":
			errs.add(key("type"), "is required: the sender type, e.g. 'orange', 'twilio' or 'webhook'")
		case p.Type == "log" && !dev:
			errs.add(key("type"), "must not be 'log' outside --dev: the log sender writes every code in clear to the logs")
		}
	}
	for _, prefix := range slices.Sorted(maps.Keys(s.Routes)) {
		key := "sms.routes." + prefix
		if prefix != "*" && !routePrefix.MatchString(prefix) {
			errs.add(key, "must be '*' or a calling-code prefix like '+33' or '+1'")
		}
		names := s.Routes[prefix]
		if len(names) == 0 {
			errs.add(key, "must list at least one provider name")
		}
		for j, name := range names {
			if _, ok := first[name]; !ok {
				errs.add(fmt.Sprintf("%s[%d]", key, j), "must name a provider of 'sms.providers', got '%s'", name)
			} else if slices.Index(names, name) != j {
				errs.add(fmt.Sprintf("%s[%d]", key, j), "names '%s' twice", name)
			}
		}
	}
}

// secretOption says whether a provider option may hold a secret, by its
// name: config cannot know each sender type's fields, so it redacts by rule.
func secretOption(name string) bool {
	name = strings.ToLower(name)
	if strings.HasSuffix(name, "_file") {
		return false
	}
	for _, word := range []string{"secret", "token", "password", "key"} {
		if strings.Contains(name, word) {
			return true
		}
	}
	return false
}

// redactNode returns a copy of a provider's options with the values of
// secret-looking options replaced by "REDACTED" and the passwords of URLs
// hidden.
func redactNode(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = redactNode(child)
	}
	if c.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(c.Content); i += 2 {
			k, v := c.Content[i], c.Content[i+1]
			switch {
			case v.Kind != yaml.ScalarNode || v.Value == "":
			case secretOption(k.Value):
				v.Value, v.Style = "REDACTED", 0
			case strings.Contains(v.Value, "://"):
				v.Value = redactURL(v.Value)
			}
		}
	}
	return &c
}
