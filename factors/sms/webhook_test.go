package sms_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/sms"
)

const webhookSecret = "webhook-secret-hunter2-0123456789abcdef"

// webhookFake is a receiver that verifies the signature the way the README
// tells operators to.
type webhookFake struct {
	t        *testing.T
	url      string
	messages counting
	mu       sync.Mutex
	behave   behaviour
	anyText  bool // accept any body (a real code)
	got      []sms.WebhookMessage
}

func newWebhookFake(t *testing.T) *webhookFake {
	f := &webhookFake{t: t}
	srv := f.messages.server(t, http.HandlerFunc(f.serve))
	f.url = srv.URL + "/hooks/sms?tenant=acme"
	return f
}

func (f *webhookFake) serve(w http.ResponseWriter, r *http.Request) {
	t := f.t
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/hooks/sms" || r.URL.Query().Get("tenant") != "acme" ||
		r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("webhook request: %s %s %v", r.Method, r.URL, r.Header)
	}
	if err := sms.VerifyWebhook([]byte(webhookSecret), r.Header.Get(sms.WebhookSignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("signature %q: %v", r.Header.Get(sms.WebhookSignatureHeader), err)
		answer(401, "bad signature")(w, r)
		return
	}
	var m sms.WebhookMessage
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	f.mu.Lock()
	anyText := f.anyText
	f.mu.Unlock()
	if err := dec.Decode(&m); err != nil || m.To != testTo || (m.Body != testBody && !anyText) || m.Locale != "fr" || m.ClientID != "shop" || len(m.MessageID) < 16 {
		t.Errorf("webhook body %s: %v", body, err)
	}
	f.mu.Lock()
	f.got = append(f.got, m)
	b := f.behave
	f.mu.Unlock()
	if b == nil {
		b = answer(202, `{"queued":true}`)
	}
	b(w, r)
}

func openWebhook(t *testing.T, url string, timeout time.Duration) sms.Sender {
	t.Helper()
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	s, err := (&sms.WebhookConfig{URL: url, Secret: webhookSecret, Timeout: timeout}).Open(quietDeps())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWebhookSends(t *testing.T) {
	f := newWebhookFake(t)
	s := openWebhook(t, f.url, 0)
	var ids []string
	for range 3 {
		id, err := s.Send(context.Background(), testMsg)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if ids[0] != f.got[0].MessageID || ids[0] == ids[1] {
		t.Errorf("ids %q: want the distinct message_id of each request", ids)
	}
	if n := f.messages.conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 sends, want 1 (keep-alive)", n)
	}
	if _, ok := s.(sms.StartupChecker); ok {
		t.Error("the webhook has nothing to check at startup")
	}
}

func TestWebhookErrors(t *testing.T) {
	for _, tt := range []struct {
		status  int
		failure sms.Failure
	}{
		{400, sms.FailureRejected}, {422, sms.FailureRejected},
		{401, sms.FailureUnavailable}, {404, sms.FailureUnavailable},
		{429, sms.FailureUnavailable}, {500, sms.FailureUnavailable}, {503, sms.FailureUnavailable},
		{504, sms.FailureUnknown}, {302, sms.FailureUnknown},
	} {
		f := newWebhookFake(t)
		f.behave = answer(tt.status, `{"error":"cannot send to +33612345678"}`)
		_, err := openWebhook(t, f.url, 0).Send(context.Background(), testMsg)
		wantFailure(t, err, tt.failure, webhookSecret, "tenant=acme")
		var we *sms.WebhookError
		if !errors.As(err, &we) || we.Status != tt.status {
			t.Errorf("HTTP %d: error %v, want an *sms.WebhookError", tt.status, err)
		}
	}
}

func TestVerifyWebhook(t *testing.T) {
	secret := []byte(webhookSecret)
	body := []byte(`{"to":"+33612345678"}`)
	at := time.Unix(1767225600, 0)
	header := sms.SignWebhook(secret, at, body)
	if !strings.HasPrefix(header, "t=1767225600,v1=") || len(header) != len("t=1767225600,v1=")+64 {
		t.Errorf("header = %q", header)
	}
	if err := sms.VerifyWebhook(secret, header, body, at.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("valid signature: %v", err)
	}
	for name, check := range map[string]error{
		"other body":   sms.VerifyWebhook(secret, header, []byte(`{"to":"+33612345679"}`), at, 5*time.Minute),
		"other secret": sms.VerifyWebhook([]byte("another-secret"), header, body, at, 5*time.Minute),
		"stale":        sms.VerifyWebhook(secret, header, body, at.Add(6*time.Minute), 5*time.Minute),
		"future":       sms.VerifyWebhook(secret, header, body, at.Add(-6*time.Minute), 5*time.Minute),
		"garbage":      sms.VerifyWebhook(secret, "v1=zz", body, at, 5*time.Minute),
		"empty":        sms.VerifyWebhook(secret, "", body, at, 5*time.Minute),
	} {
		if !errors.Is(check, sms.ErrWebhookSignature) {
			t.Errorf("%s: VerifyWebhook = %v, want ErrWebhookSignature", name, check)
		}
	}
}

// readmeVerify is the receiver's check README.md shows, copied as is.
func readmeVerify(secret []byte, header string, body []byte) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want, err := hex.DecodeString(sig)
	return err == nil && hmac.Equal(want, mac.Sum(nil))
}

func TestREADMEVerifiesTheSignature(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"mac.Write([]byte(ts + \".\"))", "hmac.Equal(want, mac.Sum(nil))", "X-Otpgate-Signature: t=<unix time>,v1="} {
		if !strings.Contains(string(readme), line) {
			t.Errorf("README.md no longer shows %q: update readmeVerify with it", line)
		}
	}
	secret, body := []byte(webhookSecret), []byte(`{"to":"+33612345678"}`)
	header := sms.SignWebhook(secret, time.Now(), body)
	if !readmeVerify(secret, header, body) {
		t.Error("the README's check refuses a valid signature")
	}
	if readmeVerify(secret, header, []byte(`{"to":"+33612345679"}`)) || readmeVerify(secret, sms.SignWebhook(secret, time.Now().Add(-time.Hour), body), body) {
		t.Error("the README's check accepts a tampered body or an old timestamp")
	}
}
