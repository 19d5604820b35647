package storagetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"

	"github.com/otpgate/otpgate/storage"
)

// fositeProvider composes fosite the way otpgate does (explicit factories,
// never ComposeAllEnabled) over the adapter.
func fositeProvider(t *testing.T, f *storage.Fosite) fosite.OAuth2Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	secret := make([]byte, 32)
	rand.Read(secret)
	config := &fosite.Config{
		GlobalSecret:               secret,
		IDTokenIssuer:              "https://otpgate.example",
		AccessTokenLifespan:        time.Hour,
		RefreshTokenLifespan:       24 * time.Hour,
		AuthorizeCodeLifespan:      5 * time.Minute,
		SendDebugMessagesToClients: true,
	}
	keyGetter := func(context.Context) (any, error) { return key, nil }
	return compose.Compose(config, f,
		&compose.CommonStrategy{
			CoreStrategy:               compose.NewOAuth2HMACStrategy(config),
			OpenIDConnectTokenStrategy: compose.NewOpenIDConnectStrategy(keyGetter, config),
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
}

// fositeClient drives a provider through its Go API, as the HTTP handlers do.
type fositeClient struct {
	t        *testing.T
	p        fosite.OAuth2Provider
	clientID string
	verifier string
}

func (c *fositeClient) form(method, path string, v url.Values) *http.Request {
	if method == http.MethodGet {
		return httptest.NewRequest(method, path+"?"+v.Encode(), nil)
	}
	r := httptest.NewRequest(method, path, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func (c *fositeClient) authorizeParams() url.Values {
	sum := sha256.Sum256([]byte(c.verifier))
	return url.Values{
		"client_id":             {c.clientID},
		"response_type":         {"code"},
		"redirect_uri":          {"https://rp.example/callback"},
		"scope":                 {"openid phone offline_access"},
		"state":                 {"state-" + newID("s")},
		"nonce":                 {"nonce-" + newID("n")},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
}

// authorize completes an authorization request for a verified phone number
// and returns the code.
func (c *fositeClient) authorize(r *http.Request) string {
	c.t.Helper()
	ctx := c.t.Context()
	ar, err := c.p.NewAuthorizeRequest(ctx, r)
	if err != nil {
		c.t.Fatalf("authorize request: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	sess := openid.NewDefaultSession()
	sess.Subject = "sub-" + newID("u")
	sess.Claims.Subject = sess.Subject
	sess.Claims.AuthTime = time.Now().UTC()
	sess.Claims.RequestedAt = time.Now().UTC()
	sess.Claims.Extra = map[string]any{"phone_number": "+33612345678", "phone_number_verified": true}
	resp, err := c.p.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		c.t.Fatalf("authorize response: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	return resp.GetCode()
}

// token calls the token endpoint; it returns the response or the error.
func (c *fositeClient) token(v url.Values) (fosite.AccessResponder, error) {
	ctx := c.t.Context()
	v.Set("client_id", c.clientID)
	req, err := c.p.NewAccessRequest(ctx, c.form(http.MethodPost, "/oauth2/token", v), openid.NewDefaultSession())
	if err != nil {
		return nil, err
	}
	return c.p.NewAccessResponse(ctx, req)
}

func (c *fositeClient) mustToken(v url.Values) (access, refresh string) {
	c.t.Helper()
	resp, err := c.token(v)
	if err != nil {
		c.t.Fatalf("token endpoint: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	if resp.GetExtra("id_token") == nil {
		c.t.Fatal("token response without an ID token")
	}
	refresh, _ = resp.GetExtra("refresh_token").(string)
	return resp.GetAccessToken(), refresh
}

// active reports whether introspection accepts the token.
func (c *fositeClient) active(token string, tt fosite.TokenType) bool {
	_, _, err := c.p.IntrospectToken(c.t.Context(), token, tt, openid.NewDefaultSession())
	return err == nil
}

func (c *fositeClient) wantActive(name, token string, tt fosite.TokenType, want bool) {
	c.t.Helper()
	if got := c.active(token, tt); got != want {
		c.t.Errorf("%s: active %v, want %v", name, got, want)
	}
}

// testFositeEndToEnd runs real fosite handlers over the adapter: code + PKCE
// exchange with an ID token, code replay, refresh rotation, refresh reuse,
// revocation and a pushed authorization request.
func testFositeEndToEnd(t *testing.T, s storage.Store, f *storage.Fosite) {
	pub := newClient(newID("spa"))
	pub.SecretHash, pub.TokenEndpointAuthMethod = nil, "none"
	must(t, s.CreateClient(t.Context(), pub))
	p := fositeProvider(t, f)
	newRP := func(t *testing.T) *fositeClient {
		return &fositeClient{t: t, p: p, clientID: pub.ID, verifier: newID("verifier") + newID("v")}
	}
	exchange := func(c *fositeClient, code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {"https://rp.example/callback"}, "code_verifier": {c.verifier}}
	}
	refresh := func(token string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}
	}

	t.Run("CodeReplayRevokesTokens", func(t *testing.T) {
		c := newRP(t)
		code := c.authorize(c.form(http.MethodGet, "/oauth2/auth", c.authorizeParams()))
		access, refreshToken := c.mustToken(exchange(c, code))
		if refreshToken == "" {
			t.Fatal("no refresh token for offline_access")
		}
		c.wantActive("access token", access, fosite.AccessToken, true)

		if _, err := c.token(exchange(c, code)); !errorIs(err, fosite.ErrInvalidGrant) {
			t.Fatalf("replayed code: got %v, want invalid_grant", err)
		}
		c.wantActive("access token after code replay", access, fosite.AccessToken, false)
		c.wantActive("refresh token after code replay", refreshToken, fosite.RefreshToken, false)
	})

	t.Run("RefreshRotationAndReuse", func(t *testing.T) {
		c := newRP(t)
		code := c.authorize(c.form(http.MethodGet, "/oauth2/auth", c.authorizeParams()))
		access1, refresh1 := c.mustToken(exchange(c, code))
		access2, refresh2 := c.mustToken(refresh(refresh1))
		c.wantActive("first access token after refresh", access1, fosite.AccessToken, false)
		c.wantActive("second access token", access2, fosite.AccessToken, true)

		if _, err := c.token(refresh(refresh1)); !errorIs(err, fosite.ErrInvalidGrant) {
			t.Fatalf("reused refresh token: got %v, want invalid_grant", err)
		}
		// Reuse is treated as theft: the whole grant is revoked.
		c.wantActive("access token after reuse", access2, fosite.AccessToken, false)
		if _, err := c.token(refresh(refresh2)); err == nil {
			t.Fatal("the newest refresh token still works after reuse was detected")
		}
	})

	t.Run("Revocation", func(t *testing.T) {
		c := newRP(t)
		code := c.authorize(c.form(http.MethodGet, "/oauth2/auth", c.authorizeParams()))
		access, refreshToken := c.mustToken(exchange(c, code))
		r := c.form(http.MethodPost, "/oauth2/revoke", url.Values{"token": {refreshToken}, "client_id": {c.clientID}})
		must(t, c.p.NewRevocationRequest(t.Context(), r))
		c.wantActive("access token after revocation", access, fosite.AccessToken, false)
		if _, err := c.token(refresh(refreshToken)); err == nil {
			t.Fatal("a revoked refresh token still works")
		}
	})

	t.Run("PushedAuthorizationRequest", func(t *testing.T) {
		c := newRP(t)
		params := c.authorizeParams()
		params.Set("login_hint", "tel:+33612345678")
		ctx := t.Context()
		par, err := p.NewPushedAuthorizeRequest(ctx, c.form(http.MethodPost, "/oauth2/par", params))
		if err != nil {
			t.Fatalf("PAR: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
		}
		resp, err := p.NewPushedAuthorizeResponse(ctx, par, openid.NewDefaultSession())
		if err != nil {
			t.Fatalf("PAR response: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
		}
		uri := url.Values{"client_id": {c.clientID}, "request_uri": {resp.GetRequestURI()}}

		ar, err := p.NewAuthorizeRequest(ctx, c.form(http.MethodGet, "/oauth2/auth", uri))
		if err != nil {
			t.Fatalf("authorize with request_uri: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
		}
		if got := ar.GetRedirectURI().String(); got != params.Get("redirect_uri") {
			t.Errorf("redirect_uri %q, want %q", got, params.Get("redirect_uri"))
		}
		if ar.GetState() != params.Get("state") || ar.GetRequestForm().Get("login_hint") != params.Get("login_hint") {
			t.Errorf("state %q login_hint %q, want the pushed ones", ar.GetState(), ar.GetRequestForm().Get("login_hint"))
		}
		if _, err := p.NewAuthorizeRequest(ctx, c.form(http.MethodGet, "/oauth2/auth", uri)); err == nil {
			t.Error("a request_uri worked twice")
		}
	})
}

// errorIs matches fosite errors by their OAuth error code.
func errorIs(err error, target *fosite.RFC6749Error) bool {
	return err != nil && fosite.ErrorToRFC6749Error(err).ErrorField == target.ErrorField
}
