package provider_test

import (
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestSSO(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, withSessionTTL(time.Hour))
		r := e.newRP(clientConfidential)
		b := e.newBrowser()

		first := b.loginTokens(r, phoneATyped, phoneA) // with consent
		if b.cookie("otpgate_session") == "" {
			t.Fatal("no session cookie after a login with SSO on")
		}

		// Same browser, same client: no SMS, no page, straight back to the RP.
		last := e.lastSMSID()
		ar := r.authorize()
		tok := r.exchange(r.callback(b.get(ar.URL), ar), ar)
		if e.lastSMSID() != last {
			t.Error("an SSO login sent an SMS")
		}
		if tok.Claims.Sub != first.Claims.Sub || tok.Claims.AuthTime != first.Claims.AuthTime {
			t.Errorf("SSO login: sub %q auth_time %d, want %q %d (the session's)", tok.Claims.Sub, tok.Claims.AuthTime, first.Claims.Sub, first.Claims.AuthTime)
		}
		if tok.Claims.PhoneNumber == nil || *tok.Claims.PhoneNumber != phoneA {
			t.Errorf("SSO login: phone_number %v", tok.Claims.PhoneNumber)
		}

		// prompt=none with a session: a code at once.
		ar = r.authorize(oauth2.SetAuthURLParam("prompt", "none"))
		p := b.get(ar.URL)
		r.exchange(r.callback(p, ar), ar)
		if e.lastSMSID() != last {
			t.Error("prompt=none sent an SMS")
		}

		// A max_age the session satisfies keeps SSO; prompt=consent asks again.
		ar = r.authorize(oauth2.SetAuthURLParam("max_age", "3600"))
		r.exchange(r.callback(b.get(ar.URL), ar), ar)
		ar = r.authorize(oauth2.SetAuthURLParam("prompt", "consent"))
		p = b.get(ar.URL)
		p.expect(http.StatusOK, "/login/consent")
		r.exchange(r.callback(b.submit(p.form("/login/consent"), map[string]string{"decision": "allow"}), ar), ar)
		if e.lastSMSID() != last {
			t.Error("max_age within the session or prompt=consent sent an SMS")
		}

		// prompt=login and max_age=0 force a fresh code.
		for _, opt := range []oauth2.AuthCodeOption{
			oauth2.SetAuthURLParam("prompt", "login"),
			oauth2.SetAuthURLParam("max_age", "0"),
		} {
			last := e.lastSMSID()
			tok := b.loginTokens(r, phoneA, phoneA, opt)
			if e.lastSMSID() == last {
				t.Error("no new SMS")
			}
			if tok.Claims.AuthTime < first.Claims.AuthTime {
				t.Errorf("auth_time %d went back (first login %d)", tok.Claims.AuthTime, first.Claims.AuthTime)
			}
		}

		// A hint for another number is not satisfied by this session.
		ar = r.authorize(oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("login_hint", "tel:"+phoneB))
		if got := r.callbackError(b.get(ar.URL), ar); got != "login_required" {
			t.Errorf("prompt=none for another number: %q, want login_required", got)
		}

		// Another browser has no session.
		other := e.newBrowser()
		ar = r.authorize(oauth2.SetAuthURLParam("prompt", "none"))
		if got := r.callbackError(other.get(ar.URL), ar); got != "login_required" {
			t.Errorf("prompt=none without a session: %q, want login_required", got)
		}
		ar = r.authorize()
		other.get(ar.URL).expect(http.StatusOK, "/login/phone")
	})
}

// TestNoSSOByDefault: with SessionTTL 0 every login needs a code, and
// prompt=none is always login_required.
func TestNoSSOByDefault(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)
		b := e.newBrowser()
		b.loginTokens(r, phoneA, phoneA)
		if b.cookie("otpgate_session") != "" {
			t.Error("a session cookie was set with SSO off")
		}
		ar := r.authorize()
		b.get(ar.URL).expect(http.StatusOK, "/login/phone")
		ar = r.authorize(oauth2.SetAuthURLParam("prompt", "none"))
		if got := r.callbackError(b.get(ar.URL), ar); got != "login_required" {
			t.Errorf("prompt=none: %q, want login_required", got)
		}
	})
}
