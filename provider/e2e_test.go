package provider_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	phoneA      = "+33612345678"
	phoneATyped = "06 12 34 56 78" // national format, default region FR
	phoneB      = "+33698765432"
	maskedA     = "+33 6 •• •• •• 78"
)

func TestDiscovery(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		resp, err := http.Get(e.Issuer + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			t.Fatal(err)
		}
		if d["issuer"] != e.Issuer {
			t.Errorf("issuer %v, want %s", d["issuer"], e.Issuer)
		}
		for key, path := range map[string]string{
			"authorization_endpoint":                "/oauth2/auth",
			"token_endpoint":                        "/oauth2/token",
			"userinfo_endpoint":                     "/userinfo",
			"jwks_uri":                              "/.well-known/jwks.json",
			"revocation_endpoint":                   "/oauth2/revoke",
			"introspection_endpoint":                "/oauth2/introspect",
			"pushed_authorization_request_endpoint": "/oauth2/par",
		} {
			if d[key] != e.Issuer+path {
				t.Errorf("%s = %v, want %s", key, d[key], e.Issuer+path)
			}
		}
		if got := strList(d["code_challenge_methods_supported"]); !slices.Equal(got, []string{"S256"}) {
			t.Errorf("code_challenge_methods_supported %v, want [S256] (plain is disabled)", got)
		}
		if got := strList(d["response_types_supported"]); !slices.Equal(got, []string{"code"}) {
			t.Errorf("response_types_supported %v, want [code]: no implicit or hybrid", got)
		}
		grants := strList(d["grant_types_supported"])
		for _, g := range []string{"password", "client_credentials", "implicit"} {
			if slices.Contains(grants, g) {
				t.Errorf("grant_types_supported lists %s", g)
			}
		}
		for _, c := range []string{"phone_number", "phone_number_verified", "amr", "auth_time"} {
			if !slices.Contains(strList(d["claims_supported"]), c) {
				t.Errorf("claims_supported lacks %s", c)
			}
		}
	})
}

func strList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, s := range l {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}

