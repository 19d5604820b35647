package provider_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/provider/keys"
	"github.com/otpgate/otpgate/storage/memory"
)

// Bodies over the limit are refused before anything parses them, whether
// they announce their length or not.
func TestRequestBodyLimit(t *testing.T) {
	e := newEnv(t, "memory")
	big := "x=" + strings.Repeat("a", provider.DefaultMaxBodyBytes)
	for _, path := range []string{"/oauth2/token", "/oauth2/par", "/login/phone?flow=x&sig=y"} {
		for _, chunked := range []bool{false, true} {
			var body io.Reader = strings.NewReader(big)
			if chunked {
				body = io.MultiReader(strings.NewReader(big)) // no length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, e.Issuer+path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST %s: %v", path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("POST %s (chunked %v) with %d bytes: %d, want 413", path, chunked, len(big), resp.StatusCode)
			}
		}
	}
	// A normal form still works.
	r := e.newRP(clientTrusted)
	e.newBrowser().loginTokens(r, phoneA, phoneA)
}

func TestTrustedProxiesAreValidated(t *testing.T) {
	store := memory.New()
	defer store.Close()
	km, err := keys.NewManager(store, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	f, err := smsotp.New(store, sms.NewOutbox(store, 10, nil), smsotp.Options{HashKey: provider.CodeHashKey(testSecret), Origin: "id.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = provider.New(context.Background(), provider.Options{
		Issuer: "https://id.example.com", Secret: testSecret, Store: store, Keys: km, Factor: f,
		TrustedProxies: []string{"10.0.0.0/8", "load-balancer.internal"},
	})
	if err == nil || !strings.Contains(err.Error(), "load-balancer.internal") {
		t.Fatalf("New with a host name as trusted proxy: %v, want an error naming it", err)
	}
}

// Login events are audited with the client, a masked number and its keyed
// hash; never the number in clear, never a code.
func TestLoginAuditEvents(t *testing.T) {
	policy := guard.DefaultPolicy()
	e := newEnv(t, "memory", withGuard(policy))
	r := e.newRP(clientTrusted)
	b := e.newBrowser()
	ar := r.authorize()
	p := b.get(ar.URL)
	p = b.submit(p.form("/login/phone"), map[string]string{"phone": phoneA})
	p.expect(http.StatusOK, "/login/code")
	code := e.codeFor(phoneA)
	p = b.submit(p.form("/login/code"), map[string]string{"code": wrongCode(code)})
	p.expect(http.StatusBadRequest, "/login/code")
	p = b.submit(p.form("/login/code"), map[string]string{"code": code})
	r.exchange(r.callback(p, ar), ar)
	for range policy.Limits.Phone.Count {
		e.newBrowser().askCode(r, phoneA)
	}

	hash := guard.PhoneHash(provider.GuardKey(testSecret), phoneA)
	lines := map[string]string{}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, "audit=true") {
			for _, ev := range []string{"sms.sent", "sms.refused", "challenge.failed", "challenge.verified", "token.issued"} {
				if strings.Contains(line, "event="+ev+" ") && lines[ev] == "" {
					lines[ev] = line
				}
			}
		}
		if strings.Contains(line, phoneA) || strings.Contains(line, "612345678") {
			t.Errorf("a log line holds the number in clear: %s", line)
		}
		if strings.Contains(line, code) {
			t.Errorf("a log line holds the code: %s", line)
		}
	}
	for ev, want := range map[string][]string{
		"sms.sent":           {"client=" + clientTrusted, "phone_hash=" + hash, `phone="` + maskedA + `"`, "ip=127.0.0.1"},
		"sms.refused":        {"client=" + clientTrusted, "phone_hash=" + hash, "limit=phone", "status=429", "retry_after="},
		"challenge.failed":   {"phone_hash=" + hash, "outcome=wrong_code", "attempts_left=4"},
		"challenge.verified": {"client=" + clientTrusted, "phone_hash=" + hash},
		"token.issued":       {"actor=client:" + clientTrusted, "grant_type=authorization_code", "phone_hash=" + hash, "subject="},
	} {
		line := lines[ev]
		if line == "" {
			t.Errorf("no %s audit event in the log", ev)
			continue
		}
		for _, w := range want {
			if !strings.Contains(line, w) {
				t.Errorf("%s event lacks %s: %s", ev, w, line)
			}
		}
	}
}

// A body posted in pieces to the login form is read whole (the limit reads
// it before the handler, which must still find its fields).
func TestFormBodyReadBeforeHandler(t *testing.T) {
	e := newEnv(t, "memory")
	r := e.newRP(clientTrusted)
	b := e.newBrowser()
	p := b.get(r.authorize().URL)
	f := p.form("/login/phone")
	vals := url.Values{}
	for k, v := range f.fields {
		vals[k] = v
	}
	vals.Set("phone", phoneA)
	req, _ := http.NewRequest(http.MethodPost, e.abs(f.action), io.MultiReader(bytes.NewReader([]byte(vals.Encode()))))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	got := b.do(req)
	got.expect(http.StatusOK, "/login/code")
}
