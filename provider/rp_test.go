package provider_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// rp is a relying party built from the libraries real applications use:
// golang.org/x/oauth2 for the protocol and go-oidc for discovery and ID token
// verification.
type rp struct {
	t        testing.TB
	e        *env
	id       string
	conf     oauth2.Config
	prov     *oidc.Provider
	verifier *oidc.IDTokenVerifier
	ctx      context.Context // carries the checked HTTP client
	tr       *checkedTransport
}

// newRP discovers the provider and configures client id with scopes (all of
// them when none are given).
func (e *env) newRP(id string, scopes ...string) *rp {
	e.t.Helper()
	if len(scopes) == 0 {
		scopes = allScopes
	}
	tr := newCheckedTransport(e.t)
	ctx := oidc.ClientContext(context.Background(), &http.Client{Transport: tr})
	prov, err := oidc.NewProvider(ctx, e.Issuer)
	if err != nil {
		e.t.Fatalf("discovery: %v", err)
	}
	style := oauth2.AuthStyleInHeader
	for _, c := range staticClients() {
		if c.ID == id && c.TokenEndpointAuthMethod != "client_secret_basic" {
			style = oauth2.AuthStyleInParams
		}
	}
	ep := prov.Endpoint()
	ep.AuthStyle = style
	cfg := &oidc.Config{ClientID: id}
	if id == clientES256 {
		cfg.SupportedSigningAlgs = []string{oidc.ES256}
	}
	return &rp{
		t: e.t, e: e, id: id, ctx: ctx, tr: tr, prov: prov,
		verifier: prov.Verifier(cfg),
		conf: oauth2.Config{
			ClientID: id, ClientSecret: clientSecrets[id],
			Endpoint: ep, RedirectURL: redirectURI(id), Scopes: scopes,
		},
	}
}

// authRequest is one authorization request and what the RP remembers of it.
type authRequest struct {
	State, Nonce, Verifier string
	URL                    string
}

// authorize builds an authorization request with state, nonce and PKCE S256.
func (r *rp) authorize(opts ...oauth2.AuthCodeOption) authRequest {
	ar := authRequest{State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier()}
	opts = append([]oauth2.AuthCodeOption{oidc.Nonce(ar.Nonce), oauth2.S256ChallengeOption(ar.Verifier)}, opts...)
	ar.URL = r.conf.AuthCodeURL(ar.State, opts...)
	return ar
}

// callback checks that p is the redirect to this RP carrying a code for ar,
// and returns the code.
func (r *rp) callback(p *page, ar authRequest) string {
	r.t.Helper()
	loc := p.location()
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != r.conf.RedirectURL {
		r.t.Fatalf("redirected to %s, want %s", got, r.conf.RedirectURL)
	}
	if e := q.Get("error"); e != "" {
		r.t.Fatalf("authorization failed: %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != ar.State {
		r.t.Fatalf("state %q, want %q", q.Get("state"), ar.State)
	}
	if q.Get("code") == "" {
		r.t.Fatalf("no code in %s", loc)
	}
	if q.Get("iss") != "" && q.Get("iss") != r.e.Issuer {
		r.t.Fatalf("iss %q in the authorization response, want %q", q.Get("iss"), r.e.Issuer)
	}
	return q.Get("code")
}

// callbackError checks that p is an error redirect to this RP for ar and
// returns the error code.
func (r *rp) callbackError(p *page, ar authRequest) string {
	r.t.Helper()
	loc := p.location()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != r.conf.RedirectURL {
		r.t.Fatalf("redirected to %s, want %s", got, r.conf.RedirectURL)
	}
	q := loc.Query()
	if q.Get("code") != "" {
		r.t.Fatalf("an error redirect carries a code: %s", loc)
	}
	if q.Get("state") != ar.State {
		r.t.Fatalf("error redirect state %q, want %q", q.Get("state"), ar.State)
	}
	if q.Get("error") == "" {
		r.t.Fatalf("no error in %s", loc)
	}
	return q.Get("error")
}

// tokens is a token response with its verified ID token.
type tokens struct {
	*oauth2.Token
	RawID  string
	ID     *oidc.IDToken
	Claims idClaims
	All    map[string]any
}

type idClaims struct {
	Iss           string   `json:"iss"`
	Sub           string   `json:"sub"`
	Exp           int64    `json:"exp"`
	Iat           int64    `json:"iat"`
	AuthTime      int64    `json:"auth_time"`
	Nonce         string   `json:"nonce"`
	AMR           []string `json:"amr"`
	ACR           string   `json:"acr"`
	AtHash        string   `json:"at_hash"`
	PhoneNumber   *string  `json:"phone_number"`
	PhoneVerified *bool    `json:"phone_number_verified"`
}

// exchange redeems code and verifies the ID token (signature against the
// JWKS, iss, aud, exp, nonce, at_hash).
func (r *rp) exchange(code string, ar authRequest) tokens {
	r.t.Helper()
	tok, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(ar.Verifier))
	if err != nil {
		r.t.Fatalf("token exchange: %v", err)
	}
	return r.verify(tok, ar.Nonce)
}

