// Package provider is otpgate's OpenID Connect provider: the fosite composition,
// the HTTP routes (gin) for the protocol endpoints, the hosted login flow
// (phone, code, consent), browser sessions, and the development pages.
//
// Handlers are thin: they parse the request, call fosite, a factors.Factor or the
// storage.Store with the request's context, and render a page or redirect.
// provider depends on factors, storage, templates and provider/keys; nothing
// below it imports it.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
	"go.opentelemetry.io/otel/trace"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/provider/keys"
	"github.com/otpgate/otpgate/storage"
)

// Options configure a Provider. Store, Keys, Factor, Issuer and Secret are required.
type Options struct {
	Issuer string // e.g. https://login.example.com (no trailing slash)
	Secret []byte // the system secret; every other key is derived from it

	Store  storage.Store
	Keys   *keys.Manager
	Factor factors.Factor

	DefaultRegion string              // region for national phone formats ("FR"); "" requires +CC
	PhonePolicy   factors.PhonePolicy // allowed / denied regions
	CodeLength    int                 // shown on the code page
	ResendAfter   time.Duration       // cooldown shown on the code page (the factor enforces it)
	MaxResends    int                 // resends per challenge, shown on the code page

	FlowTTL          time.Duration // a pending login (default 15m)
	SessionTTL       time.Duration // browser SSO session; 0 = off
	ConsentTTL       time.Duration // remembered consent (default 30 days)
	AuthorizeCodeTTL time.Duration // default 1m
	AccessTokenTTL   time.Duration // default 1h
	IDTokenTTL       time.Duration // default 1h
	RefreshTokenTTL  time.Duration // default 30 days

	DefaultLocale string // "en"
	Dev           bool   // serve /dev pages and the demo relying party

	// TrustedProxies are the addresses or CIDR ranges of the reverse proxies
	// in front of the public listener: X-Forwarded-For and X-Real-IP are
	// believed only from them. Empty (the default) trusts none, so the
	// client IP the limits count is the TCP peer's.
	TrustedProxies []string
	// MaxBodyBytes bounds a request body on the public listener; a larger
	// one is refused with 413 before any handler parses it (default 64 KiB).
	MaxBodyBytes int64

	StaticClients []StaticClient // clients from the config file, seeded at start

	// AdminToken is the bearer token of the admin API; empty refuses every
	// admin call.
	AdminToken string
	// KeyRotationInterval rotates each signing key once it is this old, when
	// RunKeyRotation runs; 0 = rotate only on request.
	KeyRotationInterval time.Duration
	// KeyRetireAfter is how long a rotated-out key stays in the JWKS; at least
	// (and by default) the longest token lifetime plus a margin.
	KeyRetireAfter time.Duration

	// Metrics, if set, counts requests on the public listener and tokens
	// issued, and is served at /metrics on the admin listener. Pass the same
	// one to the factor, guard and senders as their factors.Observer.
	Metrics *Metrics
	// Pprof serves net/http/pprof at /debug/pprof/ on the admin listener,
	// behind the admin token.
	Pprof bool
	// Tracer, if set, runs each request on the public listener in a span
	// (tracing.go). Pass the same one to observe.Wrap and the SMS senders.
	Tracer trace.Tracer

	Logger *slog.Logger
	Now    func() time.Time
}

// StaticClient is a client defined in the configuration, with its secret in clear
// (it is hashed before it reaches the store).
type StaticClient struct {
	storage.Client
	Secret string
}

