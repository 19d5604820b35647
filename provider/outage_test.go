package provider_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
	otpredis "github.com/otpgate/otpgate/storage/redis"
	"github.com/otpgate/otpgate/storage/redis/redistest"
)

// unavailableText is what the error page says while the store is down.
const unavailableText = "The service is temporarily unavailable. Please try again shortly."

// TestRedisOutage kills the Redis under a running provider and starts it
// again on the same port. While it is down, every page answers 503 with the
// "temporarily unavailable" message (never 500, never a misleading refusal)
// or, for a new authorization request, sends the browser back to the relying
// party with error=temporarily_unavailable,
// readiness fails and the token endpoint issues nothing. When it is back the
// provider recovers by itself: the login that was pending when Redis died
// completes, and the authorization code that could not be redeemed during
// the outage is redeemed.
func TestRedisOutage(t *testing.T) {
	// The data survives the kill (an AOF synced at every write), as with a
	// Redis that restarts or fails over without losing writes.
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	// Short timeouts and one retry keep the test quick; the defaults behave
	// the same, only each refusal takes longer.
	store, err := otpredis.OpenUniversal(context.Background(), otpredis.Options{
		URL: srv.URL(), DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	d := deploy(t, []storage.Store{store})
	admin := d.inst[0].p.AdminHandler()
	r := d.newRP(clientTrusted)

	// Before the outage: one login waits at the code step, another has its
	// authorization code but has not redeemed it yet.
	pending := d.newBrowser()
	pendingReq, codePage := pending.codePage(r, phoneA)
	code := d.codeFor(phoneA)
	other := d.newBrowser()
	otherReq, authCode := other.login(r, phoneB, phoneB)
	redeem := url.Values{
		"grant_type": {"authorization_code"}, "code": {authCode},
		"redirect_uri": {redirectURI(clientTrusted)}, "code_verifier": {otherReq.Verifier},
	}

	signedIn := d.newBrowser().loginTokens(r, phoneB, phoneB)

	srv.Stop()

	// Pages: 503 and the message, from the first request of a login to its last.
	fresh := d.newBrowser()
	for _, b := range []*browser{fresh, pending} {
		b.tr.allow5x = true
	}
	// A new login with a static client (served from the process, not the
	// store) gets as far as storing its flow, and goes back to the relying
	// party with the standard error (RFC 6749 §4.1.2.1).
	ar := r.authorize()
	if p := fresh.get(ar.URL); r.callbackError(p, ar) != "temporarily_unavailable" {
		t.Errorf("authorize with Redis down: %s, want a redirect with error=temporarily_unavailable", p.Header.Get("Location"))
	}
	for name, p := range map[string]*page{
		"code page":   pending.get(codePage.URL.String()),
		"code submit": pending.submit(codePage.form("/login/code"), map[string]string{"code": code}),
		"resend":      pending.submit(codePage.form("/login/resend"), nil),
	} {
		if p.Status != http.StatusServiceUnavailable || p.alert() != unavailableText {
			t.Errorf("%s with Redis down: %d %q, want 503 %q", name, p.Status, p.alerts, unavailableText)
		}
	}
	for name, h := range map[string]http.Handler{"public": d.inst[0].h, "admin": admin} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("/readyz on the %s listener with Redis down: %d, want 503", name, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	d.inst[0].h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dev/outbox.json", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/dev/outbox.json with Redis down: %d, want 503", rec.Code)
	}
	r.tr.allow5x = true
	status, body := r.postForm("/oauth2/token", redeem)
	if status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" || body["access_token"] != nil || body["id_token"] != nil {
		t.Errorf("token endpoint with Redis down: %d %v, want 503 temporarily_unavailable and no token", status, body)
	}
	// A valid access token is not called invalid because it cannot be read.
	if status, body := r.userinfo(http.MethodGet, signedIn.AccessToken); status != http.StatusServiceUnavailable {
		t.Errorf("userinfo with Redis down: %d %v, want 503", status, body)
	}
	// Revocation and introspection say the store is down, never "revoked"
	// (200) or "inactive": the token comes back with the store.
	for _, path := range []string{"/oauth2/revoke", "/oauth2/introspect"} {
		if status, body := r.postForm(path, url.Values{"token": {signedIn.AccessToken}}); status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
			t.Errorf("%s with Redis down: %d %v, want 503 temporarily_unavailable", path, status, body)
		}
	}
	for _, b := range []*browser{fresh, pending} {
		b.tr.allow5x = false
	}
	r.tr.allow5x = false

	srv.Start()

	// Recovery needs nobody: the client reconnects on its own.
	deadline := time.Now().Add(15 * time.Second)
	for {
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d 15s after Redis came back", rec.Code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The pending login resumes where it stopped: the code was not consumed.
	p := pending.submit(codePage.form("/login/code"), map[string]string{"code": code})
	tok := r.exchange(r.callback(p, pendingReq), pendingReq)
	if tok.Claims.PhoneNumber == nil || *tok.Claims.PhoneNumber != phoneA {
		t.Errorf("phone_number %v, want %s", tok.Claims.PhoneNumber, phoneA)
	}
	// The failed redemption left the authorization code intact.
	if status, body := r.postForm("/oauth2/token", redeem); status != http.StatusOK || body["id_token"] == nil {
		t.Errorf("redeeming after the outage: %d %v, want 200 with an ID token", status, body)
	}
	// And a new login from scratch.
	d.newBrowser().loginTokens(r, phoneATyped, phoneA)

	// Nothing was revoked during the outage; revoking works again.
	introspect := func() any {
		t.Helper()
		status, body := r.postForm("/oauth2/introspect", url.Values{"token": {signedIn.AccessToken}})
		if status != http.StatusOK {
			t.Fatalf("introspection after the outage: %d %v", status, body)
		}
		return body["active"]
	}
	if active := introspect(); active != true {
		t.Errorf("after the outage the access token is active=%v, want true", active)
	}
	if status, body := r.postForm("/oauth2/revoke", url.Values{"token": {signedIn.AccessToken}}); status != http.StatusOK {
		t.Errorf("revocation after the outage: %d %v, want 200", status, body)
	}
	if active := introspect(); active != false {
		t.Errorf("after revocation the access token is active=%v, want false", active)
	}
}
