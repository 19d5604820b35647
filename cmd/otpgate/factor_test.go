package main

// serve with factor: orange, against the challenge/v1 fake: the startup
// check, the code length on the code page, and a demo login whose code comes
// from Orange rather than from the outbox.

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/orange/orangetest"
)

func orangeEnv(fake *orangetest.Server, secret string) map[string]string {
	return map[string]string{
		"OTPGATE_FACTOR":                   "orange",
		"OTPGATE_ORANGE_OTP_BASE_URL":      fake.URL,
		"OTPGATE_ORANGE_OTP_CLIENT_ID":     orangetest.ClientID,
		"OTPGATE_ORANGE_OTP_CLIENT_SECRET": secret,
		"OTPGATE_ORANGE_OTP_SERVICE":       orangetest.Service,
		"OTPGATE_ORANGE_OTP_PARTNER_ID":    orangetest.PartnerID,
		"OTPGATE_ORANGE_OTP_CODE_LENGTH":   "8",
	}
}

func TestServeWithOrangeFactor(t *testing.T) {
	fake := orangetest.New(t)
	cfg := cliConfig(t, true, orangeEnv(fake, orangetest.ClientSecret))
	issuer := cfg.Issuer
	cliServe(t, cfg, true)
	if n := fake.Tokens.Load(); n != 1 {
		t.Errorf("%d token requests at start, want 1 (the startup check)", n)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Timeout: 10 * time.Second, Jar: jar}
	post := func(body string, fields url.Values) (int, string) {
		t.Helper()
		action, csrf := formAction.FindStringSubmatch(body), csrfInput.FindStringSubmatch(body)
		if action == nil || csrf == nil {
			t.Fatalf("no form with a CSRF token:\n%s", body)
		}
		fields.Set("csrf_token", html.UnescapeString(csrf[1]))
		resp, err := browser.PostForm(issuer+html.UnescapeString(action[1]), fields)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(page)
	}

	status, _, body := devGet(t, browser, issuer+"/dev/demo/login")
	if status != http.StatusOK || !strings.Contains(body, `name="phone"`) {
		t.Fatalf("/dev/demo/login did not end on the phone page: %d\n%s", status, body)
	}
	status, body = post(body, url.Values{"phone": {devPhone}})
	if status != http.StatusOK || !strings.Contains(body, `name="code"`) || !strings.Contains(body, `maxlength="8"`) {
		t.Fatalf("the phone submission did not end on a code page for 8 digits: %d\n%s", status, body)
	}
	if n := fake.Creates.Load(); n != 1 {
		t.Fatalf("%d challenges created at Orange, want 1", n)
	}
	m := fake.LastMessage(t)
	if m.MSISDN != devE164 || len(m.Code) != 8 || !strings.HasSuffix(m.Text, "@"+strings.TrimPrefix(issuer, "http://")+" #"+m.Code) {
		t.Errorf("Orange was asked for %+v; want 8 digits to %s, the message ending with the origin-bound line", m, devE164)
	}
	if _, _, body := devGet(t, browser, issuer+"/dev/outbox.json"); strings.TrimSpace(body) != "[]" {
		t.Errorf("the outbox holds %s; Orange texts the code, not otpgate", body)
	}

	status, body = post(body, url.Values{"code": {m.Code}})
	body = html.UnescapeString(body)
	if status != http.StatusOK || !strings.Contains(body, `"phone_number": "`+devE164+`"`) || !strings.Contains(body, `"sms"`) {
		t.Fatalf("the code submission did not end on the demo's claims: %d\n%s", status, body)
	}
	if n := fake.Validations.Load(); n != 1 {
		t.Errorf("Orange judged %d answers, want 1", n)
	}
}

func TestServeStopsWhenOrangeRefusesTheCredentials(t *testing.T) {
	fake := orangetest.New(t)
	cfg := cliConfig(t, true, orangeEnv(fake, "wrong-hunter2"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := serve(ctx, cfg, true, &cliBuffer{})
	if err == nil || !strings.Contains(err.Error(), "orange_otp: startup check: orange token: credentials refused") || !strings.Contains(err.Error(), "skip_startup_check") {
		t.Fatalf("serve with credentials Orange refuses: %v, want the startup check's refusal", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the refusal shows the secret: %v", err)
	}
}
