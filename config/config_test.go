package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	testSecret       = "0123456789abcdef0123456789abcdef-system" // 39 bytes
	testClientSecret = "client-secret-0123456789abcdef0123456789"
)

// env serves getenv from a map.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// writeFile writes content to a new file in a test directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// problems returns the lines of err, which must be a *Errors (or nil).
func problems(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is a %T, not a *Errors: %v", err, err)
	}
	lines := make([]string, len(*errs))
	for i, e := range *errs {
		lines[i] = e.Error()
	}
	if got := strings.Join(lines, "\n"); got != err.Error() {
		t.Fatalf("Error() = %q, want the lines joined: %q", err.Error(), got)
	}
	return lines
}

// wantProblems fails unless err lists exactly want, in order.
func wantProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	got := problems(t, err)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// prod returns a production configuration that validates.
func prod() Config {
	c := Defaults(false)
	c.Issuer = "https://id.example.com"
	c.SystemSecret = testSecret
	c.SMS.Sender = "outbox"
	return c
}

func TestDefaults(t *testing.T) {
	if err := Defaults(true).Validate(true); err != nil {
		t.Errorf("Defaults(true).Validate(true):\n%v", err)
	}
	if err := prod().Validate(false); err != nil {
		t.Errorf("production defaults with issuer, secret and sender:\n%v", err)
	}

	c, err := Load("", true, nil)
	if err != nil {
		t.Fatalf("Load in dev without file: %v", err)
	}
	if c.Issuer != "http://localhost:8080" || c.Listen != "localhost:8080" || c.Storage != "memory" ||
		c.SMS.Sender != "outbox" || c.Phone.DefaultRegion != "FR" || c.SystemSecret != "" {
		t.Errorf("dev config = %+v", c.Redacted())
	}
	if c.SMS.CodeTTL != minutes(5) || c.SMS.CodeLength != 6 || c.Login.SessionTTL != 0 {
		t.Errorf("dev sms/login = %+v %+v", c.SMS, c.Login)
	}
}

func TestProductionReportsEveryMissingOption(t *testing.T) {
	_, err := Load("", false, nil)
	wantProblems(t, err,
		"option 'issuer' is required, e.g. 'https://id.example.com'",
		"option 'system_secret' is required outside --dev: set it or 'system_secret_file' to at least 32 random bytes, e.g. from 'openssl rand -base64 48'",
		"sms: option 'providers' is required outside --dev: list the SMS providers to send through (see 'Sending real SMS' in README.md), or set 'sender: outbox' for a test server that texts nobody",
	)
}