// verify checks the ID token of a token response.
func (r *rp) verify(tok *oauth2.Token, nonce string) tokens {
	r.t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		r.t.Fatal("token response has no id_token")
	}
	idt, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		r.t.Fatalf("verify ID token: %v", err)
	}
	if nonce != "" && idt.Nonce != nonce {
		r.t.Fatalf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		r.t.Fatalf("at_hash: %v", err)
	}
	out := tokens{Token: tok, RawID: raw, ID: idt}
	if err := idt.Claims(&out.Claims); err != nil {
		r.t.Fatal(err)
	}
	if err := idt.Claims(&out.All); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// refresh uses a refresh token; the error is an *oauth2.RetrieveError on refusal.
func (r *rp) refresh(refreshToken string) (*oauth2.Token, error) {
	return r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// oauthError returns the OAuth error code of a token endpoint refusal.
func oauthError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// postForm sends a client-authenticated form to an endpoint and decodes the
// JSON answer.
func (r *rp) postForm(path string, form url.Values) (int, map[string]any) {
	r.t.Helper()
	basic := r.conf.Endpoint.AuthStyle == oauth2.AuthStyleInHeader
	if !basic {
		form.Set("client_id", r.id)
		if r.conf.ClientSecret != "" {
			form.Set("client_secret", r.conf.ClientSecret)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, r.e.Issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(r.id), url.QueryEscape(r.conf.ClientSecret))
	}
	return doJSON(r.t, &http.Client{Transport: r.tr}, req)
}

func doJSON(t testing.TB, c *http.Client, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %q", req.Method, req.URL.Path, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, m
}

// introspect returns the introspection answer for token.
func (r *rp) introspect(token string) map[string]any {
	r.t.Helper()
	status, m := r.postForm("/oauth2/introspect", url.Values{"token": {token}})
	if status != http.StatusOK {
		r.t.Fatalf("introspect: status %d: %v", status, m)
	}
	return m
}

func (r *rp) active(token string) bool {
	r.t.Helper()
	active, _ := r.introspect(token)["active"].(bool)
	return active
}

// userinfo calls the userinfo endpoint with GET (bearer header) or POST
// (access_token form field).
func (r *rp) userinfo(method, token string) (int, map[string]any) {
	r.t.Helper()
	var req *http.Request
	if method == http.MethodGet {
		req, _ = http.NewRequest(http.MethodGet, r.e.Issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+token)
	} else {
		req, _ = http.NewRequest(http.MethodPost, r.e.Issuer+"/userinfo", strings.NewReader(url.Values{"access_token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return doJSON(r.t, &http.Client{Transport: r.tr}, req)
}

// jwtHeader decodes a compact JWT's header.
func jwtHeader(t testing.TB, raw string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	return m
}

// jwks fetches the published key set.
func (e *env) jwks() *jose.JSONWebKeySet {
	e.t.Helper()
	resp, err := http.Get(e.Issuer + "/.well-known/jwks.json")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		e.t.Fatalf("decode JWKS: %v", err)
	}
	return &set
}

// login runs a whole hosted login in b for r: authorize, phone page (typed
// as the user would), code from the outbox, consent when asked. It returns
// the request and the authorization code.
func (b *browser) login(r *rp, typed, e164 string, opts ...oauth2.AuthCodeOption) (authRequest, string) {
	b.t.Helper()
	ar := r.authorize(opts...)
	p := b.get(ar.URL)
	p.expect(http.StatusOK, "/login/phone")
	p = b.submit(p.form("/login/phone"), map[string]string{"phone": typed})
	p.expect(http.StatusOK, "/login/code")
	p = b.submit(p.form("/login/code"), map[string]string{"code": b.e.codeFor(e164)})
	if p.Status == http.StatusOK && p.URL.Path == "/login/consent" {
		p = b.submit(p.form("/login/consent"), map[string]string{"decision": "allow"})
	}
	return ar, r.callback(p, ar)
}

// loginTokens is login followed by the token exchange.
func (b *browser) loginTokens(r *rp, typed, e164 string, opts ...oauth2.AuthCodeOption) tokens {
	b.t.Helper()
	ar, code := b.login(r, typed, e164, opts...)
	return r.exchange(code, ar)
}