// TestLoginHappyPath is the product's spine: a confidential RP, a user typing
// a national number, the code from the SMS, consent, tokens, then everything an
// RP does with them.
func TestLoginHappyPath(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientConfidential)
		b := e.newBrowser()
		before := time.Now().Add(-time.Second)

		ar := r.authorize()
		p := b.get(ar.URL)
		p.expect(http.StatusOK, "/login/phone")
		in := p.inputs["phone"]
		if in["type"] != "tel" || in["autocomplete"] != "tel" {
			t.Errorf("phone input %v, want type=tel autocomplete=tel", in)
		}
		if !strings.Contains(p.Text(), "Confidential RP") {
			t.Errorf("phone page does not name the client: %s", p.Text())
		}

		p = b.submit(p.form("/login/phone"), map[string]string{"phone": phoneATyped})
		p.expect(http.StatusOK, "/login/code")
		if !strings.Contains(p.Text(), "We sent a code to "+maskedA) {
			t.Errorf("code page does not show the masked number %q: %s", maskedA, p.Text())
		}
		if strings.Contains(p.Body, "612345678") || strings.Contains(p.Body, "12 34 56") {
			t.Error("code page shows the full number")
		}
		code := p.inputs["code"]
		if code["autocomplete"] != "one-time-code" || code["inputmode"] != "numeric" {
			t.Errorf("code input %v, want autocomplete=one-time-code inputmode=numeric", code)
		}
		if !p.hasLinkTo("/login/phone") {
			t.Error("code page has no 'use another number' link")
		}
		if !p.hasForm("/login/resend") {
			t.Error("code page has no resend form")
		}

		p = b.submit(p.form("/login/code"), map[string]string{"code": e.codeFor(phoneA)})
		p.expect(http.StatusOK, "/login/consent")
		text := p.Text()
		for _, want := range []string{"Confidential RP", "Know your verified phone number", "Stay signed in"} {
			if !strings.Contains(text, want) {
				t.Errorf("consent page lacks %q: %s", want, text)
			}
		}
		p = b.submit(p.form("/login/consent"), map[string]string{"decision": "allow"})
		tok := r.exchange(r.callback(p, ar), ar)

		// The ID token.
		c := tok.Claims
		if c.Iss != e.Issuer {
			t.Errorf("iss %q, want %q", c.Iss, e.Issuer)
		}
		if !slices.Equal(tok.ID.Audience, []string{clientConfidential}) {
			t.Errorf("aud %v, want [%s]", tok.ID.Audience, clientConfidential)
		}
		now := time.Now()
		if exp := time.Unix(c.Exp, 0); !exp.After(now) || exp.After(now.Add(2*time.Hour)) {
			t.Errorf("exp %v is not within the ID token lifetime", exp)
		}
		if iat := time.Unix(c.Iat, 0); iat.Before(before) || iat.After(now.Add(time.Second)) {
			t.Errorf("iat %v outside the test (%v … %v)", iat, before, now)
		}
		if at := time.Unix(c.AuthTime, 0); at.Before(before.Truncate(time.Second)) || at.After(now) {
			t.Errorf("auth_time %v outside the test (%v … %v)", at, before, now)
		}
		if c.Nonce != ar.Nonce {
			t.Errorf("nonce %q, want %q", c.Nonce, ar.Nonce)
		}
		if !slices.Equal(c.AMR, []string{"sms"}) {
			t.Errorf("amr %v, want [sms]", c.AMR)
		}
		if c.ACR == "" {
			t.Error("no acr")
		}
		if c.AtHash == "" {
			t.Error("no at_hash")
		}
		if c.PhoneNumber == nil || *c.PhoneNumber != phoneA {
			t.Errorf("phone_number %v, want %s", c.PhoneNumber, phoneA)
		}
		if c.PhoneVerified == nil || !*c.PhoneVerified {
			t.Errorf("phone_number_verified %v, want true", c.PhoneVerified)
		}
		if c.Sub == "" || strings.Contains(c.Sub, "612345678") {
			t.Errorf("sub %q must be opaque, not the number", c.Sub)
		}
		hdr := jwtHeader(t, tok.RawID)
		if hdr["alg"] != "RS256" {
			t.Errorf("ID token alg %v, want RS256", hdr["alg"])
		}
		kid, _ := hdr["kid"].(string)
		if kid == "" {
			t.Error("ID token header has no kid")
		} else if keys := e.jwks().Key(kid); len(keys) != 1 || keys[0].Algorithm != "RS256" || keys[0].Use != "sig" {
			t.Errorf("kid %q: JWKS has %v, want one RS256 signing key", kid, keys)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token despite offline_access")
		}

		// Userinfo, GET and POST.
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			status, ui := r.userinfo(method, tok.AccessToken)
			if status != http.StatusOK || ui["sub"] != c.Sub || ui["phone_number"] != phoneA || ui["phone_number_verified"] != true {
				t.Errorf("userinfo %s: %d %v, want sub %s and the verified phone", method, status, ui, c.Sub)
			}
		}
		if status, _ := r.userinfo(http.MethodGet, tok.AccessToken+"x"); status != http.StatusUnauthorized {
			t.Errorf("userinfo with a forged token: %d, want 401", status)
		}
		if ui, err := r.prov.UserInfo(r.ctx, oauth2.StaticTokenSource(tok.Token)); err != nil || ui.Subject != c.Sub {
			t.Errorf("go-oidc UserInfo: %v, %v", ui, err)
		}

		// Introspection, then refresh with rotation.
		if in := r.introspect(tok.AccessToken); in["active"] != true || in["client_id"] != clientConfidential {
			t.Errorf("introspect access token: %v, want active for %s", in, clientConfidential)
		}
		tok2, err := r.refresh(tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
			t.Fatalf("refresh did not rotate the refresh token")
		}
		rid := r.verify(tok2, "")
		if rid.Claims.Sub != c.Sub || rid.Claims.PhoneNumber == nil || *rid.Claims.PhoneNumber != phoneA {
			t.Errorf("refreshed ID token: sub %q phone %v, want the same person", rid.Claims.Sub, rid.Claims.PhoneNumber)
		}
		if !r.active(tok2.AccessToken) {
			t.Error("refreshed access token inactive")
		}
		if r.active(tok.AccessToken) {
			t.Error("the access token of a rotated refresh token stays active")
		}
		// The old refresh token fails, and its reuse revokes the new grant too.
		if _, err := r.refresh(tok.RefreshToken); oauthError(err) != "invalid_grant" {
			t.Errorf("reuse of a rotated refresh token: %v, want invalid_grant", err)
		}
		if _, err := r.refresh(tok2.RefreshToken); oauthError(err) != "invalid_grant" {
			t.Errorf("refresh token issued before a reuse: %v, want invalid_grant (grant revoked)", err)
		}
		if r.active(tok2.AccessToken) {
			t.Error("access token still active after refresh-token reuse")
		}

		// The subject is stable for one number and differs between numbers.
		again := e.newBrowser().loginTokens(r, "+33 6 12 34 56 78", phoneA)
		if again.Claims.Sub != c.Sub {
			t.Errorf("second login with the same number: sub %q, want %q", again.Claims.Sub, c.Sub)
		}
		other := e.newBrowser().loginTokens(r, phoneB, phoneB)
		if other.Claims.Sub == c.Sub || other.Claims.Sub == "" {
			t.Errorf("another number got sub %q (first %q)", other.Claims.Sub, c.Sub)
		}
		if other.Claims.PhoneNumber == nil || *other.Claims.PhoneNumber != phoneB {
			t.Errorf("phone_number %v, want %s", other.Claims.PhoneNumber, phoneB)
		}

		// Revocation: the access token becomes inactive and unusable.
		if !r.active(again.AccessToken) {
			t.Fatal("fresh access token inactive")
		}
		if status, m := r.postForm("/oauth2/revoke", url.Values{"token": {again.AccessToken}, "token_type_hint": {"access_token"}}); status != http.StatusOK {
			t.Fatalf("revoke: %d %v", status, m)
		}
		if r.active(again.AccessToken) {
			t.Error("revoked access token still active at introspection")
		}
		if status, _ := r.userinfo(http.MethodGet, again.AccessToken); status != http.StatusUnauthorized {
			t.Errorf("userinfo with a revoked token: %d, want 401", status)
		}
		// Revoking the refresh token ends the grant.
		if status, m := r.postForm("/oauth2/revoke", url.Values{"token": {again.RefreshToken}}); status != http.StatusOK {
			t.Fatalf("revoke refresh token: %d %v", status, m)
		}
		if _, err := r.refresh(again.RefreshToken); oauthError(err) != "invalid_grant" {
			t.Errorf("refresh with a revoked token: %v, want invalid_grant", err)
		}
	})
}