func TestValidateMessages(t *testing.T) {
	tests := []struct {
		name   string
		dev    bool
		change func(*Config)
		want   string
	}{
		// Ranges: one format for durations and numbers.
		{"code_ttl", false, func(c *Config) { c.SMS.CodeTTL = minutes(30) }, "sms: option 'code_ttl' must be between 1m and 10m, got '30m'"},
		{"code_ttl low", false, func(c *Config) { c.SMS.CodeTTL = seconds(30) }, "sms: option 'code_ttl' must be between 1m and 10m, got '30s'"},
		{"code_length", false, func(c *Config) { c.SMS.CodeLength = 12 }, "sms: option 'code_length' must be between 4 and 10, got '12'"},
		{"max_attempts", false, func(c *Config) { c.SMS.MaxAttempts = 0 }, "sms: option 'max_attempts' must be between 1 and 10, got '0'"},
		{"resend_cooldown", false, func(c *Config) { c.SMS.ResendCooldown = minutes(6) }, "sms: option 'resend_cooldown' must be between 1s and 5m, got '6m'"},
		{"max_resends", false, func(c *Config) { c.SMS.MaxResends = 11 }, "sms: option 'max_resends' must be between 1 and 10, got '11'"},
		{"max_resends zero", false, func(c *Config) { c.SMS.MaxResends = 0 }, "sms: option 'max_resends' must be between 1 and 10, got '0'"},
		{"resend_cooldown not below code_ttl", false, func(c *Config) { c.SMS.CodeTTL = minutes(2); c.SMS.ResendCooldown = minutes(2) }, "sms: option 'resend_cooldown' must be shorter than sms.code_ttl (2m), got '2m'"},
		{"outbox_size", false, func(c *Config) { c.SMS.OutboxSize = 0 }, "sms: option 'outbox_size' must be between 1 and 10000, got '0'"},
		{"flow_ttl", false, func(c *Config) { c.Login.FlowTTL = hours(2) }, "login: option 'flow_ttl' must be between 1m and 1h, got '2h'"},
		{"session_ttl", false, func(c *Config) { c.Login.SessionTTL = hours(721) }, "login: option 'session_ttl' must be between 0s and 720h, got '721h'"},
		{"consent_ttl", false, func(c *Config) { c.Login.ConsentTTL = -minutes(1) }, "login: option 'consent_ttl' must be between 0s and 8760h, got '-1m'"},
		{"authorize_code_ttl", false, func(c *Config) { c.Tokens.AuthorizeCodeTTL = seconds(5) }, "tokens: option 'authorize_code_ttl' must be between 10s and 10m, got '5s'"},
		{"access_token_ttl", false, func(c *Config) { c.Tokens.AccessTokenTTL = hours(25) }, "tokens: option 'access_token_ttl' must be between 1m and 24h, got '25h'"},
		{"id_token_ttl", false, func(c *Config) { c.Tokens.IDTokenTTL = seconds(90) }, ""},
		{"refresh_token_ttl", false, func(c *Config) { c.Tokens.RefreshTokenTTL = minutes(30) }, "tokens: option 'refresh_token_ttl' must be between 1h and 8760h, got '30m'"},

		// Enumerations.
		{"sender", false, func(c *Config) { c.SMS.Sender = "sns" }, "sms: option 'sender' must be one of 'outbox', 'log', got 'sns'"},
		{"sender empty in dev", true, func(c *Config) { c.SMS.Sender = "" }, "sms: option 'sender' must be one of 'outbox', 'log', got ''"},
		{"storage", false, func(c *Config) { c.Storage = "mongo" }, "option 'storage' must be one of 'memory', 'redis', got 'mongo'"},
		{"locale", false, func(c *Config) { c.Login.DefaultLocale = "de" }, "login: option 'default_locale' must be one of 'en', 'fr', got 'de'"},
		{"log level", false, func(c *Config) { c.Log.Level = "trace" }, "log: option 'level' must be one of 'debug', 'info', 'warn', 'error', got 'trace'"},
		{"log format", false, func(c *Config) { c.Log.Format = "xml" }, "log: option 'format' must be one of 'text', 'json', got 'xml'"},

		// Server.
		{"issuer http", false, func(c *Config) { c.Issuer = "http://id.example.com" }, "option 'issuer' must use https outside --dev (http is allowed only for localhost and loopback addresses), got 'http://id.example.com'"},
		{"issuer http in dev", true, func(c *Config) { c.Issuer = "http://otpgate.test:8080" }, ""},
		{"issuer http loopback", false, func(c *Config) { c.Issuer = "http://127.0.0.1:8080" }, ""},
		{"issuer with path", false, func(c *Config) { c.Issuer = "https://example.com/id" }, ""},
		{"issuer relative", false, func(c *Config) { c.Issuer = "id.example.com" }, "option 'issuer' must be an absolute URL like 'https://id.example.com', got 'id.example.com'"},
		{"issuer query", false, func(c *Config) { c.Issuer = "https://id.example.com?tenant=1" }, "option 'issuer' must not have a query ('?...'), got 'https://id.example.com?tenant=1'"},
		{"issuer fragment", false, func(c *Config) { c.Issuer = "https://id.example.com#x" }, "option 'issuer' must not have a fragment ('#...'), got 'https://id.example.com#x'"},
		{"issuer slash", false, func(c *Config) { c.Issuer = "https://id.example.com/" }, "option 'issuer' must not end with '/': use 'https://id.example.com'"},
		{"listen", false, func(c *Config) { c.Listen = "8080" }, "option 'listen' must be a host:port address like ':8080' or '127.0.0.1:8081', got '8080'"},
		{"admin_listen same", false, func(c *Config) { c.AdminListen = c.Listen }, "option 'admin_listen' must differ from 'listen', got ':8080' for both"},
		{"admin_listen off", false, func(c *Config) { c.AdminListen = "" }, ""},
		{"short secret", false, func(c *Config) { c.SystemSecret = "too-short" }, "option 'system_secret' must be at least 32 bytes long, got 9"},
		{"short secret in dev", true, func(c *Config) { c.SystemSecret = "too-short" }, "option 'system_secret' must be at least 32 bytes long, got 9"},
		{"no secret in dev", true, func(c *Config) { c.SystemSecret = "" }, ""},

		// Redis.
		{"redis without url", false, func(c *Config) { c.Storage = "redis" }, "redis: option 'url' is required when 'storage' is 'redis': set it, 'url_file' or OTPGATE_REDIS_URL, e.g. 'redis://redis:6379/0'"},
		{"redis scheme", false, func(c *Config) { c.Redis.URL = "http://:hunter2@redis:6379" }, "redis: option 'url' must start with 'redis://' or 'rediss://' (TLS), got scheme 'http'"},
		{"redis no host", false, func(c *Config) { c.Redis.URL = "redis://" }, "redis: option 'url' must name a host, e.g. 'redis://redis:6379/0'"},
		{"redis prefix", false, func(c *Config) { c.Redis.KeyPrefix = "{otp}:" }, "redis: option 'key_prefix' must not contain '{', '}' or spaces, got '{otp}:'"},

		// Phone.
		{"region", false, func(c *Config) { c.Phone.DefaultRegion = "XX" }, "phone: option 'default_region' must be an ISO 3166-1 alpha-2 region code that has phone numbers, like 'FR', got 'XX'"},
		{"region lower case", false, func(c *Config) { c.Phone.DefaultRegion = "be" }, ""},
		{"allowed region", false, func(c *Config) { c.Phone.AllowedRegions = []string{"FR", "FRA"} }, "phone: option 'allowed_regions[1]' must be an ISO 3166-1 alpha-2 region code that has phone numbers, like 'FR', got 'FRA'"},
		{"denied and allowed", false, func(c *Config) {
			c.Phone.AllowedRegions = []string{"FR", "BE"}
			c.Phone.DeniedRegions = []string{"BE"}
		}, "phone: option 'denied_regions[0]' must not also be in 'allowed_regions', got 'BE'"},
		{"default region denied", false, func(c *Config) {
			c.Phone.DefaultRegion = "FR"
			c.Phone.DeniedRegions = []string{"FR"}
		}, "phone: option 'default_region' must not be one of 'denied_regions', got 'FR'"},
		{"default region not allowed", false, func(c *Config) {
			c.Phone.DefaultRegion = "FR"
			c.Phone.AllowedRegions = []string{"BE", "LU"}
		}, "phone: option 'default_region' must be one of 'allowed_regions' ('BE', 'LU'), got 'FR'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := prod()
			if tt.dev {
				c = Defaults(true)
			}
			tt.change(&c)
			err := c.Validate(tt.dev)
			if tt.want == "" {
				wantProblems(t, err)
			} else {
				wantProblems(t, err, tt.want)
			}
		})
	}
}

