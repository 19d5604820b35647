package provider

import (
	"context"
	"crypto/rand"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// adminRedirect is the relying parties' redirect URI: never served, the test
// browser stops there.
const adminRedirect = "http://127.0.0.1:9/cb"

var (
	adminCSRF    = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	adminSMSCode = regexp.MustCompile(`#(\d{4,10})\s*$`)
	adminPhoneN  atomic.Int64
)

// adminPhone returns a new French mobile number, so that logins do not share
// rate limits.
func adminPhone() string {
	return fmt.Sprintf("+3361234%04d", adminPhoneN.Add(1))
}

// adminRP is a relying party built on golang.org/x/oauth2 and go-oidc, for a
// client registered through the admin API.
type adminRP struct {
	e         *adminEnv
	conf      oauth2.Config
	verifier  *oidc.IDTokenVerifier
	consented int // consent pages answered
}

func (e *adminEnv) newRP(client map[string]any) *adminRP {
	e.t.Helper()
	prov, err := oidc.NewProvider(context.Background(), e.Public.URL)
	if err != nil {
		e.t.Fatalf("discovery: %v", err)
	}
	ep := prov.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if client["token_endpoint_auth_method"] != "client_secret_basic" {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	secret, _ := client["client_secret"].(string)
	id := client["client_id"].(string)
	algs := []string{oidc.RS256}
	if client["id_token_signed_response_alg"] == "ES256" {
		algs = []string{oidc.ES256}
	}
	return &adminRP{
		e:        e,
		verifier: prov.Verifier(&oidc.Config{ClientID: id, SupportedSigningAlgs: algs}),
		conf: oauth2.Config{
			ClientID: id, ClientSecret: secret, Endpoint: ep,
			RedirectURL: adminRedirect, Scopes: strings.Fields(client["scope"].(string)),
		},
	}
}

// login runs a whole browser login for phone and returns the token response
// and the verified ID token. Consent, when asked, is given.
func (r *adminRP) login(phone string) (*oauth2.Token, *oidc.IDToken) {
	t := r.e.t
	t.Helper()
	code, verifier := r.authorize(phone)
	tok, err := r.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("token exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	return tok, idt
}

// authorize runs the browser part of a login and returns the authorization
// code and the PKCE verifier.
func (r *adminRP) authorize(phone string) (code, verifier string) {
	t := r.e.t
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), adminRedirect) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	state, nonce := rand.Text(), rand.Text()
	verifier = oauth2.GenerateVerifier()
	resp := adminGet(t, b, r.conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
	if resp.URL.Path != "/login/phone" {
		t.Fatalf("authorize led to %s (%d): %s", resp.URL, resp.Status, resp.Body)
	}
	resp = adminPost(t, b, resp.URL.String(), url.Values{"phone": {phone}, "csrf_token": {resp.csrf(t)}})
	if resp.URL.Path != "/login/code" {
		t.Fatalf("phone submit led to %s (%d)", resp.URL, resp.Status)
	}
	resp = adminPost(t, b, resp.URL.String(), url.Values{"code": {r.e.smsCode(phone)}, "csrf_token": {resp.csrf(t)}})
	if resp.URL.Path == "/login/consent" {
		r.consented++
		resp = adminPost(t, b, resp.URL.String(), url.Values{"decision": {"allow"}, "csrf_token": {resp.csrf(t)}})
	}
	loc, err := url.Parse(resp.Location)
	if err != nil || !strings.HasPrefix(resp.Location, adminRedirect) {
		t.Fatalf("login ended at %s (%d), not at the redirect URI: %s", resp.URL, resp.Status, resp.Body)
	}
	q := loc.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("callback %s: want state and code", loc)
	}
	return q.Get("code"), verifier
}

// smsCode reads the newest code sent to phone from the outbox.
func (e *adminEnv) smsCode(phone string) string {
	e.t.Helper()
	msgs, err := e.Store.ListOutbox(context.Background(), 1)
	if err != nil || len(msgs) == 0 || msgs[0].To != phone {
		e.t.Fatalf("no SMS to %s in the outbox (%v, %v)", phone, msgs, err)
	}
	m := adminSMSCode.FindStringSubmatch(msgs[0].Body)
	if m == nil {
		e.t.Fatalf("no code in SMS %q", msgs[0].Body)
	}
	return m[1]
}

type adminPage struct {
	URL      *url.URL
	Status   int
	Location string
	Body     string
}

func (p adminPage) csrf(t testing.TB) string {
	t.Helper()
	m := adminCSRF.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("%s: no CSRF token in the page", p.URL)
	}
	return html.UnescapeString(m[1])
}

func adminGet(t testing.TB, c *http.Client, target string) adminPage {
	t.Helper()
	resp, err := c.Get(target)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return adminRead(t, resp)
}