func TestES256Client(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientES256)
		tok := e.newBrowser().loginTokens(r, phoneA, phoneA) // skip_consent: no consent page
		hdr := jwtHeader(t, tok.RawID)
		if hdr["alg"] != "ES256" {
			t.Fatalf("ID token alg %v, want ES256", hdr["alg"])
		}
		kid, _ := hdr["kid"].(string)
		if keys := e.jwks().Key(kid); len(keys) != 1 || keys[0].Algorithm != "ES256" {
			t.Errorf("kid %q: JWKS has %v, want one ES256 key", kid, keys)
		}
		// A verifier that only accepts RS256 must refuse it: the alg is real.
		rs := r.prov.Verifier(&oidc.Config{ClientID: clientES256, SupportedSigningAlgs: []string{oidc.RS256}})
		if _, err := rs.Verify(r.ctx, tok.RawID); err == nil {
			t.Error("an RS256-only verifier accepted the ES256 ID token")
		}
		// The refreshed ID token keeps the client's algorithm.
		tok2, err := r.refresh(tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if alg := jwtHeader(t, r.verify(tok2, "").RawID)["alg"]; alg != "ES256" {
			t.Errorf("refreshed ID token alg %v, want ES256", alg)
		}
	})
}

func TestClientAuthMethods(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)

		t.Run("client_secret_post", func(t *testing.T) {
			e := e.with(t)
			r := e.newRP(clientPost)
			ar, code := e.newBrowser().login(r, phoneA, phoneA)
			// The registered method is enforced: the same secret in a Basic
			// header is refused.
			basic := *r
			basic.conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
			if _, err := basic.conf.Exchange(r.ctx, code, oauth2.VerifierOption(ar.Verifier)); oauthError(err) != "invalid_client" {
				t.Errorf("client_secret_post client using Basic: %v, want invalid_client", err)
			}
			tok := r.exchange(code, ar)
			if tok.Claims.PhoneNumber == nil || *tok.Claims.PhoneNumber != phoneA {
				t.Errorf("phone_number %v", tok.Claims.PhoneNumber)
			}
		})

		t.Run("public with PKCE", func(t *testing.T) {
			e := e.with(t)
			r := e.newRP(clientPublic)
			ar, code := e.newBrowser().login(r, phoneA, phoneA)
			if _, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthError(err) != "invalid_grant" {
				t.Errorf("exchange with the wrong code_verifier: %v, want invalid_grant", err)
			}
			ar, code = e.newBrowser().login(r, phoneA, phoneA)
			tok := r.exchange(code, ar)
			if tok.Claims.Sub == "" {
				t.Error("no sub")
			}
		})

		t.Run("public without PKCE", func(t *testing.T) {
			e := e.with(t)
			r := e.newRP(clientPublic)
			b := e.newBrowser()
			last := e.lastSMSID()
			ar := authRequest{State: randomString(), Nonce: randomString()}
			ar.URL = r.conf.AuthCodeURL(ar.State, oidc.Nonce(ar.Nonce))
			p := b.get(ar.URL)
			if got := r.callbackError(p, ar); got != "invalid_request" {
				t.Errorf("public client without PKCE: error %q, want invalid_request", got)
			}
			if p.URL.Path != "/oauth2/auth" {
				t.Errorf("the refusal came from %s, want /oauth2/auth itself (no login flow)", p.URL.Path)
			}
			if e.lastSMSID() != last {
				t.Error("an SMS was sent for a refused request")
			}
			// code_challenge_method=plain is refused the same way.
			ar.URL = r.conf.AuthCodeURL(ar.State, oidc.Nonce(ar.Nonce),
				oauth2.SetAuthURLParam("code_challenge", oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
			if got := r.callbackError(b.get(ar.URL), ar); got != "invalid_request" {
				t.Errorf("PKCE plain: error %q, want invalid_request", got)
			}
		})
	})
}

func TestAuthorizeRequestErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		env := newEnv(t, kind)
		base := env.newRP(clientConfidential).authorize()

		errorPage := func(t *testing.T, target string) {
			t.Helper()
			p := env.with(t).newBrowser().get(target)
			if p.Status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", p.Status)
			}
			if loc := p.Header.Get("Location"); loc != "" {
				t.Errorf("redirected to %q: an untrusted redirect URI must get a page", loc)
			}
			if !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") || len(p.alerts) != 1 {
				t.Errorf("want an HTML error page with one message, got %q: %.300s", p.Header.Get("Content-Type"), p.Body)
			}
			if p.URL.Path != "/oauth2/auth" {
				t.Errorf("ended at %s, want the error at /oauth2/auth", p.URL.Path)
			}
		}
		with := func(key, value string) string {
			u, _ := url.Parse(base.URL)
			q := u.Query()
			q.Set(key, value)
			u.RawQuery = q.Encode()
			return u.String()
		}
		t.Run("unregistered redirect URI", func(t *testing.T) {
			errorPage(t, with("redirect_uri", "https://evil.example/cb"))
			errorPage(t, with("redirect_uri", redirectURI(clientConfidential)+"/extra")) // exact match only
		})
		t.Run("unknown client", func(t *testing.T) {
			errorPage(t, with("client_id", "no-such-client"))
		})
		t.Run("no redirect_uri with openid", func(t *testing.T) {
			u, _ := url.Parse(base.URL)
			q := u.Query()
			q.Del("redirect_uri")
			u.RawQuery = q.Encode()
			errorPage(t, u.String())
		})
		// fosite checks the nonce only when it signs the ID token: the
		// provider must refuse it before any SMS is sent.
		t.Run("short nonce", func(t *testing.T) {
			e := env.with(t)
			r := e.newRP(clientConfidential)
			last := e.lastSMSID()
			ar := r.authorize()
			ar.URL = strings.Replace(ar.URL, "nonce="+ar.Nonce, "nonce=abc", 1)
			if got := r.callbackError(e.newBrowser().get(ar.URL), ar); got != "insufficient_entropy" {
				t.Errorf("3-character nonce: error %q, want insufficient_entropy", got)
			}
			if e.lastSMSID() != last {
				t.Error("an SMS was sent for a refused request")
			}
		})
		t.Run("scope not allowed", func(t *testing.T) {
			e := env.with(t)
			r, b := e.newRP(clientConfidential), e.newBrowser()
			ar := base
			ar.URL = with("scope", "openid admin")
			if got := r.callbackError(b.get(ar.URL), ar); got != "invalid_scope" {
				t.Errorf("error %q, want invalid_scope", got)
			}
		})
	})
}