func TestValidateDoesNotQuoteSecrets(t *testing.T) {
	c := prod()
	c.SystemSecret = "hunter2"
	c.Redis.URL = "http://user:hunter2@redis"
	c.Clients = []ClientConfig{{ClientID: "a", ClientSecret: "hunter2", RedirectURIs: []string{"https://a.example.com/cb"}}}
	err := c.Validate(false)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate = %v; want errors without the secret", err)
	}
	if got := len(problems(t, err)); got != 3 {
		t.Errorf("got %d problems, want 3: %v", got, err)
	}
}

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key", "sms:\n  code_tl: 5m\n", []string{
			"sms: option 'code_tl' is unknown (line 2); did you mean 'code_ttl'?",
		}},
		{"unknown top-level key", "issuer: http://localhost:8080\nmetrics: true\n", []string{
			"option 'metrics' is unknown (line 2)",
		}},
		{"unknown client key", "clients:\n  - client_id: a\n    redirect_uris: [http://localhost/cb]\n    token_endpoint_auth_method: none\n    redirect_uri: http://localhost/cb\n", []string{
			"clients[0]: option 'redirect_uri' is unknown (line 5); did you mean 'redirect_uris'?",
		}},
		{"camel case", "login:\n  sessionTTL: 1h\n", []string{
			"login: option 'sessionTTL' is unknown (line 2); did you mean 'session_ttl'?",
		}},
		{"every problem at once", "issuer: ftp://x\nsms:\n  code_ttl: 30m\n  code_length: six\n  nope: 1\nlog:\n  level: loud\n", []string{
			"sms: option 'code_length' must be a whole number, got 'six' (line 4)",
			"sms: option 'nope' is unknown (line 5)",
			"option 'issuer' must use https, got 'ftp://x'",
			"sms: option 'code_ttl' must be between 1m and 10m, got '30m'",
			"log: option 'level' must be one of 'debug', 'info', 'warn', 'error', got 'loud'",
		}},
		{"bare number as duration", "sms:\n  code_ttl: 300\n", []string{
			"sms: option 'code_ttl' must be a duration like '30s', '5m' or '720h', got '300' (line 2)",
		}},
		{"zero duration", "login:\n  session_ttl: 0\n", nil},
		{"scalar for a list", "phone:\n  allowed_regions: FR\n", []string{
			"phone: option 'allowed_regions' must be a list, like [a, b] or one '- item' per line (line 2)",
		}},
		{"list for a scalar", "listen: [a, b]\n", []string{
			"option 'listen' must be a single value, not a list or a mapping (line 1)",
		}},
		{"scalar for a section", "sms: fast\n", []string{
			"option 'sms' must be a mapping of options (line 1)",
		}},
		{"duplicate key", "sms:\n  code_ttl: 2m\n  code_ttl: 3m\n", []string{
			"sms: option 'code_ttl' is set twice (lines 2 and 3)",
		}},
		{"bad bool", "clients:\n  - client_id: a\n    redirect_uris: [http://localhost/cb]\n    token_endpoint_auth_method: none\n    skip_consent: maybe\n", []string{
			"clients[0]: option 'skip_consent' must be true or false, got 'maybe' (line 5)",
		}},
		{"empty file", "", nil},
		{"comments only", "# nothing\n", nil},
		{"null section", "sms:\n", nil},
		{"null value", "sms:\n  code_ttl:\n  code_length: ~\n", nil},
		{"anchors and merge keys", "x-common: &c\n  code_ttl: 2m\nsms:\n  <<: *c\n", []string{
			"option 'x-common' is unknown (line 1)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "otpgate.yaml", tt.yaml), true, nil)
			wantProblems(t, err, tt.want...)
		})
	}
}

