// Package config owns otpgate's typed configuration: the defaults (production
// and --dev), loading a YAML file strictly (an unknown key is an error), the
// OTPGATE_* environment overrides, secrets read from *_file paths, and
// validation that reports every problem at once, each naming its key:
//
//	sms: option 'code_ttl' must be between 1m and 10m, got '30m'
//
// Only cmd/otpgate and the packages it wires read a Config; config imports no
// other otpgate package, and must never do so.
package config

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration. The yaml tags are the keys of the file;
// every scalar key can also be set through the environment (see Load).
type Config struct {
	// Issuer is the OpenID Connect issuer URL, e.g. "https://id.example.com".
	Issuer string `yaml:"issuer"`
	// Listen is the address of the public HTTP server.
	Listen string `yaml:"listen"`
	// AdminListen is the address of the admin API; empty disables it.
	AdminListen string `yaml:"admin_listen"`
	// SystemSecret keys the HMACs (subjects, code hashes, signed flow steps)
	// and the encryption of signing keys. Empty only with --dev, where the
	// server generates a random one for the life of the process.
	SystemSecret string `yaml:"system_secret" secret:"true"`
	// SystemSecretFile names a file holding SystemSecret.
	SystemSecretFile string `yaml:"system_secret_file"`
	// Storage is the backend: "memory" or "redis".
	Storage string `yaml:"storage"`

	Redis  RedisConfig  `yaml:"redis"`
	Phone  PhoneConfig  `yaml:"phone"`
	SMS    SMSConfig    `yaml:"sms"`
	Login  LoginConfig  `yaml:"login"`
	Tokens TokensConfig `yaml:"tokens"`
	Log    LogConfig    `yaml:"log"`
	Admin  AdminConfig  `yaml:"admin"`
	HTTP   HTTPConfig   `yaml:"http"`
	// Limits are the abuse limits in front of the factor (limits.go).
	Limits LimitsConfig `yaml:"limits"`
	// Tracing exports OpenTelemetry traces (tracing.go).
	Tracing TracingConfig `yaml:"tracing"`

	// Factor is how a phone number is verified: "smsotp" (otpgate makes the
	// codes and texts them through sms.providers) or "orange" (Orange's One
	// Time Password API makes, texts and checks them: see OrangeOTP).
	Factor string `yaml:"factor"`
	// OrangeOTP is the orange_otp section, used when Factor is "orange".
	OrangeOTP OrangeOTPConfig `yaml:"orange_otp"`

	// Clients are static OAuth clients, registered at start-up and read-only
	// through the admin API.
	Clients []ClientConfig `yaml:"clients"`
}

// RedisConfig is the redis section, used when Storage is "redis".
type RedisConfig struct {
	// URL is a redis:// or rediss:// URL; it may carry a password. It names
	// the server, or a first Cluster node (each ?addr=host:port adds one);
	// with SentinelMaster it gives only credentials, database and TLS.
	URL string `yaml:"url" secret:"url"`
	// URLFile names a file holding URL.
	URLFile string `yaml:"url_file"`
	// KeyPrefix namespaces every key otpgate writes.
	KeyPrefix string `yaml:"key_prefix"`
	// SentinelMaster is the name of the master the Sentinels at SentinelAddrs
	// monitor (Redis Sentinel).
	SentinelMaster string `yaml:"sentinel_master"`
	// SentinelAddrs are the host:port addresses of the Sentinels.
	SentinelAddrs []string `yaml:"sentinel_addrs"`
	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// themselves (Sentinel's requirepass or an ACL user, Redis 6.2+); the
	// master's credentials stay in URL. Only with SentinelMaster.
	SentinelUsername string `yaml:"sentinel_username"`
	SentinelPassword string `yaml:"sentinel_password" secret:"true"`
	// SentinelPasswordFile names a file holding SentinelPassword.
	SentinelPasswordFile string `yaml:"sentinel_password_file"`
	// ClusterAddrs are Redis Cluster nodes besides URL's host; any selects
	// Cluster mode.
	ClusterAddrs []string `yaml:"cluster_addrs"`
	// PoolSize is the number of connections per Redis node; 0 means 10 per CPU.
	PoolSize int `yaml:"pool_size"`
	// DialTimeout, ReadTimeout and WriteTimeout bound connecting and each
	// command's read and write.
	DialTimeout  Duration `yaml:"dial_timeout"`
	ReadTimeout  Duration `yaml:"read_timeout"`
	WriteTimeout Duration `yaml:"write_timeout"`
	// MaxRetries is how many times a command that failed on the network is
	// retried; 0 never retries.
	MaxRetries int `yaml:"max_retries"`
}

