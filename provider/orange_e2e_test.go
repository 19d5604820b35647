package provider_test

// Logins through the provider with the orange factor (factors/orange) in
// place of the SMS factor, pointed at the challenge/v1 fake: the code comes
// from Orange's "SMS", never from the outbox.

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/orange"
	"github.com/otpgate/otpgate/factors/orange/orangetest"
	"github.com/otpgate/otpgate/provider"
)

// withOrangeFactor replaces the environment's factor with the orange factor
// on the environment's store, talking to fake. Its code length, lifetime and
// limits are the factor's defaults (6 digits, 5 attempts), which the pages'
// defaults match.
func withOrangeFactor(t testing.TB, fake *orangetest.Server) envOption {
	return withOptions(func(o *provider.Options) {
		f, err := orange.New(o.Store, orange.Options{
			BaseURL: fake.URL, ClientID: orangetest.ClientID, ClientSecret: orangetest.ClientSecret,
			Service: orangetest.Service, PartnerID: orangetest.PartnerID, Origin: issuerHost(t, o),
			Timeout: 5 * time.Second,
		})
		if err != nil {
			t.Fatalf("orange.New: %v", err)
		}
		o.Factor = f
	})
}

// orangeCode is the code of the newest SMS Orange sent to phone, checked to
// end with the origin-bound line of the issuer's host.
func (e *env) orangeCode(fake *orangetest.Server, phone string) string {
	e.t.Helper()
	code := fake.LastCode(e.t, phone)
	m := fake.LastMessage(e.t)
	if host := strings.TrimPrefix(e.Issuer, "http://"); m.MSISDN != phone || !strings.HasSuffix(m.Text, "@"+host+" #"+code) {
		e.t.Fatalf("Orange's SMS %+v: want it to %s, ending with @%s #%s", m, phone, host, code)
	}
	return code
}

func TestOrangeFactorLogin(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		fake := orangetest.New(t)
		e := newEnv(t, kind, withOrangeFactor(t, fake))
		r := e.newRP(clientConfidential)
		b := e.newBrowser()

		ar, p := b.codePage(r, "06 12 34 56 78")
		if n := fake.Creates.Load(); n != 1 {
			t.Fatalf("%d challenges created at Orange after the phone page, want 1", n)
		}
		if id := e.lastSMSID(); id != "" {
			t.Errorf("the outbox holds a message (%s): Orange texts the code, not otpgate", id)
		}
		p = b.submit(p.form("/login/code"), map[string]string{"code": e.orangeCode(fake, phoneA)})
		p.expect(http.StatusOK, "/login/consent")
		p = b.submit(p.form("/login/consent"), map[string]string{"decision": "allow"})
		tok := r.exchange(r.callback(p, ar), ar)

		c := tok.Claims
		if !slices.Equal(c.AMR, []string{"sms"}) {
			t.Errorf("amr = %v, want [sms]", c.AMR)
		}
		if c.PhoneNumber == nil || *c.PhoneNumber != phoneA || c.PhoneVerified == nil || !*c.PhoneVerified {
			t.Errorf("phone_number %v, phone_number_verified %v; want %s, true", c.PhoneNumber, c.PhoneVerified, phoneA)
		}
		if n := fake.Validations.Load(); n != 1 {
			t.Errorf("Orange judged %d answers, want 1", n)
		}
	})
}

func TestOrangeFactorWrongCode(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		fake := orangetest.New(t)
		e := newEnv(t, kind, withOrangeFactor(t, fake))
		r := e.newRP(clientTrusted)

		// A wrong code says how many attempts are left; the right one still
		// signs in.
		b := e.newBrowser()
		ar, p := b.codePage(r, phoneA)
		right := e.orangeCode(fake, phoneA)
		p = b.submit(p.form("/login/code"), map[string]string{"code": wrongCode(right)})
		p.expect(http.StatusBadRequest, "/login/code")
		noRedirect(t, p)
		if got := p.alert(); got != "Wrong code. 4 attempts left." {
			t.Errorf("message %q, want \"Wrong code. 4 attempts left.\"", got)
		}
		p = b.submit(p.form("/login/code"), map[string]string{"code": right})
		tok := r.exchange(r.callback(p, ar), ar)
		if !slices.Equal(tok.Claims.AMR, []string{"sms"}) {
			t.Errorf("amr = %v, want [sms]", tok.Claims.AMR)
		}

		// Five wrong codes lock the challenge: the right code is refused
		// then, and Orange is not asked about it.
		b = e.newBrowser()
		_, p = b.codePage(r, phoneA)
		right = e.orangeCode(fake, phoneA)
		for _, want := range []string{
			"Wrong code. 4 attempts left.",
			"Wrong code. 3 attempts left.",
			"Wrong code. 2 attempts left.",
			"Wrong code. 1 attempt left.",
			"Too many wrong codes. Start again with a new code.",
		} {
			p = b.submit(p.form("/login/code"), map[string]string{"code": wrongCode(right)})
			p.expect(http.StatusBadRequest, "/login/code")
			if got := p.alert(); got != want {
				t.Errorf("message %q, want %q", got, want)
			}
		}
		judged := fake.Validations.Load()
		p = b.submit(p.form("/login/code"), map[string]string{"code": right})
		p.expect(http.StatusBadRequest, "/login/code")
		noRedirect(t, p)
		if got := p.alert(); !strings.Contains(got, "Too many wrong codes") {
			t.Errorf("right code on a locked challenge: %q, want the locked message", got)
		}
		if n := fake.Validations.Load(); n != judged {
			t.Errorf("Orange was asked %d more times after the limit", n-judged)
		}
	})
}