// Provider serves the OpenID Connect endpoints and the hosted login.
type Provider struct {
	opts    Options
	issuer  *url.URL
	store   storage.Store
	keys    *keys.Manager
	factor  factors.Factor
	oauth2  fosite.OAuth2Provider
	fconfig *fosite.Config
	secrets secretHasher
	log     *slog.Logger
	now     func() time.Time

	// static holds the configuration file's clients, secrets hashed, by id.
	// Built once in New and never written again: lookupClient answers them
	// from here, so they keep working when the store loses its data.
	static map[string]storage.Client

	subjectKey []byte
	stepKey    []byte
	csrfKey    []byte
	guardKey   []byte // audit events carry guard.PhoneHash under it
	secure     bool   // cookies Secure: the issuer is https
	// proxies are Options.TrustedProxies, parsed (gin parses its own copy).
	proxies []netip.Prefix
	// phoneExample is shown on the phone page: a national-format number of the
	// default region, with non-breaking spaces to keep it on one line.
	phoneExample string

	demoMu sync.Mutex
	demoRP *demoRP // the dev-mode relying party, built on first use

	warnedForwarded atomic.Bool // see warnUntrustedForwarding
}

// New builds a Provider and seeds the static clients into the store.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := opts.checkKeyOptions(); err != nil {
		return nil, err
	}
	iss, err := url.Parse(opts.Issuer)
	if err != nil || iss.Scheme == "" || iss.Host == "" {
		return nil, fmt.Errorf("provider: issuer %q is not an absolute URL", opts.Issuer)
	}
	proxies, err := parseProxies(opts.TrustedProxies)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		proxies:      proxies,
		opts:         opts,
		issuer:       iss,
		store:        opts.Store,
		keys:         opts.Keys,
		factor:       opts.Factor,
		secrets:      secretHasher{key: DeriveKey(opts.Secret, purposeClientSecret)},
		log:          opts.Logger,
		now:          opts.Now,
		subjectKey:   DeriveKey(opts.Secret, purposeSubject),
		stepKey:      DeriveKey(opts.Secret, purposeFlowStep),
		csrfKey:      DeriveKey(opts.Secret, purposeCSRF),
		guardKey:     GuardKey(opts.Secret),
		secure:       iss.Scheme == "https",
		phoneExample: strings.ReplaceAll(factors.ExampleNumber(opts.DefaultRegion), " ", "\u00a0"),
	}
	p.fconfig = &fosite.Config{
		IDTokenIssuer:                   opts.Issuer,
		AccessTokenIssuer:               opts.Issuer,
		TokenURL:                        opts.Issuer + "/oauth2/token",
		AuthorizeCodeLifespan:           opts.AuthorizeCodeTTL,
		AccessTokenLifespan:             opts.AccessTokenTTL,
		IDTokenLifespan:                 opts.IDTokenTTL,
		RefreshTokenLifespan:            opts.RefreshTokenTTL,
		GlobalSecret:                    DeriveKey(opts.Secret, purposeFosite),
		ScopeStrategy:                   fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:        fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCEForPublicClients:     true,
		EnablePKCEPlainChallengeMethod:  false,
		ClientSecretsHasher:             p.secrets,
		SendDebugMessagesToClients:      false,
		MinParameterEntropy:             fosite.MinParameterEntropy,
		RefreshTokenScopes:              []string{"offline_access"},
		PushedAuthorizeRequestURIPrefix: "urn:ietf:params:oauth:request_uri:",
		PushedAuthorizeContextLifespan:  time.Minute,
		AllowedPromptValues:             []string{"login", "none", "consent"},
		RedirectSecureChecker:           fosite.IsRedirectURISecureStrict,
	}
	fstore := storage.NewFosite(opts.Store, p.getClient, func() fosite.Session { return newSession() })
	signer := opts.Keys.Signer()
	// Compose explicitly: never ComposeAllEnabled, which turns on the implicit,
	// password and client-credentials grants.
	p.oauth2 = compose.Compose(p.fconfig, fstore, &compose.CommonStrategy{
		CoreStrategy:               compose.NewOAuth2HMACStrategy(p.fconfig),
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: signer, Config: p.fconfig},
		Signer:                     signer,
	},
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	if err := p.seedClients(ctx, opts.StaticClients); err != nil {
		return nil, err
	}
	return p, nil
}