// PhoneConfig is the phone section: how numbers are read and which are served.
type PhoneConfig struct {
	// DefaultRegion (ISO 3166-1 alpha-2, e.g. "FR") is assumed for numbers
	// typed without a country code; empty requires the international form.
	DefaultRegion string `yaml:"default_region"`
	// AllowedRegions, when not empty, are the only regions served.
	AllowedRegions []string `yaml:"allowed_regions"`
	// DeniedRegions are never served; they win over AllowedRegions.
	DeniedRegions []string `yaml:"denied_regions"`
	// NumberTypes are the number types that may receive codes (limits.go).
	NumberTypes []string `yaml:"number_types"`
}

// SMSConfig is the sms section: who sends the SMS and the one-time code policy.
type SMSConfig struct {
	// Sender is a shorthand for one development sender used when Providers
	// is empty: "outbox" (messages kept in storage, texted to nobody) or "log"
	// (written to the logs, codes in clear: --dev only). --dev defaults to
	// "outbox" when no provider is configured.
	Sender string `yaml:"sender"`
	// Providers are the SMS providers, tried in order: a message goes to the
	// next one only when the failure proves it was not accepted.
	Providers []SMSProviderConfig `yaml:"providers"`
	// Routes maps a calling-code prefix ("+33") or "*" to the names of the
	// providers to try for numbers that start with it, in order; the longest
	// prefix wins. Empty: every number tries every provider in order.
	Routes map[string][]string `yaml:"routes"`
	// Breaker skips a provider that keeps failing, for a while.
	Breaker SMSBreakerConfig `yaml:"breaker"`
	// SkipStartupCheck starts the server even when a provider's startup
	// check (credentials usable) fails.
	SkipStartupCheck bool `yaml:"skip_startup_check"`
	// CodeLength is the number of digits of a code.
	CodeLength int `yaml:"code_length"`
	// CodeTTL is how long a code can be used.
	CodeTTL Duration `yaml:"code_ttl"`
	// MaxAttempts is how many wrong answers a challenge survives.
	MaxAttempts int `yaml:"max_attempts"`
	// ResendCooldown is the wait between two SMS of the same challenge.
	ResendCooldown Duration `yaml:"resend_cooldown"`
	// MaxResends is how many times a challenge's code can be sent again.
	MaxResends int `yaml:"max_resends"`
	// OutboxSize is how many messages the outbox sender keeps.
	OutboxSize int `yaml:"outbox_size"`
}

// LoginConfig is the login section: the hosted flow and browser sessions.
type LoginConfig struct {
	// FlowTTL is how long a user has to finish one login.
	FlowTTL Duration `yaml:"flow_ttl"`
	// SessionTTL is the life of the browser session (SSO); 0 turns SSO off.
	SessionTTL Duration `yaml:"session_ttl"`
	// ConsentTTL is how long a consent is remembered; 0 asks every time.
	ConsentTTL Duration `yaml:"consent_ttl"`
	// DefaultLocale is the page language when the browser asks for none we
	// have: "en" or "fr".
	DefaultLocale string `yaml:"default_locale"`
}

// TokensConfig is the tokens section: lifetimes of what the token endpoint issues.
type TokensConfig struct {
	AuthorizeCodeTTL Duration `yaml:"authorize_code_ttl"` // authorization code
	AccessTokenTTL   Duration `yaml:"access_token_ttl"`   // access token
	IDTokenTTL       Duration `yaml:"id_token_ttl"`       // ID token
	RefreshTokenTTL  Duration `yaml:"refresh_token_ttl"`  // refresh token
}

