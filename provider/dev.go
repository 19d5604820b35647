package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/templates"
)

// DemoClientID is the relying party that dev mode registers for /dev/demo.
const DemoClientID = "otpgate-demo"

// The client dev mode registers for `otpgate bench`: public (PKCE, no
// secret), no consent, and a loopback redirect URI nobody serves: the
// benchmark reads the code from the redirect and never follows it.
// BenchES256ClientID is the same client with ES256 ID tokens.
const (
	BenchClientID      = "otpgate-bench"
	BenchES256ClientID = "otpgate-bench-es256"
	BenchRedirectURI   = "http://127.0.0.1/bench/callback"
)

const cookieDemo = "otpgate_demo"

// DevClients returns the clients dev mode registers: the demo relying party,
// with a secret generated for this run, and the benchmark's public client, in
// two versions: RS256 ID tokens (the default of OpenID Connect) and ES256.
func DevClients(issuer string) []StaticClient {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	bench := StaticClient{Client: storage.Client{
		ID:                      BenchClientID,
		Name:                    "otpgate bench",
		RedirectURIs:            []string{BenchRedirectURI},
		GrantTypes:              []string{"authorization_code"},
		ResponseTypes:           []string{"code"},
		Scopes:                  []string{"openid", "phone"},
		TokenEndpointAuthMethod: "none",
		SkipConsent:             true,
	}}
	// The same client with ES256 ID tokens, to measure what RS256 costs.
	benchES256 := bench
	benchES256.ID, benchES256.Name, benchES256.IDTokenSignedResponseAlg = BenchES256ClientID, "otpgate bench (ES256)", "ES256"
	return []StaticClient{bench, benchES256, {
		Client: storage.Client{
			ID:                      DemoClientID,
			Name:                    "otpgate demo",
			RedirectURIs:            []string{issuer + "/dev/demo/callback"},
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
			Scopes:                  []string{"openid", "phone", "offline_access"},
			TokenEndpointAuthMethod: "client_secret_basic",
			SkipConsent:             true,
		},
		Secret: base64.RawURLEncoding.EncodeToString(secret),
	}}
}

// registerDev serves the start page, the outbox and the demo relying party.
func (p *Provider) registerDev(r gin.IRouter) {
	r.GET("/", func(c *gin.Context) {
		p.render(c, http.StatusOK, "index", p.pageLocale(c), templates.Page{Issuer: p.opts.Issuer})
	})
	r.GET("/dev/outbox", p.handleOutboxPage)
	r.GET("/dev/outbox.json", p.handleOutboxJSON)
	r.GET("/dev/demo", p.handleDemo)
	r.GET("/dev/demo/login", p.handleDemoLogin)
	r.GET("/dev/demo/callback", p.handleDemoCallback)
}

func (p *Provider) pageLocale(c *gin.Context) string {
	return templates.Negotiate(c.Query("ui_locales"), c.GetHeader("Accept-Language"), p.opts.DefaultLocale)
}

// outboxMessage is the JSON shape of /dev/outbox.json.
type outboxMessage struct {
	To     string `json:"to"`
	Body   string `json:"body"`
	SentAt string `json:"sent_at"`
}

const (
	outboxPageSize = 50
	outboxScanMax  = 10000 // the largest sms.outbox_size
)

func (p *Provider) handleOutboxPage(c *gin.Context) {
	msgs, err := p.store.ListOutbox(c.Request.Context(), outboxPageSize)
	if err != nil {
		p.log.Error("outbox: list", "err", err)
		p.renderError(c, http.StatusServiceUnavailable, "error.unavailable")
		return
	}
	items := make([]templates.OutboxItem, len(msgs))
	for i, m := range msgs {
		items[i] = templates.OutboxItem{To: m.To, Body: m.Body, SentAt: m.SentAt}
	}
	p.render(c, http.StatusOK, "outbox", p.pageLocale(c), templates.Page{Issuer: p.opts.Issuer, Outbox: items})
}

// handleOutboxJSON lists the newest messages; ?to=+E164 searches every
// message the outbox keeps for that number instead, and ?to=…&newest=1 only
// the newest one: that is what `otpgate bench` asks for at every login, so it
// reads the outbox in growing windows and stops at the first that holds a
// message to the number (under load it is among the last few dozen sent),
// instead of decoding the whole outbox each time.
func (p *Provider) handleOutboxJSON(c *gin.Context) {
	to, newest := c.Query("to"), c.Query("newest") == "1"
	windows := []int{outboxPageSize}
	switch {
	case to != "" && newest:
		windows = []int{64, 1024, outboxScanMax}
	case to != "":
		windows = []int{outboxScanMax}
	}
	out := []outboxMessage{}
	for _, limit := range windows {
		msgs, err := p.store.ListOutbox(c.Request.Context(), limit)
		if err != nil {
			p.log.Error("outbox: list", "err", err)
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "temporarily_unavailable"})
			return
		}
		for _, m := range msgs {
			if to == "" || m.To == to {
				out = append(out, outboxMessage{To: m.To, Body: m.Body, SentAt: m.SentAt.UTC().Format("2006-01-02T15:04:05Z07:00")})
			}
		}
		if newest && len(out) > 0 {
			out = out[:1]
			break
		}
		if len(msgs) < limit {
			break // the whole outbox was read
		}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// demoRP is the relying party behind /dev/demo: a real OpenID Connect client
