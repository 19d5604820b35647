package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Errors is every problem found in a configuration, one per line, in the
// order of the keys. Load and Validate return it as a *Errors.
type Errors []error

// Error joins the problems, one per line.
func (e *Errors) Error() string {
	lines := make([]string, len(*e))
	for i, err := range *e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (e *Errors) Unwrap() []error { return *e }

// add records a problem with the option at key, a full path such as
// "sms.code_ttl" or "clients[0].redirect_uris[1]".
func (e *Errors) add(key, format string, args ...any) {
	*e = append(*e, &Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// err returns e, or nil when there is no problem.
func (e *Errors) err() error {
	if len(*e) == 0 {
		return nil
	}
	return e
}

// Problem is one line of Errors: what is wrong with the option at Key. Plug-in
// registries (factors/sms) report their own problems with it too, so that
// every configuration message reads the same.
type Problem struct {
	Key string // full path: "sms.providers[1].config.client_id"
	Msg string // "is required"
}

// Error renders "section: option 'name' msg", Authelia's format; options at
// the top level have no section.
func (p *Problem) Error() string {
	section, option := "", p.Key
	if i := strings.LastIndexByte(p.Key, '.'); i >= 0 {
		section, option = p.Key[:i], p.Key[i+1:]
	}
	if section == "" {
		return fmt.Sprintf("option '%s' %s", option, p.Msg)
	}
	return fmt.Sprintf("%s: option '%s' %s", section, option, p.Msg)
}

// Validate reports every problem with c at once, as a *Errors, or nil. Empty
// options that have a default (storage, the client metadata) are checked as
// that default, the way Load fills them in. dev relaxes what --dev provides
// or tolerates: system_secret and sms.providers may be empty, the log sender
// is allowed, and URLs may use plain http on any host.
func (c Config) Validate(dev bool) error {
	c = c.normalize()
	var errs Errors
	for _, section := range []func(Config, bool, *Errors){
		validateServer,
		validateHTTP,
		validateRedis,
		validatePhone,
		validateLimits,
		validateSMS,
		validateFactor,
		validateLogin,
		validateTokens,
		validateLog,
		validateAdmin,
		validateTracing,
		validateClients,
	} {
		section(c, dev, &errs)
	}
	return errs.err()
}

func validateServer(c Config, dev bool, errs *Errors) {
	if c.Issuer == "" {
		errs.add("issuer", "is required, e.g. 'https://id.example.com'")
	} else if msg := urlProblem(c.Issuer, dev, true); msg != "" {
		errs.add("issuer", "%s", msg)
	}

	if c.Listen == "" {
		errs.add("listen", "is required, e.g. ':8080'")
	} else {
		checkAddr(errs, "listen", c.Listen)
	}
	if c.AdminListen != "" {
		checkAddr(errs, "admin_listen", c.AdminListen)
		if c.AdminListen == c.Listen {
			errs.add("admin_listen", "must differ from 'listen', got '%s' for both", c.Listen)
		}
	}

	switch {
	case c.SystemSecret == "" && !dev:
		errs.add("system_secret", "is required outside --dev: set it or 'system_secret_file' to at least %d random bytes, e.g. from 'openssl rand -base64 48'", minSystemSecretLen)
	case c.SystemSecret != "" && len(c.SystemSecret) < minSystemSecretLen:
		errs.add("system_secret", "must be at least %d bytes long, got %d", minSystemSecretLen, len(c.SystemSecret))
	}

	oneOf(errs, "storage", c.Storage, storages)
}

func validateRedis(c Config, _ bool, errs *Errors) {
	r := c.Redis
	if r.URL == "" {
		if c.Storage == "redis" {
			errs.add("redis.url", "is required when 'storage' is 'redis': set it, 'url_file' or OTPGATE_REDIS_URL, e.g. 'redis://redis:6379/0'")
		}
	} else {
		// Never quote the URL: it may carry a password.
		u, err := url.Parse(r.URL)
		switch {
		case err != nil:
			errs.add("redis.url", "is not a valid URL")
		case u.Scheme != "redis" && u.Scheme != "rediss":
			errs.add("redis.url", "must start with 'redis://' or 'rediss://' (TLS), got scheme '%s'", u.Scheme)
		case u.Host == "":
			errs.add("redis.url", "must name a host, e.g. 'redis://redis:6379/0'")
		}
	}
	// Storage keys use {…} as Redis Cluster hash tags; a brace in the prefix
	// would change which part of the key picks the slot.
	if strings.ContainsAny(r.KeyPrefix, "{} \t\r\n") {
		errs.add("redis.key_prefix", "must not contain '{', '}' or spaces, got '%s'", r.KeyPrefix)
	}
	validateRedisDeployment(r, errs)
}

// validateRedisDeployment checks the Sentinel and Cluster options and the
// connection pool, timeouts and retries.
func validateRedisDeployment(r RedisConfig, errs *Errors) {
	cluster := len(r.ClusterAddrs) > 0
	if u, err := url.Parse(r.URL); err == nil && u.Query().Has("addr") {
		cluster = true
	}
	switch {
	case r.SentinelMaster != "" && len(r.SentinelAddrs) == 0:
		errs.add("redis.sentinel_addrs", "is required when 'sentinel_master' is set: list the Sentinels, e.g. [sentinel-1:26379, sentinel-2:26379]")
	case r.SentinelMaster == "" && len(r.SentinelAddrs) > 0:
		errs.add("redis.sentinel_master", "is required when 'sentinel_addrs' is set: the name of the master the Sentinels monitor, e.g. 'mymaster'")
	case r.SentinelMaster != "" && cluster:
		errs.add("redis.sentinel_master", "and 'cluster_addrs' (or ?addr= in 'url') are both set: a deployment is Sentinel or Cluster, not both")
	}
	if r.SentinelMaster == "" {
		// Credentials for Sentinels that are not used would hide a
		// misconfiguration: the Redis password belongs in url.
		for _, o := range []struct{ key, value string }{{"sentinel_username", r.SentinelUsername}, {"sentinel_password", r.SentinelPassword}} {
			if o.value != "" {
				errs.add("redis."+o.key, "is only used with 'sentinel_master': it authenticates to the Sentinels; the Redis password goes in 'url' (redis://:password@host:6379/0)")
			}
		}
	} else if r.SentinelUsername != "" && r.SentinelPassword == "" {
		errs.add("redis.sentinel_username", "needs 'sentinel_password' (or 'sentinel_password_file'): a Sentinel ACL user authenticates with a password")
	}
	for i, a := range r.SentinelAddrs {
		checkAddr(errs, fmt.Sprintf("redis.sentinel_addrs[%d]", i), a)
	}
	for i, a := range r.ClusterAddrs {
		checkAddr(errs, fmt.Sprintf("redis.cluster_addrs[%d]", i), a)
	}
	between(errs, "redis.pool_size", r.PoolSize, 0, 10000)
	between(errs, "redis.dial_timeout", r.DialTimeout, Duration(10*time.Millisecond), minutes(1))
	between(errs, "redis.read_timeout", r.ReadTimeout, Duration(10*time.Millisecond), minutes(1))
	between(errs, "redis.write_timeout", r.WriteTimeout, Duration(10*time.Millisecond), minutes(1))
	between(errs, "redis.max_retries", r.MaxRetries, 0, 10)
}

func validatePhone(c Config, _ bool, errs *Errors) {
	p := c.Phone
	supported := phonenumbers.GetSupportedRegions()
	region := func(key, code string) bool {
		if supported[code] {
			return true
		}
		errs.add(key, "must be an ISO 3166-1 alpha-2 region code that has phone numbers, like 'FR', got '%s'", code)
		return false
	}
	if p.DefaultRegion != "" && region("phone.default_region", p.DefaultRegion) {
		switch {
		case slices.Contains(p.DeniedRegions, p.DefaultRegion):
			errs.add("phone.default_region", "must not be one of 'denied_regions', got '%s'", p.DefaultRegion)
		case len(p.AllowedRegions) > 0 && !slices.Contains(p.AllowedRegions, p.DefaultRegion):
			errs.add("phone.default_region", "must be one of 'allowed_regions' (%s), got '%s'", quoteList(p.AllowedRegions), p.DefaultRegion)
		}
	}
	for i, code := range p.AllowedRegions {
		region(fmt.Sprintf("phone.allowed_regions[%d]", i), code)
	}
	for i, code := range p.DeniedRegions {
		key := fmt.Sprintf("phone.denied_regions[%d]", i)
		if region(key, code) && slices.Contains(p.AllowedRegions, code) {
			errs.add(key, "must not also be in 'allowed_regions', got '%s'", code)
		}
	}
}

func validateSMS(c Config, dev bool, errs *Errors) {
	s := c.SMS
	validateSMSDelivery(s, dev, c.Factor != "orange", errs)
	between(errs, "sms.code_length", s.CodeLength, 4, 10)
	between(errs, "sms.code_ttl", s.CodeTTL, minutes(1), minutes(10))
	between(errs, "sms.max_attempts", s.MaxAttempts, 1, 10)
	// The factors read 0 as "use the default", so the ranges start at 1.
	between(errs, "sms.resend_cooldown", s.ResendCooldown, seconds(1), minutes(5))
	if s.ResendCooldown <= minutes(5) && s.ResendCooldown >= s.CodeTTL && s.CodeTTL >= minutes(1) {
		errs.add("sms.resend_cooldown", "must be shorter than sms.code_ttl (%v), got '%v'", s.CodeTTL, s.ResendCooldown)
	}
	between(errs, "sms.max_resends", s.MaxResends, 1, 10)
	between(errs, "sms.outbox_size", s.OutboxSize, 1, 10000)
}

func validateLogin(c Config, _ bool, errs *Errors) {
	l := c.Login
	between(errs, "login.flow_ttl", l.FlowTTL, minutes(1), hours(1))
	between(errs, "login.session_ttl", l.SessionTTL, 0, hours(720))
	between(errs, "login.consent_ttl", l.ConsentTTL, 0, hours(8760))
	oneOf(errs, "login.default_locale", l.DefaultLocale, locales)
}

func validateTokens(c Config, _ bool, errs *Errors) {
	t := c.Tokens
	between(errs, "tokens.authorize_code_ttl", t.AuthorizeCodeTTL, seconds(10), minutes(10))
	between(errs, "tokens.access_token_ttl", t.AccessTokenTTL, minutes(1), hours(24))
	between(errs, "tokens.id_token_ttl", t.IDTokenTTL, minutes(1), hours(24))
	between(errs, "tokens.refresh_token_ttl", t.RefreshTokenTTL, hours(1), hours(8760))
}

func validateLog(c Config, _ bool, errs *Errors) {
	oneOf(errs, "log.level", c.Log.Level, logLevels)
	oneOf(errs, "log.format", c.Log.Format, logFormats)
}

func validateAdmin(c Config, _ bool, errs *Errors) {
	a := c.Admin
	if n := utf8.RuneCountInString(a.Token); n > 0 && n < minAdminTokenLen {
		errs.add("admin.token", "must be at least %d characters long, got %d: use e.g. 'openssl rand -base64 32'", minAdminTokenLen, n)
	}
	if a.KeyRotationInterval != 0 {
		between(errs, "admin.key_rotation_interval", a.KeyRotationInterval, hours(1), hours(8760))
		// A key rotated out stays published for the longest token lifetime;
		// rotating faster than that only piles up published keys.
		longest := max(c.Tokens.IDTokenTTL, c.Tokens.AccessTokenTTL)
		if a.KeyRotationInterval >= hours(1) && a.KeyRotationInterval < longest {
			errs.add("admin.key_rotation_interval", "must be 0s or at least the longest token lifetime (tokens.id_token_ttl, tokens.access_token_ttl: %v), got '%v'", longest, a.KeyRotationInterval)
		}
	}
}

func validateClients(c Config, dev bool, errs *Errors) {
	firstIndex := map[string]int{} // client_id → index of its first use
	for i, cl := range c.Clients {
		key := func(option string) string { return fmt.Sprintf("clients[%d].%s", i, option) }

		if cl.ClientID == "" {
			errs.add(key("client_id"), "is required")
		} else if j, dup := firstIndex[cl.ClientID]; dup {
			errs.add(key("client_id"), "must be unique, got '%s' which clients[%d] already uses", cl.ClientID, j)
		} else {
			firstIndex[cl.ClientID] = i
		}

		method := cl.TokenEndpointAuthMethod
		if oneOf(errs, key("token_endpoint_auth_method"), method, authMethods) {
			switch {
			case method == "none" && cl.ClientSecret != "":
				errs.add(key("client_secret"), "must not be set when 'token_endpoint_auth_method' is 'none': a public client has no secret")
			case method != "none" && cl.ClientSecret == "":
				errs.add(key("client_secret"), "is required when 'token_endpoint_auth_method' is '%s': set it or 'client_secret_file' (at least %d characters), or use 'none' for a public client", method, minClientSecretLen)
			case method != "none" && utf8.RuneCountInString(cl.ClientSecret) < minClientSecretLen:
				errs.add(key("client_secret"), "must be at least %d characters long, got %d", minClientSecretLen, utf8.RuneCountInString(cl.ClientSecret))
			}
		}

		if cl.LogoURI != "" {
			if msg := urlProblem(cl.LogoURI, dev, false); msg != "" {
				errs.add(key("logo_uri"), "%s", msg)
			}
		}
		if len(cl.RedirectURIs) == 0 {
			errs.add(key("redirect_uris"), "is required: list at least one URL, e.g. ['https://app.example.com/callback']")
		}
		for j, u := range cl.RedirectURIs {
			if msg := urlProblem(u, dev, false); msg != "" {
				errs.add(key(fmt.Sprintf("redirect_uris[%d]", j)), "%s", msg)
			}
		}
		for j, u := range cl.PostLogoutRedirectURIs {
			if msg := urlProblem(u, dev, false); msg != "" {
				errs.add(key(fmt.Sprintf("post_logout_redirect_uris[%d]", j)), "%s", msg)
			}
		}

		for j, g := range cl.GrantTypes {
			oneOf(errs, key(fmt.Sprintf("grant_types[%d]", j)), g, grantTypes)
		}
		if !slices.Contains(cl.GrantTypes, "authorization_code") {
			errs.add(key("grant_types"), "must contain 'authorization_code', got %s", quoteList(cl.GrantTypes))
		}
		for j, r := range cl.ResponseTypes {
			oneOf(errs, key(fmt.Sprintf("response_types[%d]", j)), r, responseTypes)
		}
		if !slices.Contains(cl.Scopes(), "openid") {
			errs.add(key("scope"), "must contain 'openid', got '%s'", cl.Scope)
		}
		oneOf(errs, key("id_token_signed_response_alg"), cl.IDTokenSignedResponseAlg, signingAlgs)
	}
}

// between reports v outside [lo, hi] in the one format every range uses:
// "must be between 1m and 10m, got '30m'".
func between[T int | Duration](errs *Errors, key string, v, lo, hi T) {
	if v < lo || v > hi {
		errs.add(key, "must be between %v and %v, got '%v'", lo, hi, v)
	}
}

// oneOf reports v when it is not one of allowed, and says whether it is.
func oneOf(errs *Errors, key, v string, allowed []string) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	errs.add(key, "must be one of %s, got '%s'", quoteList(allowed), v)
	return false
}

func quoteList(list []string) string {
	quoted := make([]string, len(list))
	for i, s := range list {
		quoted[i] = "'" + s + "'"
	}
	return strings.Join(quoted, ", ")
}

// checkAddr reports an address net.Listen would not take as host:port.
func checkAddr(errs *Errors, key, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		errs.add(key, "must be a host:port address like ':8080' or '127.0.0.1:8081', got '%s'", addr)
	}
}

// urlProblem says what is wrong with raw as an absolute http(s) URL otpgate
// sends browsers to, or returns "". https is required outside --dev except for
// loopback hosts (native apps, RFC 8252 §7.3, and local testing). An issuer
// must also be free of query and trailing slash (OIDC Discovery §4 appends
// "/.well-known/openid-configuration" to it).
func urlProblem(raw string, dev, issuer bool) string {
	example := "https://app.example.com/callback"
	if issuer {
		example = "https://id.example.com"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return fmt.Sprintf("must be an absolute URL like '%s', got '%s'", example, raw)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("must use https, got '%s'", raw)
	case u.Scheme == "http" && !dev && !isLoopback(u.Hostname()):
		return fmt.Sprintf("must use https outside --dev (http is allowed only for localhost and loopback addresses), got '%s'", raw)
	case u.User != nil:
		return "must not contain a user name or password" // do not echo it
	case strings.Contains(raw, "#"):
		return fmt.Sprintf("must not have a fragment ('#...'), got '%s'", raw)
	case issuer && (u.RawQuery != "" || u.ForceQuery):
		return fmt.Sprintf("must not have a query ('?...'), got '%s'", raw)
	case issuer && strings.HasSuffix(u.Path, "/"):
		return fmt.Sprintf("must not end with '/': use '%s'", strings.TrimRight(raw, "/"))
	}
	return ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