func TestLoadFileValues(t *testing.T) {
	path := writeFile(t, "otpgate.yaml", `
issuer: https://id.example.com
system_secret: `+testSecret+`
sms:
  sender: outbox
  code_ttl: 2m
phone:
  default_region: be
  allowed_regions: [be, fr]
clients:
  - client_id: shop
    client_secret: `+testClientSecret+`
    redirect_uris: [https://shop.example.com/cb]
`)
	c, err := Load(path, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMS.CodeTTL != minutes(2) || c.SMS.CodeLength != 6 {
		t.Errorf("sms = %+v; want code_ttl from the file, the rest default", c.SMS)
	}
	if c.Phone.DefaultRegion != "BE" || !slices.Equal(c.Phone.AllowedRegions, []string{"BE", "FR"}) {
		t.Errorf("phone = %+v; want upper-case regions", c.Phone)
	}
	want := ClientConfig{
		ClientID:                 "shop",
		ClientSecret:             testClientSecret,
		RedirectURIs:             []string{"https://shop.example.com/cb"},
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		ResponseTypes:            []string{"code"},
		Scope:                    "openid phone offline_access",
		TokenEndpointAuthMethod:  "client_secret_basic",
		IDTokenSignedResponseAlg: "RS256",
	}
	if len(c.Clients) != 1 || !reflect.DeepEqual(c.Clients[0], want) {
		t.Errorf("clients = %#v\nwant the defaults filled in: %#v", c.Clients, want)
	}
}

func TestLoadFileErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), true, nil)
	if lines := problems(t, err); len(lines) != 1 || !strings.Contains(lines[0], "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	_, err = Load(writeFile(t, "bad.yaml", "sms:\n  code_ttl: [\n"), true, nil)
	if lines := problems(t, err); len(lines) != 1 || !strings.Contains(lines[0], "bad.yaml") || !strings.Contains(lines[0], "line") {
		t.Errorf("syntax error: %v", err)
	}
	_, err = Load(writeFile(t, "list.yaml", "- issuer: x\n"), true, nil)
	wantProblems(t, err, "config file: line 1: the file must be a mapping of options, like 'issuer: https://id.example.com'")
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string // optional file
		env   map[string]string
		check func(t *testing.T, c Config)
		want  []string // problems
	}{
		{name: "scalars", env: map[string]string{
			"OTPGATE_ISSUER":            "https://login.example.com",
			"OTPGATE_ADMIN_LISTEN":      "",
			"OTPGATE_SMS_CODE_TTL":      "2m",
			"OTPGATE_SMS_CODE_LENGTH":   "8",
			"OTPGATE_LOGIN_SESSION_TTL": "12h",
			"OTPGATE_LOG_FORMAT":        "json",
		}, check: func(t *testing.T, c Config) {
			if c.Issuer != "https://login.example.com" || c.SMS.CodeTTL != minutes(2) || c.SMS.CodeLength != 8 ||
				c.Login.SessionTTL != hours(12) || c.Log.Format != "json" || c.AdminListen != "127.0.0.1:8081" {
				t.Errorf("config = %v", c)
			}
		}},
		{name: "lists", env: map[string]string{"OTPGATE_PHONE_ALLOWED_REGIONS": "fr, be,"},
			check: func(t *testing.T, c Config) {
				if !slices.Equal(c.Phone.AllowedRegions, []string{"FR", "BE"}) {
					t.Errorf("allowed_regions = %q", c.Phone.AllowedRegions)
				}
			}},
		{name: "env beats file", yaml: "sms:\n  code_ttl: 3m\n  max_attempts: 3\n", env: map[string]string{"OTPGATE_SMS_CODE_TTL": "4m"},
			check: func(t *testing.T, c Config) {
				if c.SMS.CodeTTL != minutes(4) || c.SMS.MaxAttempts != 3 {
					t.Errorf("sms = %+v", c.SMS)
				}
			}},
		{name: "redis url picks redis", env: map[string]string{"OTPGATE_REDIS_URL": "redis://redis:6379/0"},
			check: func(t *testing.T, c Config) {
				if c.Storage != "redis" || c.Redis.URL != "redis://redis:6379/0" {
					t.Errorf("storage = %q, redis = %+v", c.Storage, c.Redis)
				}
			}},
		{name: "explicit storage wins in the file", yaml: "storage: memory\n", env: map[string]string{"OTPGATE_REDIS_URL": "redis://redis"},
			check: func(t *testing.T, c Config) {
				if c.Storage != "memory" {
					t.Errorf("storage = %q", c.Storage)
				}
			}},
		{name: "explicit storage wins in the env", env: map[string]string{"OTPGATE_REDIS_URL": "redis://redis", "OTPGATE_STORAGE": "memory"},
			check: func(t *testing.T, c Config) {
				if c.Storage != "memory" {
					t.Errorf("storage = %q", c.Storage)
				}
			}},
		{name: "bad values", env: map[string]string{
			"OTPGATE_SMS_CODE_TTL":    "5 minutes",
			"OTPGATE_SMS_CODE_LENGTH": "six",
			"OTPGATE_LOGIN_FLOW_TTL":  "2h",
		}, want: []string{
			"sms: option 'code_length' (from OTPGATE_SMS_CODE_LENGTH) must be a whole number, got 'six'",
			"sms: option 'code_ttl' (from OTPGATE_SMS_CODE_TTL) must be a duration like '30s', '5m' or '720h', got '5 minutes'",
			"login: option 'flow_ttl' must be between 1m and 1h, got '2h'",
		}},
		{name: "bad redis url", env: map[string]string{"OTPGATE_REDIS_URL": "localhost:6379"}, want: []string{
			"redis: option 'url' must start with 'redis://' or 'rediss://' (TLS), got scheme 'localhost'",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = writeFile(t, "otpgate.yaml", tt.yaml)
			}
			c, err := Load(path, true, env(tt.env))
			wantProblems(t, err, tt.want...)
			if tt.check != nil && err == nil {
				tt.check(t, c)
			}
		})
	}
}