// (golang.org/x/oauth2 + go-oidc) that talks to this provider over HTTP, like
// any application would.
type demoRP struct {
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	provider *oidc.Provider
}

// demo returns the demo relying party, discovering the provider on first use
// (and again after a failure: the listener may not have been up yet).
func (p *Provider) demo(ctx context.Context) (*demoRP, error) {
	p.demoMu.Lock()
	defer p.demoMu.Unlock()
	if p.demoRP != nil {
		return p.demoRP, nil
	}
	var secret string
	for _, sc := range p.opts.StaticClients {
		if sc.ID == DemoClientID {
			secret = sc.Secret
		}
	}
	if secret == "" {
		return nil, errors.New("demo client not registered")
	}
	prov, err := oidc.NewProvider(ctx, p.opts.Issuer)
	if err != nil {
		return nil, err
	}
	p.demoRP = &demoRP{
		provider: prov,
		verifier: prov.Verifier(&oidc.Config{ClientID: DemoClientID}),
		oauth: oauth2.Config{
			ClientID: DemoClientID, ClientSecret: secret,
			Endpoint:    prov.Endpoint(),
			RedirectURL: p.opts.Issuer + "/dev/demo/callback",
			Scopes:      []string{oidc.ScopeOpenID, "phone", "offline_access"},
		},
	}
	return p.demoRP, nil
}

func (p *Provider) handleDemo(c *gin.Context) {
	p.render(c, http.StatusOK, "demo", p.pageLocale(c), templates.Page{Issuer: p.opts.Issuer, Demo: &templates.Demo{LoginURL: "/dev/demo/login"}})
}

// demoState is what the demo keeps in its cookie between login and callback.
type demoState struct {
	State, Nonce, Verifier string
}

func (p *Provider) handleDemoLogin(c *gin.Context) {
	rp, err := p.demo(c.Request.Context())
	if err != nil {
		p.demoError(c, err)
		return
	}
	st := demoState{State: randomID(), Nonce: randomID(), Verifier: oauth2.GenerateVerifier()}
	raw, _ := json.Marshal(st)
	val := base64.RawURLEncoding.EncodeToString(raw)
	p.setCookie(c, cookieDemo, val+"."+mac(p.csrfKey, "demo", val), 0)
	c.Redirect(http.StatusSeeOther, rp.oauth.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)))
}

func (p *Provider) handleDemoCallback(c *gin.Context) {
	ctx := c.Request.Context()
	rp, err := p.demo(ctx)
	if err != nil {
		p.demoError(c, err)
		return
	}
	var st demoState
	ck, _ := c.Cookie(cookieDemo)
	val, sig, _ := strings.Cut(ck, ".")
	raw, decErr := base64.RawURLEncoding.DecodeString(val)
	if decErr != nil || !macEqual(sig, mac(p.csrfKey, "demo", val)) || json.Unmarshal(raw, &st) != nil || st.State != c.Query("state") {
		p.demoError(c, errors.New("state mismatch: start the demo again"))
		return
	}
	if e := c.Query("error"); e != "" {
		p.demoError(c, errors.New(e+": "+c.Query("error_description")))
		return
	}
	tok, err := rp.oauth.Exchange(ctx, c.Query("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		p.demoError(c, err)
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, rawID)
	if err != nil {
		p.demoError(c, err)
		return
	}
	if idt.Nonce != st.Nonce {
		p.demoError(c, errors.New("nonce mismatch"))
		return
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	demo := &templates.Demo{LoginURL: "/dev/demo/login", IDToken: rawID, Claims: prettyJSON(claims), Header: prettyJSON(jwtHeader(rawID))}
	if ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		var m map[string]any
		_ = ui.Claims(&m)
		demo.UserInfo = prettyJSON(m)
	}
	p.render(c, http.StatusOK, "demo", p.pageLocale(c), templates.Page{Issuer: p.opts.Issuer, Demo: demo})
}

func (p *Provider) demoError(c *gin.Context, err error) {
	p.log.Warn("demo: login failed", "err", err)
	p.render(c, http.StatusBadGateway, "demo", p.pageLocale(c), templates.Page{Issuer: p.opts.Issuer, Demo: &templates.Demo{LoginURL: "/dev/demo/login", Error: err.Error()}})
}

// jwtHeader decodes a JWT's header for display.
func jwtHeader(token string) map[string]any {
	h, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

func prettyJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
