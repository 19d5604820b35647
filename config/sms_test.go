package config

import (
	"slices"
	"strings"
	"testing"
)

const smsProviders = `
issuer: https://id.example.com
system_secret: ` + testSecret + `
sms:
  providers:
    - name: primary
      type: orange
      config:
        client_id: app
        client_secret: orange-hunter2
        sender_address: "tel:+33600000000"
    - name: backup
      type: webhook
      config:
        url: https://user:hook-hunter2@gw.example.com/sms
        secret: webhook-hunter2
  routes:
    "+33": [primary, backup]
    "*": [backup]
`

func TestSMSProvidersLoad(t *testing.T) {
	for _, dev := range []bool{false, true} {
		c, err := Load(writeFile(t, "otpgate.yaml", smsProviders), dev, env(map[string]string{
			"OTPGATE_SMS_BREAKER_FAILURES":     "5",
			"OTPGATE_SMS_SKIP_STARTUP_CHECK":   "true",
			"OTPGATE_SMS_BREAKER_COOLDOWN":     "1m",
			"OTPGATE_SMS_RESEND_COOLDOWN":      "20s",
			"OTPGATE_SMS_PROVIDERS":            "ignored: lists of sections are file-only",
			"OTPGATE_SMS_ROUTES":               "ignored: maps are file-only",
			"OTPGATE_SMS_PROVIDERS_0_NAME":     "ignored",
			"OTPGATE_SMS_PROVIDERS_0__CONFIG_": "ignored",
		}))
		if err != nil {
			t.Fatalf("dev %v: %v", dev, err)
		}
		s := c.SMS
		if s.Sender != "" {
			t.Errorf("dev %v: sender = %q; the dev default must not apply when providers are set", dev, s.Sender)
		}
		if len(s.Providers) != 2 || s.Providers[0].Name != "primary" || s.Providers[1].Type != "webhook" {
			t.Fatalf("providers = %+v", s.Providers)
		}
		if n := s.Providers[0].Config.Node; n == nil || n.Line != 9 || len(n.Content) != 6 {
			t.Errorf("primary's config node = %+v; want the mapping with its line", n)
		}
		if !slices.Equal(s.Routes["+33"], []string{"primary", "backup"}) || !slices.Equal(s.Routes["*"], []string{"backup"}) {
			t.Errorf("routes = %v", s.Routes)
		}
		if s.Breaker.Failures != 5 || s.Breaker.Cooldown != minutes(1) || !s.SkipStartupCheck {
			t.Errorf("breaker %+v, skip %v: want them from the environment", s.Breaker, s.SkipStartupCheck)
		}
	}

	c, err := Load("", true, nil)
	if err != nil || c.SMS.Sender != "outbox" || c.SMS.Breaker != (SMSBreakerConfig{Failures: 3, Cooldown: seconds(30)}) {
		t.Errorf("dev without providers: sender %q, breaker %+v, %v", c.SMS.Sender, c.SMS.Breaker, err)
	}
}

func TestSMSProvidersProblems(t *testing.T) {
	base := "issuer: https://id.example.com\nsystem_secret: " + testSecret + "\n"
	tests := []struct {
		name string
		dev  bool
		yaml string
		want []string
	}{
		{"log sender outside dev", false, "sms:\n  sender: log\n", []string{
			"sms: option 'sender' must not be 'log' outside --dev: the log sender writes every code in clear to the logs; use 'providers', or 'outbox' for a test server",
		}},
		{"log sender with dev", true, "sms:\n  sender: log\n", nil},
		{"outbox outside dev", false, "sms:\n  sender: outbox\n", nil},
		{"sender and providers", false, "sms:\n  sender: outbox\n  providers:\n    - {name: a, type: twilio}\n", []string{
			"sms: option 'sender' must be empty when 'providers' is set, got 'outbox': 'sender' is a shorthand for one development sender",
		}},
		{"providers", false, `sms:
  providers:
    - {type: twilio}
    - {name: Primary, type: orange}
    - {name: a, type: webhook}
    - {name: a}
    - {name: dev, type: log}
  routes:
    "33": [a]
    "+1": [a, zz, a]
    "*": []
  breaker:
    failures: 0
    cooldown: 2h
`, []string{
			"sms.providers[0]: option 'name' is required: a short name like 'primary', used by routes and logs",
			"sms.providers[1]: option 'name' must be 1 to 32 lower-case letters, digits, '-' or '_', starting with a letter or digit, got 'Primary'",
			"sms.providers[3]: option 'name' must be unique, got 'a' which sms.providers[2] already uses",
			"sms.providers[3]: option 'type' is required: the sender type, e.g. 'orange', 'twilio' or 'webhook'",
			"sms.providers[4]: option 'type' must not be 'log' outside --dev: the log sender writes every code in clear to the logs",
			"sms.routes: option '*' must list at least one provider name",
			"sms.routes: option '+1[1]' must name a provider of 'sms.providers', got 'zz'",
			"sms.routes: option '+1[2]' names 'a' twice",
			"sms.routes: option '33' must be '*' or a calling-code prefix like '+33' or '+1'",
			"sms.breaker: option 'failures' must be between 1 and 100, got '0'",
			"sms.breaker: option 'cooldown' must be between 1s and 1h, got '2h'",
		}},
		{"routes without providers", false, "sms:\n  sender: outbox\n  routes: {'*': [a]}\n", []string{
			"sms: option 'routes' needs 'providers': routes name providers",
		}},
		{"shapes", false, "sms:\n  providers:\n    - name: a\n      type: twilio\n      config: [x]\n      confg: {}\n  routes: [a]\n", []string{
			"sms.providers[0]: option 'config' must be a mapping of options (line 7)",
			"sms.providers[0]: option 'confg' is unknown (line 8); did you mean 'config'?",
			"sms: option 'routes' must be a mapping, like {\"+33\": [a], \"*\": [b]} (line 9)",
		}},
		{"route shapes", false, "sms:\n  providers: [{name: a, type: twilio}]\n  routes:\n    '+33': a\n    '+33': [a]\n", []string{
			"sms.routes: option '+33' must be a list, like [a, b] or one '- item' per line (line 6)",
			"sms.routes: option '+33' is set twice (lines 6 and 7)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "otpgate.yaml", base+tt.yaml), tt.dev, nil)
			wantProblems(t, err, tt.want...)
		})
	}
}

func TestSMSProviderSecretsAreRedacted(t *testing.T) {
	c, err := Load(writeFile(t, "otpgate.yaml", smsProviders), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := c.String()
	if strings.Contains(out, "hunter2") {
		t.Errorf("Config.String() shows a provider secret:\n%s", out)
	}
	for _, want := range []string{"client_secret: REDACTED", "secret: REDACTED", "client_id: app", "https://user:REDACTED@gw.example.com/sms", "tel:+33600000000"} {
		if !strings.Contains(out, want) {
			t.Errorf("Config.String() lacks %q:\n%s", want, out)
		}
	}
	// The original keeps its secrets: the server needs them.
	if n := c.SMS.Providers[0].Config.Node; n.Content[3].Value != "orange-hunter2" {
		t.Errorf("Redacted changed the original: %q", n.Content[3].Value)
	}
	for name, want := range map[string]bool{
		"client_secret": true, "auth_token": true, "api_key_secret": true, "secret": true, "password": true,
		"client_secret_file": false, "auth_token_file": false, "client_id": false, "url": false, "from": false,
	} {
		if secretOption(name) != want {
			t.Errorf("secretOption(%q) = %v", name, !want)
		}
	}
}