// TestEnvCoversEveryScalarKey sets each variable alone and checks that it
// reaches its option: the generic walk must not miss a key added later.
func TestEnvCoversEveryScalarKey(t *testing.T) {
	var names []string
	walk(reflect.ValueOf(&Config{}).Elem(), "", false, func(o option) {
		name := EnvName(o.path)
		names = append(names, name)

		c := Config{}
		value := map[reflect.Kind]string{reflect.String: "x", reflect.Int: "7", reflect.Bool: "true", reflect.Int64: "7s", reflect.Float64: "0.5", reflect.Slice: "a,b"}[o.field.Type.Kind()]
		var errs Errors
		applyEnv(&c, env(map[string]string{name: value}), &errs)
		if len(errs) > 0 || reflect.DeepEqual(c, Config{}) {
			t.Errorf("%s=%s did not set %s (%v)", name, value, o.path, errs.err())
		}
	})
	for _, name := range []string{"OTPGATE_ISSUER", "OTPGATE_LISTEN", "OTPGATE_ADMIN_LISTEN", "OTPGATE_REDIS_URL",
		"OTPGATE_SYSTEM_SECRET", "OTPGATE_SYSTEM_SECRET_FILE", "OTPGATE_SMS_CODE_TTL", "OTPGATE_LOGIN_SESSION_TTL",
		"OTPGATE_REDIS_URL_FILE", "OTPGATE_PHONE_DENIED_REGIONS", "OTPGATE_TOKENS_REFRESH_TOKEN_TTL"} {
		if !slices.Contains(names, name) {
			t.Errorf("no option reads %s; have %v", name, names)
		}
	}
	if slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "OTPGATE_CLIENTS") }) {
		t.Errorf("clients must not be read from the environment: %v", names)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	systemFile := file("system", testSecret+"\n")
	clientFile := file("client", testClientSecret+"\r\n")
	redisFile := file("redis", "redis://:hunter2@redis:6379/0\n")
	shortFile := file("short", "hunter2\n")
	emptyFile := file("empty", "\n")
	missing := filepath.Join(dir, "missing")

	client := func(secretLines string) string {
		return "clients:\n  - client_id: shop\n    redirect_uris: [https://shop.example.com/cb]\n" + secretLines
	}
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, c Config)
		want  []string
	}{
		{name: "read and trimmed",
			yaml: "system_secret_file: " + systemFile + "\n" + client("    client_secret_file: "+clientFile+"\n"),
			env:  map[string]string{"OTPGATE_REDIS_URL_FILE": redisFile},
			check: func(t *testing.T, c Config) {
				if c.SystemSecret != testSecret || c.Clients[0].ClientSecret != testClientSecret ||
					c.Redis.URL != "redis://:hunter2@redis:6379/0" || c.Storage != "redis" {
					t.Errorf("secrets not read: %q %q %q, storage %q", c.SystemSecret, c.Clients[0].ClientSecret, c.Redis.URL, c.Storage)
				}
				if c.SystemSecretFile != systemFile {
					t.Errorf("system_secret_file = %q; want it kept", c.SystemSecretFile)
				}
			}},
		{name: "from the environment",
			env: map[string]string{"OTPGATE_SYSTEM_SECRET_FILE": systemFile},
			check: func(t *testing.T, c Config) {
				if c.SystemSecret != testSecret {
					t.Errorf("system_secret = %q", c.SystemSecret)
				}
			}},
		{name: "both set",
			yaml: "system_secret: " + testSecret + "\nsystem_secret_file: " + systemFile + "\n" +
				client("    client_secret: "+testClientSecret+"\n    client_secret_file: "+clientFile+"\n"),
			want: []string{
				"option 'system_secret' and 'system_secret_file' are both set: set only one",
				"clients[0]: option 'client_secret' and 'client_secret_file' are both set: set only one",
			}},
		{name: "both set across file and env",
			yaml: "system_secret: " + testSecret + "\n",
			env:  map[string]string{"OTPGATE_SYSTEM_SECRET_FILE": systemFile},
			want: []string{"option 'system_secret' and 'system_secret_file' are both set: set only one"}},
		{name: "missing file",
			yaml: "system_secret_file: " + missing + "\n",
			want: []string{"option 'system_secret_file' names a file that cannot be read: open " + missing + ": no such file or directory"}},
		{name: "empty file",
			yaml: "system_secret_file: " + emptyFile + "\n",
			want: []string{"option 'system_secret_file' names an empty file, got '" + emptyFile + "'"}},
		{name: "short secret from a file is still checked",
			yaml: "system_secret_file: " + shortFile + "\n" + client("    client_secret_file: "+shortFile+"\n"),
			want: []string{
				"option 'system_secret' must be at least 32 bytes long, got 7",
				"clients[0]: option 'client_secret' must be at least 32 characters long, got 7",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "otpgate.yaml", "issuer: https://id.example.com\nsms:\n  sender: outbox\n"+tt.yaml)
			c, err := Load(path, false, env(tt.env))
			wantProblems(t, err, tt.want...)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error quotes a secret: %v", err)
			}
			if tt.check != nil && err == nil {
				tt.check(t, c)
			}
		})
	}
}

