package provider_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/guard"
)

// FuzzLoginForms posts arbitrary values to the login forms of a running
// provider (behind the abuse guard): the phone form, then, when a code was
// sent, the code and resend forms, with the CSRF token kept, dropped or
// replaced, arbitrary extra fields or a raw body, and sometimes the right
// code among them. No answer may be a
// server error (a panic is one: gin's recovery answers 500), and a wrong code
// never completes the login. The seed corpus is in
// testdata/fuzz/FuzzLoginForms.
func FuzzLoginForms(f *testing.F) {
	f.Add("06 12 34 56 78", "123456", "", uint8(0))
	f.Add("+33612345678", "", "code=1&code=2", uint8(1))
	f.Add("+33891123456", "12 34 56", "csrf_token=x", uint8(2))
	f.Add("tel:+33612345678", strings.Repeat("9", 100), "%zz", uint8(4))

	policy := guard.Policy{NumberTypes: guard.DefaultNumberTypes}
	policy.Limits.Attempts = guard.Limit{Count: 1_000_000, Window: time.Hour}
	e := newEnv(f, "memory", withGuard(policy))
	r := e.newRP(clientTrusted)

	f.Fuzz(func(t *testing.T, phone, code, extra string, flags uint8) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirectBase) {
				return http.ErrUseLastResponse
			}
			return nil
		}}
		do := func(req *http.Request) *page {
			t.Helper()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode >= 500 {
				t.Fatalf("%s %s: status %d for phone %q code %q extra %q flags %d", req.Method, req.URL.Path, resp.StatusCode, phone, code, extra, flags)
			}
			return newPage(t, resp, body)
		}
		post := func(fm form, field, value string) *page {
			t.Helper()
			vals := url.Values{}
			for k, v := range fm.fields {
				vals[k] = append([]string(nil), v...)
			}
			vals.Set(field, value)
			switch flags % 4 {
			case 1:
				vals.Del("csrf_token")
			case 2:
				vals.Set("csrf_token", extra)
			}
			body := vals.Encode()
			if flags&4 != 0 && extra != "" {
				body += "&" + extra
			}
			if flags&8 != 0 {
				body = extra // the raw body alone
			}
			req, _ := http.NewRequest(http.MethodPost, e.abs(fm.action), bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if flags&16 != 0 {
				// A header value the client can send: no control bytes.
				boundary := strings.Map(func(r rune) rune {
					if r < ' ' || r == 0x7f {
						return -1
					}
					return r
				}, extra)
				req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
			}
			return do(req)
		}

		req, _ := http.NewRequest(http.MethodGet, r.authorize().URL, nil)
		p := do(req)
		if p.Status != http.StatusOK || !p.hasForm("/login/phone") {
			t.Fatalf("authorize: %d %s", p.Status, p.URL.Path)
		}
		p = post(p.form("/login/phone"), "phone", phone)
		if p.Status != http.StatusOK || p.URL.Path != "/login/code" {
			return // refused: a clear page (checked < 500 above)
		}
		codeForm := p.form("/login/code")
		answer := code
		if flags&32 != 0 { // the right code, with whatever else the form carries
			et := e.with(t)
			answer = et.smsCode(et.lastSMS())
		}
		p = post(codeForm, "code", answer)
		if loc := p.Header.Get("Location"); strings.HasPrefix(loc, redirectBase) && !strings.Contains(loc, "error=") {
			// The login completed: only the code that was sent may do that.
			et := e.with(t)
			if sent := et.smsCode(et.lastSMS()); strings.Join(strings.Fields(answer), "") != sent {
				t.Fatalf("code %q completed a login whose code was %s", answer, sent)
			}
			return
		}
		if p.hasForm("/login/resend") {
			post(p.form("/login/resend"), "resend", extra)
		}
	})
}