func adminPost(t testing.TB, c *http.Client, target string, form url.Values) adminPage {
	t.Helper()
	resp, err := c.PostForm(target, form)
	if err != nil {
		t.Fatalf("POST %s: %v", target, err)
	}
	return adminRead(t, resp)
}

func adminRead(t testing.TB, resp *http.Response) adminPage {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return adminPage{URL: resp.Request.URL, Status: resp.StatusCode, Location: resp.Header.Get("Location"), Body: string(body)}
}

// TestAdminCreatedClientsLogIn registers clients through the admin API and
// logs in with each: authorize → phone → code from the outbox → token.
func TestAdminCreatedClientsLogIn(t *testing.T) {
	e := newAdminEnv(t)
	for _, meta := range []map[string]any{
		{"client_name": "Confidential", "scope": "openid phone"}, // asks for consent
		{"client_name": "Post ES256", "token_endpoint_auth_method": "client_secret_post", "id_token_signed_response_alg": "ES256", "skip_consent": true},
		{"client_name": "Public SPA", "token_endpoint_auth_method": "none", "skip_consent": true},
	} {
		t.Run(meta["client_name"].(string), func(t *testing.T) {
			e := *e
			e.t = t
			meta["redirect_uris"] = []string{adminRedirect}
			client := e.createClient(meta)
			rp := e.newRP(client)
			phone := adminPhone()
			tok, idt := rp.login(phone)
			if wantConsent := meta["skip_consent"] != true; (rp.consented == 1) != wantConsent {
				t.Errorf("consent pages: %d, want consent %v", rp.consented, wantConsent)
			}
			var claims struct {
				Phone    string   `json:"phone_number"`
				Verified bool     `json:"phone_number_verified"`
				AMR      []string `json:"amr"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if claims.Phone != phone || !claims.Verified || fmt.Sprint(claims.AMR) != "[sms]" {
				t.Errorf("claims %+v, want the verified phone %s and amr [sms]", claims, phone)
			}
			hdr := adminJWTHeader(t, tok.Extra("id_token").(string))
			if want := client["id_token_signed_response_alg"]; hdr["alg"] != want {
				t.Errorf("ID token alg %v, want %v", hdr["alg"], want)
			}
		})
	}

	t.Run("a rotated secret replaces the old one at once", func(t *testing.T) {
		e := *e
		e.t = t
		client := e.createClient(map[string]any{"redirect_uris": []string{adminRedirect}, "skip_consent": true, "scope": "openid"})
		rp := e.newRP(client)
		rotated := e.mustCall(http.StatusOK, http.MethodPost, "/admin/clients/"+client["client_id"].(string)+"/secret", nil)
		code, verifier := rp.authorize(adminPhone())
		if _, err := rp.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("token request with the old secret: %v, want invalid_client", err)
		}
		rp.conf.ClientSecret = rotated["client_secret"].(string)
		rp.login(adminPhone())
	})

	t.Run("a deleted client's tokens stop working", func(t *testing.T) {
		e := *e
		e.t = t
		client := e.createClient(map[string]any{"redirect_uris": []string{adminRedirect}, "skip_consent": true, "scope": "openid offline_access"})
		rp := e.newRP(client)
		tok, _ := rp.login(adminPhone())
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}
		userinfo := func() int {
			req, _ := http.NewRequest(http.MethodGet, e.Public.URL+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := userinfo(); got != http.StatusOK {
			t.Fatalf("userinfo before delete: %d", got)
		}
		e.mustCall(http.StatusNoContent, http.MethodDelete, "/admin/clients/"+client["client_id"].(string), nil)
		if got := userinfo(); got != http.StatusUnauthorized {
			t.Errorf("userinfo with a deleted client's access token: %d, want 401", got)
		}
		src := rp.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken})
		if _, err := src.Token(); err == nil {
			t.Error("a deleted client's refresh token still works")
		}
	})

	t.Run("a deleted client can no longer start a login", func(t *testing.T) {
		e := *e
		e.t = t
		client := e.createClient(map[string]any{"redirect_uris": []string{adminRedirect}, "skip_consent": true, "scope": "openid"})
		rp := e.newRP(client)
		e.mustCall(http.StatusNoContent, http.MethodDelete, "/admin/clients/"+client["client_id"].(string), nil)
		resp := adminGet(t, http.DefaultClient, rp.conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if resp.Status != http.StatusBadRequest || resp.URL.Path != "/oauth2/auth" {
			t.Errorf("authorize for a deleted client: %d at %s, want a 400 page", resp.Status, resp.URL)
		}
	})
}

func adminJWTHeader(t testing.TB, token string) map[string]any {
	t.Helper()
	sig, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := sig.Signatures[0].Protected
	return map[string]any{"alg": h.Algorithm, "kid": h.KeyID}
}