func TestClients(t *testing.T) {
	valid := func() ClientConfig {
		return ClientConfig{
			ClientID:     "shop",
			ClientSecret: testClientSecret,
			RedirectURIs: []string{"https://shop.example.com/cb"},
		}
	}
	tests := []struct {
		name    string
		dev     bool
		clients func() []ClientConfig
		want    []string
	}{
		{"valid", false, func() []ClientConfig { return []ClientConfig{valid()} }, nil},
		{"http redirect", false, func() []ClientConfig {
			c := valid()
			c.RedirectURIs = []string{"https://shop.example.com/cb", "http://shop.example.com/cb"}
			return []ClientConfig{c}
		}, []string{"clients[0]: option 'redirect_uris[1]' must use https outside --dev (http is allowed only for localhost and loopback addresses), got 'http://shop.example.com/cb'"}},
		{"http redirect in dev", true, func() []ClientConfig {
			c := valid()
			c.RedirectURIs = []string{"http://shop.test/cb"}
			return []ClientConfig{c}
		}, nil},
		{"loopback redirects", false, func() []ClientConfig {
			c := valid()
			c.RedirectURIs = []string{"http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]:8000/cb"}
			return []ClientConfig{c}
		}, nil},
		{"fragment", false, func() []ClientConfig {
			c := valid()
			c.RedirectURIs = []string{"https://shop.example.com/cb#done"}
			return []ClientConfig{c}
		}, []string{"clients[0]: option 'redirect_uris[0]' must not have a fragment ('#...'), got 'https://shop.example.com/cb#done'"}},
		{"relative and custom scheme", false, func() []ClientConfig {
			c := valid()
			c.RedirectURIs = []string{"/cb", "com.example.app:/cb"}
			c.PostLogoutRedirectURIs = []string{"http://shop.example.com/bye"}
			return []ClientConfig{c}
		}, []string{
			"clients[0]: option 'redirect_uris[0]' must be an absolute URL like 'https://app.example.com/callback', got '/cb'",
			"clients[0]: option 'redirect_uris[1]' must be an absolute URL like 'https://app.example.com/callback', got 'com.example.app:/cb'",
			"clients[0]: option 'post_logout_redirect_uris[0]' must use https outside --dev (http is allowed only for localhost and loopback addresses), got 'http://shop.example.com/bye'",
		}},
		{"no redirect", false, func() []ClientConfig {
			c := valid()
			c.RedirectURIs = nil
			return []ClientConfig{c}
		}, []string{"clients[0]: option 'redirect_uris' is required: list at least one URL, e.g. ['https://app.example.com/callback']"}},
		{"public client with a secret", false, func() []ClientConfig {
			c := valid()
			c.TokenEndpointAuthMethod = "none"
			return []ClientConfig{c}
		}, []string{"clients[0]: option 'client_secret' must not be set when 'token_endpoint_auth_method' is 'none': a public client has no secret"}},
		{"public client", false, func() []ClientConfig {
			c := valid()
			c.TokenEndpointAuthMethod, c.ClientSecret = "none", ""
			return []ClientConfig{c}
		}, nil},
		{"confidential client without a secret", false, func() []ClientConfig {
			c := valid()
			c.TokenEndpointAuthMethod, c.ClientSecret = "client_secret_post", ""
			return []ClientConfig{c}
		}, []string{"clients[0]: option 'client_secret' is required when 'token_endpoint_auth_method' is 'client_secret_post': set it or 'client_secret_file' (at least 32 characters), or use 'none' for a public client"}},
		{"short secret", false, func() []ClientConfig {
			c := valid()
			c.ClientSecret = "short"
			return []ClientConfig{c}
		}, []string{"clients[0]: option 'client_secret' must be at least 32 characters long, got 5"}},
		{"duplicate and missing ids", false, func() []ClientConfig {
			missing := valid()
			missing.ClientID = ""
			return []ClientConfig{valid(), missing, valid()}
		}, []string{
			"clients[1]: option 'client_id' is required",
			"clients[2]: option 'client_id' must be unique, got 'shop' which clients[0] already uses",
		}},
		{"metadata", false, func() []ClientConfig {
			c := valid()
			c.GrantTypes = []string{"refresh_token", "password"}
			c.ResponseTypes = []string{"token"}
			c.Scope = "phone profile"
			c.TokenEndpointAuthMethod = "private_key_jwt"
			c.IDTokenSignedResponseAlg = "HS256"
			c.LogoURI = "http://cdn.example.com/logo.png"
			return []ClientConfig{c}
		}, []string{
			"clients[0]: option 'token_endpoint_auth_method' must be one of 'client_secret_basic', 'client_secret_post', 'none', got 'private_key_jwt'",
			"clients[0]: option 'logo_uri' must use https outside --dev (http is allowed only for localhost and loopback addresses), got 'http://cdn.example.com/logo.png'",
			"clients[0]: option 'grant_types[1]' must be one of 'authorization_code', 'refresh_token', got 'password'",
			"clients[0]: option 'grant_types' must contain 'authorization_code', got 'refresh_token', 'password'",
			"clients[0]: option 'response_types[0]' must be one of 'code', got 'token'",
			"clients[0]: option 'scope' must contain 'openid', got 'phone profile'",
			"clients[0]: option 'id_token_signed_response_alg' must be one of 'RS256', 'ES256', got 'HS256'",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := prod()
			if tt.dev {
				c = Defaults(true)
			}
			c.Clients = tt.clients()
			wantProblems(t, c.Validate(tt.dev), tt.want...)
		})
	}
}