func (o *Options) defaults() error {
	switch {
	case o.Store == nil:
		return errors.New("provider: Options.Store is required")
	case o.Keys == nil:
		return errors.New("provider: Options.Keys is required")
	case o.Factor == nil:
		return errors.New("provider: Options.Factor is required")
	case len(o.Secret) < 16:
		return errors.New("provider: Options.Secret is required (at least 16 bytes)")
	}
	setDuration := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDuration(&o.FlowTTL, 15*time.Minute)
	setDuration(&o.ConsentTTL, 30*24*time.Hour)
	setDuration(&o.AuthorizeCodeTTL, time.Minute)
	setDuration(&o.AccessTokenTTL, time.Hour)
	setDuration(&o.IDTokenTTL, time.Hour)
	setDuration(&o.RefreshTokenTTL, 30*24*time.Hour)
	setDuration(&o.ResendAfter, 30*time.Second)
	if o.MaxResends == 0 {
		o.MaxResends = 3
	}
	if o.CodeLength == 0 {
		o.CodeLength = 6
	}
	if o.DefaultLocale == "" {
		o.DefaultLocale = "en"
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// seedClients writes the static clients, replacing an earlier version of each,
// and keeps them in p.static. The store copy is for the admin list and for
// instances running an older binary; this process serves its own.
func (p *Provider) seedClients(ctx context.Context, clients []StaticClient) error {
	p.static = make(map[string]storage.Client, len(clients))
	for _, sc := range clients {
		if _, dup := p.static[sc.ID]; dup {
			// Two definitions (a config file client named like a --dev one):
			// one would silently replace the other.
			return fmt.Errorf("provider: static client %s is defined twice", sc.ID)
		}
		c := sc.Client
		c.Static = true
		if sc.Secret != "" {
			c.SecretHash = p.HashClientSecret(sc.Secret)
		}
		now := p.now().UTC()
		c.CreatedAt, c.UpdatedAt = now, now
		err := p.store.CreateClient(ctx, c)
		if errors.Is(err, storage.ErrAlreadyExists) {
			c, err = p.store.UpdateClient(ctx, c.ID, func(old storage.Client) (storage.Client, error) {
				c.CreatedAt = old.CreatedAt
				return c, nil
			})
		}
		if err != nil {
			return fmt.Errorf("provider: seed client %s: %w", sc.ID, err)
		}
		p.static[c.ID] = c
	}
	return nil
}

// Handler returns the public listener's routes.
func (p *Provider) Handler() http.Handler {
	r := gin.New()
	// gin trusts X-Forwarded-For from anyone by default: an attacker would
	// pick the address every per-IP limit counts. Validated in New.
	_ = r.SetTrustedProxies(p.opts.TrustedProxies)
	// traceRequest and instrument come first, to see what Recovery and
	// limitBody answer too.
	if p.opts.Tracer != nil {
		r.Use(p.traceRequest)
	}
	r.Use(p.opts.Metrics.instrument, gin.Recovery(), p.securityHeaders, p.limitBody, p.warnUntrustedForwarding, p.memoizeClients)
	p.registerProtocol(r)
	p.registerLogin(r)
	p.registerHealth(r)
	if p.opts.Dev {
		p.registerDev(r)
	}
	r.NoRoute(func(c *gin.Context) { p.renderError(c, http.StatusNotFound, "error.not_found") })
	return r
}

// AdminHandler returns the admin listener's routes.
func (p *Provider) AdminHandler() http.Handler {
	r := gin.New()
	r.Use(gin.Recovery())
	p.registerHealth(r)
	if p.opts.Metrics != nil {
		// Unauthenticated, like /healthz: the admin listener is private, and
		// the metrics hold no personal data.
		r.GET("/metrics", gin.WrapH(p.opts.Metrics.Handler()))
	}
	p.registerAdmin(r)
	r.NoRoute(adminNotFound)
	return r
}

func (p *Provider) registerHealth(r gin.IRouter) {
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	r.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		if err := p.store.Ping(ctx); err != nil {
			p.log.Warn("readiness: store unreachable", "err", err)
			c.String(http.StatusServiceUnavailable, "store unreachable\n")
			return
		}
		c.String(http.StatusOK, "ok\n")
	})
}

// Issuer returns the issuer URL.
func (p *Provider) Issuer() string { return p.opts.Issuer }