// LogConfig is the log section.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// AdminConfig is the admin section: the admin API (served on AdminListen)
// and signing key rotation.
type AdminConfig struct {
	// Token is the bearer token of the admin API, at least 32 characters.
	// Empty refuses every admin call; --dev then generates one and prints it.
	Token string `yaml:"token" secret:"true"`
	// TokenFile names a file holding Token.
	TokenFile string `yaml:"token_file"`
	// KeyRotationInterval rotates each signing key once it is this old; 0
	// rotates only on request (POST /admin/keys/rotate, otpgate keys rotate).
	KeyRotationInterval Duration `yaml:"key_rotation_interval"`
	// Pprof serves Go's runtime profiles (net/http/pprof) at /debug/pprof/
	// on the admin listener, behind the admin token: for measuring CPU and
	// memory in production. Off by default.
	Pprof bool `yaml:"pprof"`
}

// ClientConfig is one static client. Keys follow RFC 7591 client metadata.
// Empty GrantTypes, ResponseTypes, Scope, TokenEndpointAuthMethod and
// IDTokenSignedResponseAlg mean their defaults; Load fills them in.
type ClientConfig struct {
	ClientID                 string   `yaml:"client_id"`
	ClientSecret             string   `yaml:"client_secret" secret:"true"`
	ClientSecretFile         string   `yaml:"client_secret_file"` // file holding ClientSecret
	ClientName               string   `yaml:"client_name"`
	LogoURI                  string   `yaml:"logo_uri"`
	RedirectURIs             []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs   []string `yaml:"post_logout_redirect_uris"`
	GrantTypes               []string `yaml:"grant_types"`
	ResponseTypes            []string `yaml:"response_types"`
	Scope                    string   `yaml:"scope"` // space-separated, must contain openid
	TokenEndpointAuthMethod  string   `yaml:"token_endpoint_auth_method"`
	IDTokenSignedResponseAlg string   `yaml:"id_token_signed_response_alg"`
	// SkipConsent skips the consent page (first-party clients).
	SkipConsent bool `yaml:"skip_consent"`
}

// The values each enumerated option accepts. smsSenders are the development
// senders sms.sender names; provider types are factors/sms's registry.
var (
	storages      = []string{"memory", "redis"}
	smsSenders    = []string{"outbox", "log"}
	locales       = []string{"en", "fr"}
	logLevels     = []string{"debug", "info", "warn", "error"}
	logFormats    = []string{"text", "json"}
	grantTypes    = []string{"authorization_code", "refresh_token"}
	responseTypes = []string{"code"}
	authMethods   = []string{"client_secret_basic", "client_secret_post", "none"}
	signingAlgs   = []string{"RS256", "ES256"}
)

// Client defaults, applied to empty fields.
var (
	defaultGrantTypes    = []string{"authorization_code", "refresh_token"}
	defaultResponseTypes = []string{"code"}
)

const (
	defaultScope       = "openid phone offline_access"
	defaultAuthMethod  = "client_secret_basic"
	defaultSigningAlg  = "RS256"
	minSystemSecretLen = 32 // bytes
	minClientSecretLen = 32 // characters
	minAdminTokenLen   = 32 // characters
)

