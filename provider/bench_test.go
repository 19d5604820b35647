package provider_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// BenchmarkLogin measures one complete login per op over HTTP, as a browser
// and a relying party drive it: authorize (redirect + phone page), phone
// (submit + code page, SMS sent), code (verify, skip_consent, redirect with
// the authorization code) and token (exchange, ID token signed). Each step's
// mean latency is reported so the dominant one shows; reading the SMS from
// the outbox is part of the op but of no step.
//
//	go test -run '^$' -bench BenchmarkLogin -benchtime 200x ./provider/
func BenchmarkLogin(b *testing.B) {
	for _, kind := range stores {
		b.Run(kind, func(b *testing.B) { benchmarkLogin(b, kind) })
	}
}

var (
	benchAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	benchCSRF   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
)

func benchmarkLogin(b *testing.B, kind string, opts ...envOption) {
	e := newEnv(b, kind, opts...)
	ctx := context.Background()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	rp := &http.Client{Transport: transport}
	redirect := redirectURI(clientTrusted)

	// step runs one request, checks its status and returns the body and Location.
	step := func(c *http.Client, method, target string, form url.Values, want int) (string, string) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, e.abs(target), body)
		if err != nil {
			b.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if method == http.MethodPost && strings.HasSuffix(target, "/oauth2/token") {
			req.SetBasicAuth(clientTrusted, clientSecrets[clientTrusted])
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != want {
			b.Fatalf("%s %s: %d, want %d: %.300s", method, target, resp.StatusCode, want, raw)
		}
		return string(raw), resp.Header.Get("Location")
	}
	formOf := func(page string) (string, url.Values) {
		a, t := benchAction.FindStringSubmatch(page), benchCSRF.FindStringSubmatch(page)
		if a == nil || t == nil {
			b.Fatalf("no form in %.300s", page)
		}
		return html.UnescapeString(a[1]), url.Values{"csrf_token": {html.UnescapeString(t[1])}}
	}

	var authorize, phone, code, token time.Duration
	n := 0
	for b.Loop() {
		n++
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Transport: transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
		state, nonce, verifier := randomString(), randomString(), randomString()+randomString()
		sum := sha256.Sum256([]byte(verifier))
		authURL := "/oauth2/auth?" + url.Values{
			"client_id": {clientTrusted}, "response_type": {"code"}, "redirect_uri": {redirect},
			"scope": {"openid phone"}, "state": {state}, "nonce": {nonce},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		}.Encode()

		t0 := time.Now()
		_, loc := step(browser, http.MethodGet, authURL, nil, http.StatusSeeOther)
		page, _ := step(browser, http.MethodGet, loc, nil, http.StatusOK)
		t1 := time.Now()
		action, form := formOf(page)
		form.Set("phone", phoneA)
		_, loc = step(browser, http.MethodPost, action, form, http.StatusSeeOther)
		page, _ = step(browser, http.MethodGet, loc, nil, http.StatusOK)
		t2 := time.Now()
		action, form = formOf(page)
		form.Set("code", e.codeFor(phoneA))
		t3 := time.Now()
		_, loc = step(browser, http.MethodPost, action, form, http.StatusSeeOther)
		t4 := time.Now()
		cb, err := url.Parse(loc)
		if err != nil || !strings.HasPrefix(loc, redirect) || cb.Query().Get("state") != state || cb.Query().Get("code") == "" {
			b.Fatalf("callback %q", loc)
		}
		body, _ := step(rp, http.MethodPost, "/oauth2/token", url.Values{
			"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
			"redirect_uri": {redirect}, "code_verifier": {verifier},
		}, http.StatusOK)
		t5 := time.Now()
		var tr struct {
			IDToken string `json:"id_token"`
		}
		if err := json.Unmarshal([]byte(body), &tr); err != nil || strings.Count(tr.IDToken, ".") != 2 {
			b.Fatalf("token response without an ID token: %.300s", body)
		}
		authorize += t1.Sub(t0)
		phone += t2.Sub(t1)
		code += t4.Sub(t3)
		token += t5.Sub(t4)
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	b.ReportMetric(per(authorize), "authorize-ns/op")
	b.ReportMetric(per(phone), "phone-ns/op")
	b.ReportMetric(per(code), "code-ns/op")
	b.ReportMetric(per(token), "token-ns/op")
}
