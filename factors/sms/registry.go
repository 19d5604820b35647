package sms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"
	"gopkg.in/yaml.v3"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/storage"
)

// Config is the typed configuration of one sender type, decoded strictly from
// a provider's config block. Open builds the live sender; it does no network
// I/O (StartupCheck does, for senders that have one).
type Config interface {
	Open(deps Deps) (Sender, error)
}

// StartupChecker is implemented by senders that can prove at boot that their
// configuration works (credentials accepted, account reachable) without
// sending a message.
type StartupChecker interface {
	StartupCheck(ctx context.Context) error
}

// Deps is what a sender may take from the server that opens it.
type Deps struct {
	Logger *slog.Logger        // nil: slog.Default()
	Store  storage.OutboxStore // for the outbox sender
	// HTTPClient returns a client for one sender, which keeps it for every
	// request it makes. nil: NewHTTPClient.
	HTTPClient func() *http.Client
	Now        func() time.Time // nil: time.Now
	// Dev is true under --dev; the log sender refuses to open otherwise.
	Dev bool
	// Observer, if set, is told each provider's result for each message
	// (Setup.Open wraps every provider with Observe).
	Observer factors.Observer
	// Tracer, if set, runs each send in a span: the failover's, and one per
	// provider tried (Setup.Open wraps every provider with Trace).
	Tracer trace.Tracer
}

func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.HTTPClient == nil {
		d.HTTPClient = NewHTTPClient
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}

// types is the registry: each sender type name and a constructor of its
// config holding the defaults. It is built here, in one place, and never
// changed at run time.
var types = map[string]func() Config{
	"orange":  func() Config { return &OrangeConfig{BaseURL: OrangeBaseURL, Timeout: DefaultTimeout} },
	"twilio":  func() Config { return &TwilioConfig{BaseURL: TwilioBaseURL, Timeout: DefaultTimeout} },
	"webhook": func() Config { return &WebhookConfig{Timeout: DefaultTimeout} },
	"outbox":  func() Config { return &OutboxConfig{Size: DefaultOutboxSize} },
	"log":     func() Config { return &LogConfig{} },
}

// Types returns the sender type names, sorted.
func Types() []string { return slices.Sorted(maps.Keys(types)) }

// ProviderSpec is one entry of the configuration's provider list, its config
// block still undecoded.
type ProviderSpec struct {
	Key    string     // where the entry sits, for errors: "sms.providers[1]"
	Name   string     // unique, used by routes and logs: "primary"
	Type   string     // a name from Types()
	Config *yaml.Node // the config block; nil when absent
}

// Provider is a decoded ProviderSpec.
type Provider struct {
	Name   string
	Type   string
	Config Config
}

// checker is implemented by configs that validate their values once decoded.
// dev relaxes what --dev tolerates (plain http to any host, the log sender).
type checker interface {
	check(dev bool, ps *problems)
}

var providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// DecodeProvider decodes spec's config block strictly into its type's config
// and validates it. Every problem is a *Problem named after spec.Key.
func DecodeProvider(spec ProviderSpec, dev bool) (Provider, error) {
	ps := &problems{prefix: spec.Key}
	if !providerName.MatchString(spec.Name) {
		ps.add("name", "must be 1 to 32 lower-case letters, digits, '-' or '_', starting with a letter or digit, got '%s'", spec.Name)
	}
	newConfig, ok := types[spec.Type]
	if !ok {
		ps.add("type", "must be one of %s, got '%s'", quoteList(Types()), spec.Type)
		return Provider{}, ps.err()
	}
	cfg := newConfig()
	if _, ok := cfg.(interface{ devOnly() }); ok && !dev {
		ps.add("type", "must not be '%s' outside --dev: it writes every code in clear to the logs", spec.Type)
	}
	if err := DecodeStrict(spec.Config, joinKey(spec.Key, "config"), cfg); err != nil {
		ps.list = append(ps.list, err)
		return Provider{}, ps.err()
	}
	if c, ok := cfg.(checker); ok {
		sub := &problems{prefix: joinKey(spec.Key, "config")}
		c.check(dev, sub)
		ps.list = append(ps.list, sub.list...)
	}
	if err := ps.err(); err != nil {
		return Provider{}, err
	}
	return Provider{Name: spec.Name, Type: spec.Type, Config: cfg}, nil
}