// Defaults returns the production defaults, or the --dev ones when dev is
// true. The production defaults alone do not validate: issuer, system_secret
// and sms.providers (or sms.sender) must be set.
func Defaults(dev bool) Config {
	c := Config{
		Listen:      ":8080",
		AdminListen: "127.0.0.1:8081",
		Storage:     "memory",
		Factor:      "smsotp",
		Phone:       PhoneConfig{NumberTypes: defaultNumberTypes()},
		HTTP:        HTTPConfig{MaxBodyBytes: defaultMaxBodyBytes},
		Limits:      limitsDefaults(dev),
		Tracing:     tracingDefaults(),
		Redis: RedisConfig{
			KeyPrefix:    "otpgate:",
			DialTimeout:  seconds(5),
			ReadTimeout:  seconds(3),
			WriteTimeout: seconds(3),
			MaxRetries:   3,
		},
		SMS: SMSConfig{
			CodeLength:     6,
			CodeTTL:        minutes(5),
			MaxAttempts:    5,
			ResendCooldown: seconds(30),
			MaxResends:     3,
			OutboxSize:     100,
			Breaker:        SMSBreakerConfig{Failures: 3, Cooldown: seconds(30)},
		},
		OrangeOTP: orangeOTPDefaults(),
		Login: LoginConfig{
			FlowTTL:       minutes(15),
			SessionTTL:    0,
			ConsentTTL:    hours(720),
			DefaultLocale: "en",
		},
		Tokens: TokensConfig{
			AuthorizeCodeTTL: minutes(1),
			AccessTokenTTL:   hours(1),
			IDTokenTTL:       hours(1),
			RefreshTokenTTL:  hours(720),
		},
		Log: LogConfig{Level: "info", Format: "text"},
	}
	if dev {
		c.Issuer = "http://localhost:8080"
		c.Listen = "localhost:8080"
		c.Phone.DefaultRegion = "FR"
		c.SMS.Sender = "outbox"
	}
	return c
}

// Scopes returns the client's scope split on spaces, or the default scopes
// when Scope is empty.
func (c ClientConfig) Scopes() []string {
	if strings.TrimSpace(c.Scope) == "" {
		return strings.Fields(defaultScope)
	}
	return strings.Fields(c.Scope)
}

// withDefaults fills the empty fields that have a default.
func (c ClientConfig) withDefaults() ClientConfig {
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = append([]string(nil), defaultGrantTypes...)
	}
	if len(c.ResponseTypes) == 0 {
		c.ResponseTypes = append([]string(nil), defaultResponseTypes...)
	}
	if strings.TrimSpace(c.Scope) == "" {
		c.Scope = defaultScope
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = defaultAuthMethod
	}
	if c.IDTokenSignedResponseAlg == "" {
		c.IDTokenSignedResponseAlg = defaultSigningAlg
	}
	return c
}

// normalize resolves what Load leaves open: the storage backend when none was
// chosen, upper-case region codes and the client defaults. It is idempotent.
func (c Config) normalize() Config {
	if c.Storage == "" {
		c.Storage = "memory"
		if c.Redis.URL != "" {
			c.Storage = "redis"
		}
	}
	c.Phone.DefaultRegion = strings.ToUpper(c.Phone.DefaultRegion)
	c.Phone.AllowedRegions = upperAll(c.Phone.AllowedRegions)
	c.Phone.DeniedRegions = upperAll(c.Phone.DeniedRegions)
	c.Limits.Breaker.ExemptRegions = upperAll(c.Limits.Breaker.ExemptRegions)
	if c.Clients != nil {
		clients := make([]ClientConfig, len(c.Clients))
		for i, cl := range c.Clients {
			clients[i] = cl.withDefaults()
		}
		c.Clients = clients
	}
	return c
}

func upperAll(list []string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToUpper(s)
	}
	return out
}

// Redacted returns a copy whose secrets are replaced by "REDACTED" (the
// password part only, for the Redis URL), safe to print or log.
func (c Config) Redacted() Config {
	c.Clients = append([]ClientConfig(nil), c.Clients...)
	redact(&c)
	c.Tracing.Headers = redactHeaders(c.Tracing.Headers)
	if c.SMS.Providers != nil {
		providers := make([]SMSProviderConfig, len(c.SMS.Providers))
		for i, p := range c.SMS.Providers {
			p.Config.Node = redactNode(p.Config.Node)
			providers[i] = p
		}
		c.SMS.Providers = providers
	}
	return c
}

// String renders the redacted configuration as YAML.
func (c Config) String() string { return toYAML(c.Redacted()) }

// String renders the client as YAML with its secret redacted.
func (c ClientConfig) String() string { redact(&c); return toYAML(c) }

// String renders the section as YAML with the URL's password redacted.
func (c RedisConfig) String() string { redact(&c); return toYAML(c) }

func toYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}