func TestNoPhoneScope(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted, "openid")
		tok := e.newBrowser().loginTokens(r, phoneA, phoneA)
		for _, claim := range []string{"phone_number", "phone_number_verified"} {
			if _, ok := tok.All[claim]; ok {
				t.Errorf("ID token has %s without scope phone", claim)
			}
		}
		if tok.Claims.Sub == "" || !slices.Equal(tok.Claims.AMR, []string{"sms"}) {
			t.Errorf("sub %q amr %v", tok.Claims.Sub, tok.Claims.AMR)
		}
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			status, ui := r.userinfo(method, tok.AccessToken)
			if status != http.StatusOK || ui["sub"] != tok.Claims.Sub {
				t.Errorf("userinfo %s: %d %v", method, status, ui)
			}
			if _, ok := ui["phone_number"]; ok {
				t.Errorf("userinfo %s releases phone_number without scope phone: %v", method, ui)
			}
			if _, ok := ui["phone_number_verified"]; ok {
				t.Errorf("userinfo %s releases phone_number_verified without scope phone: %v", method, ui)
			}
		}
		if tok.RefreshToken != "" {
			t.Error("refresh token issued without offline_access")
		}
	})
}

func TestHealth(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		for _, base := range []string{e.Issuer, e.Admin.URL} {
			for _, path := range []string{"/healthz", "/readyz"} {
				resp, err := http.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s%s: %d, want 200", base, path, resp.StatusCode)
				}
			}
		}
		if kind != "memory" {
			return
		}
		// A store that does not answer makes /readyz (only) fail.
		_ = e.Store.Close()
		for _, base := range []string{e.Issuer, e.Admin.URL} {
			for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
				resp, err := http.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("closed store: %s%s: %d, want %d", base, path, resp.StatusCode, want)
				}
			}
		}
	})
}