func TestScopes(t *testing.T) {
	for scope, want := range map[string][]string{
		"":                         {"openid", "phone", "offline_access"},
		"openid":                   {"openid"},
		" openid  phone\tprofile ": {"openid", "phone", "profile"},
	} {
		if got := (ClientConfig{Scope: scope}).Scopes(); !slices.Equal(got, want) {
			t.Errorf("Scopes(%q) = %q, want %q", scope, got, want)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := prod()
	c.SystemSecret = "system-hunter2-0123456789abcdef0123456789"
	c.Redis.URL = "redis://default:hunter2@redis:6379/0"
	c.Clients = []ClientConfig{{ClientID: "shop", ClientSecret: "client-hunter2-0123456789abcdef0123456789", ClientSecretFile: "/run/secrets/shop"}}

	r := c.Redacted()
	if r.SystemSecret != "REDACTED" || r.Clients[0].ClientSecret != "REDACTED" {
		t.Errorf("Redacted kept secrets: %q %q", r.SystemSecret, r.Clients[0].ClientSecret)
	}
	if r.Redis.URL != "redis://default:REDACTED@redis:6379/0" {
		t.Errorf("redis url = %q; want the password alone hidden", r.Redis.URL)
	}
	if r.Clients[0].ClientSecretFile != "/run/secrets/shop" || r.Issuer != c.Issuer {
		t.Errorf("Redacted hid more than secrets: %+v", r)
	}
	if !strings.Contains(c.SystemSecret, "hunter2") || !strings.Contains(c.Clients[0].ClientSecret, "hunter2") {
		t.Errorf("Redacted changed the original")
	}
	if (Config{}).Redacted().SystemSecret != "" {
		t.Errorf("an empty secret should stay empty, to show it is unset")
	}

	for name, s := range map[string]string{
		"Config":       c.String(),
		"ClientConfig": c.Clients[0].String(),
		"RedisConfig":  c.Redis.String(),
	} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%s.String() shows a secret:\n%s", name, s)
		}
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("%s.String() = %s; want REDACTED in place of the secret", name, s)
		}
	}
	if !strings.Contains(c.String(), "code_ttl: 5m\n") {
		t.Errorf("Config.String() =\n%s\nwant durations as written in the file", c.String())
	}

	for in, want := range map[string]string{
		"redis://:hunter2@redis":             "redis://:REDACTED@redis",
		"redis://hunter2@redis":              "redis://REDACTED@redis",
		"rediss://redis:6380/1?password=x":   "rediss://redis:6380/1?password=REDACTED",
		"redis://redis:6379/0":               "redis://redis:6379/0",
		"redis://user:hunter2@[::1]:6379/0":  "redis://user:REDACTED@[::1]:6379/0",
		"redis://user:hunter2@host\x7f:6379": "REDACTED",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                              "0s",
		30 * time.Second:               "30s",
		5 * time.Minute:                "5m",
		90 * time.Second:               "1m30s",
		time.Hour:                      "1h",
		90 * time.Minute:               "1h30m",
		time.Hour + time.Second:        "1h0m1s",
		720 * time.Hour:                "720h",
		1500 * time.Millisecond:        "1.5s",
		-time.Minute:                   "-1m",
		10*time.Minute + 0*time.Second: "10m",
	} {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
		var back Duration
		if err := back.UnmarshalText([]byte(want)); err != nil || time.Duration(back) != d {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", want, time.Duration(back), err, d)
		}
	}
	for _, bad := range []string{"", "300", "5 minutes", "1d"} {
		var d Duration
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %v, want an error", bad, time.Duration(d))
		}
	}
}