// Setup is the whole SMS delivery configuration: providers in order of
// preference, optional routes by calling code, and the circuit breaker.
type Setup struct {
	Providers []ProviderSpec
	// Routes maps a calling-code prefix ("+33", "+1", "+3361") or "*" to the
	// names of the providers to try, in order. The longest matching prefix
	// wins; without routes every message tries Providers in order.
	Routes  map[string][]string
	Breaker Breaker
	// RoutesKey names the routes option in errors: "sms.routes".
	RoutesKey string
}

// Decode decodes and validates every provider and the routes, reporting
// every problem at once (joined *Problems). It opens nothing: it is what a
// configuration check runs.
func (s Setup) Decode(dev bool) ([]Provider, error) {
	var errs []error
	var out []Provider
	names := map[string]string{} // name → key of its first use
	for _, spec := range s.Providers {
		p, err := DecodeProvider(spec, dev)
		if err != nil {
			errs = append(errs, err)
		} else {
			out = append(out, p)
		}
		if first, dup := names[spec.Name]; dup && spec.Name != "" {
			errs = append(errs, &Problem{Key: joinKey(spec.Key, "name"), Msg: fmt.Sprintf("must be unique, got '%s' which %s already uses", spec.Name, first)})
		} else {
			names[spec.Name] = spec.Key
		}
	}
	if len(s.Providers) == 0 {
		errs = append(errs, errors.New("sms: no provider configured"))
	}
	errs = append(errs, checkRoutes(s.Routes, names, s.RoutesKey))
	if err := s.Breaker.check(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Open decodes the setup and opens every provider behind one failover sender.
func (s Setup) Open(deps Deps) (*Failover, error) {
	providers, err := s.Decode(deps.Dev)
	if err != nil {
		return nil, err
	}
	deps = deps.withDefaults()
	members := make([]Member, 0, len(providers))
	for _, p := range providers {
		sender, err := p.Config.Open(deps)
		if err != nil {
			return nil, fmt.Errorf("sms: provider %q (%s): %w", p.Name, p.Type, err)
		}
		members = append(members, Member{Name: p.Name, Type: p.Type, Sender: Trace(p.Name, Observe(p.Name, sender, deps.Observer), deps.Tracer)})
	}
	return NewFailover(members, FailoverOptions{Routes: s.Routes, Breaker: s.Breaker, Now: deps.Now, Logger: deps.Logger, Tracer: deps.Tracer})
}

var routeKey = regexp.MustCompile(`^\+[1-9][0-9]{0,5}$`)

func checkRoutes(routes map[string][]string, names map[string]string, key string) error {
	if key == "" {
		key = "routes"
	}
	var errs []error
	add := func(option, format string, args ...any) {
		errs = append(errs, &Problem{Key: joinKey(key, option), Msg: fmt.Sprintf(format, args...)})
	}
	for _, prefix := range slices.Sorted(maps.Keys(routes)) {
		if prefix != "*" && !routeKey.MatchString(prefix) {
			add(prefix, "must be '*' or a calling-code prefix like '+33' or '+1'")
		}
		list := routes[prefix]
		if len(list) == 0 {
			add(prefix, "must list at least one provider name")
		}
		for i, name := range list {
			if _, ok := names[name]; !ok {
				add(prefix, "names provider '%s' at [%d], which is not in the providers list", name, i)
			}
			if slices.Index(list, name) != i {
				add(prefix, "names provider '%s' twice", name)
			}
		}
	}
	return errors.Join(errs...)
}

func quoteList(list []string) string {
	s := ""
	for i, v := range list {
		if i > 0 {
			s += ", "
		}
		s += "'" + v + "'"
	}
	return s
}

// OutboxConfig opens the outbox sender (development and tests).
type OutboxConfig struct {
	Size int `yaml:"size"` // messages kept, newest first
}

func (c *OutboxConfig) check(_ bool, ps *problems) {
	if c.Size < 1 || c.Size > 10000 {
		ps.add("size", "must be between 1 and 10000, got '%d'", c.Size)
	}
}

// Open returns an *Outbox writing to deps.Store.
func (c *OutboxConfig) Open(deps Deps) (Sender, error) {
	if deps.Store == nil {
		return nil, errors.New("sms outbox: no store")
	}
	return NewOutbox(deps.Store, c.Size, deps.Now), nil
}

// LogConfig opens the log sender. It has no options.
type LogConfig struct{}

// devOnly marks the log sender: it writes every code in clear.
func (c *LogConfig) devOnly() {}

// Open returns a *Log writing to deps.Logger; it refuses outside --dev.
func (c *LogConfig) Open(deps Deps) (Sender, error) {
	if !deps.Dev {
		return nil, errors.New("sms log: the log sender writes codes in clear and is allowed only with --dev")
	}
	return NewLog(deps.Logger), nil
}