// TestParallelRefresh: racing refreshes with one token never yield two
// grants, and never a server error.
func TestParallelRefresh(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)
		tok := e.newBrowser().loginTokens(r, phoneA, phoneA)
		const n = 8
		results := make(chan error, n)
		for range n {
			go func() {
				_, err := r.refresh(tok.RefreshToken)
				results <- err
			}()
		}
		ok := 0
		for range n {
			err := <-results
			if err == nil {
				ok++
				continue
			}
			if code := oauthError(err); code != "invalid_grant" && code != "invalid_request" {
				t.Errorf("losing refresh: %v, want invalid_grant or invalid_request", err)
			}
		}
		if ok > 1 {
			t.Errorf("%d parallel refreshes with one token succeeded, want at most 1", ok)
		}
	})
}

// TestUserinfoWithoutOpenID: an access token not granted openid gets
// insufficient_scope at userinfo.
func TestUserinfoWithoutOpenID(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted, "phone")
		ar, code := e.newBrowser().login(r, phoneA, phoneA)
		tok, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(ar.Verifier))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Extra("id_token") != nil {
			t.Error("an ID token without scope openid")
		}
		status, m := r.userinfo(http.MethodGet, tok.AccessToken)
		if status != http.StatusForbidden || m["error"] != "insufficient_scope" {
			t.Errorf("userinfo without openid: %d %v, want 403 insufficient_scope", status, m)
		}
	})
}

// TestFrench: ui_locales picks the pages' and the SMS's language.
func TestFrench(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)
		b := e.newBrowser()
		ar := r.authorize(oauth2.SetAuthURLParam("ui_locales", "fr-FR en"))
		p := b.get(ar.URL)
		p.expect(http.StatusOK, "/login/phone")
		if !strings.Contains(p.Body, `<html lang="fr">`) {
			t.Errorf("phone page not in French: %.200s", p.Text())
		}
		p = b.submit(p.form("/login/phone"), map[string]string{"phone": phoneATyped})
		p.expect(http.StatusOK, "/login/code")
		if !strings.Contains(p.Body, `<html lang="fr">`) {
			t.Errorf("code page not in French: %.200s", p.Text())
		}
		m := e.lastSMS()
		if m.Locale != "fr" || strings.Contains(m.Body, "is your otpgate sign-in code") {
			t.Errorf("SMS in %q: %q, want French", m.Locale, m.Body)
		}
		// Accept-Language alone works too.
		req, _ := http.NewRequest(http.MethodGet, r.authorize().URL, nil)
		req.Header.Set("Accept-Language", "fr-CA,fr;q=0.9,en;q=0.5")
		if p := e.newBrowser().do(req); !strings.Contains(p.Body, `<html lang="fr">`) {
			t.Errorf("Accept-Language fr: page not in French")
		}
		r.exchange(r.callback(b.submit(p.form("/login/code"), map[string]string{"code": e.smsCode(m)}), ar), ar)
	})
}

// TestCrossClient: one relying party cannot redeem another's code or revoke
// another's tokens.
func TestCrossClient(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		a, other := e.newRP(clientTrusted), e.newRP(clientES256)
		ar, code := e.newBrowser().login(a, phoneA, phoneA)
		stolen := *other
		stolen.conf.RedirectURL = a.conf.RedirectURL
		if _, err := stolen.conf.Exchange(stolen.ctx, code, oauth2.VerifierOption(ar.Verifier)); oauthError(err) != "invalid_grant" {
			t.Errorf("another client redeeming the code: %v, want invalid_grant", err)
		}
		tok := a.exchange(code, ar)
		for _, token := range []string{tok.AccessToken, tok.RefreshToken} {
			status, m := other.postForm("/oauth2/revoke", url.Values{"token": {token}})
			if status == http.StatusOK && m != nil && m["error"] != nil {
				t.Errorf("revoke: 200 with an error body %v", m)
			}
		}
		if !a.active(tok.AccessToken) {
			t.Error("another client revoked this client's access token")
		}
		if _, err := a.refresh(tok.RefreshToken); err != nil {
			t.Errorf("another client revoked this client's refresh token: %v", err)
		}
	})
}
