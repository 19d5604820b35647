package provider_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// pushed sends ar's parameters to the PAR endpoint as client r and returns the
// request_uri.
func (r *rp) pushed(ar authRequest, extra url.Values) (int, map[string]any) {
	r.t.Helper()
	u, err := url.Parse(ar.URL)
	if err != nil {
		r.t.Fatal(err)
	}
	form := u.Query()
	for k, v := range extra {
		form[k] = v
	}
	return r.postForm("/oauth2/par", form)
}

// TestPARLockedNumber is the second-factor mode: the RP pushes the number it
// knows; the user can only prove it, never change it.
func TestPARLockedNumber(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)
		b := e.newBrowser()

		ar := r.authorize()
		status, res := r.pushed(ar, url.Values{"login_hint": {"tel:" + phoneA}})
		requestURI, _ := res["request_uri"].(string)
		if status != http.StatusCreated || !strings.HasPrefix(requestURI, "urn:ietf:params:oauth:request_uri:") {
			t.Fatalf("PAR: %d %v, want 201 with a request_uri", status, res)
		}
		last := e.lastSMSID()
		authURL := e.Issuer + "/oauth2/auth?" + url.Values{"client_id": {clientTrusted}, "request_uri": {requestURI}}.Encode()
		p := b.get(authURL)
		// The phone page is skipped: the code went out at once.
		p.expect(http.StatusOK, "/login/code")
		if e.lastSMSID() == last {
			t.Fatal("no SMS sent for the pushed number")
		}
		code := e.codeFor(phoneA)
		if !strings.Contains(p.Text(), "We sent a code to "+maskedA) {
			t.Errorf("code page does not show %q: %s", maskedA, p.Text())
		}
		if p.hasLinkTo("/login/phone") {
			t.Error("a locked number offers 'use another number'")
		}
		if !strings.Contains(p.Text(), "can't be changed") {
			t.Errorf("code page does not say the number is fixed: %s", p.Text())
		}

		// Even a correctly signed phone-step URL cannot reopen the number.
		flow := p.flowID()
		phoneStep := "/login/phone?" + url.Values{"flow": {flow}, "sig": {stepSig(flow, "phone")}}.Encode()
		if got := b.get(phoneStep); got.URL.Path != "/login/code" || got.hasForm("/login/phone") {
			t.Errorf("GET phone step of a locked flow: %d %s, want the code page", got.Status, got.URL.Path)
		}
		smsBefore := e.lastSMSID()
		got := b.post(phoneStep, url.Values{"csrf_token": {p.form("/login/code").fields.Get("csrf_token")}, "phone": {phoneB}})
		if got.URL.Path != "/login/code" {
			t.Errorf("POST phone step of a locked flow: %d %s, want the code page", got.Status, got.URL.Path)
		}
		if e.lastSMSID() != smsBefore {
			t.Errorf("POST phone step of a locked flow sent an SMS to %s", e.lastSMS().To)
		}
		if !strings.Contains(got.Text(), maskedA) {
			t.Errorf("the code page no longer shows the pushed number: %s", got.Text())
		}

		p = b.submit(got.form("/login/code"), map[string]string{"code": code})
		tok := r.exchange(r.callback(p, ar), ar)
		if tok.Claims.PhoneNumber == nil || *tok.Claims.PhoneNumber != phoneA {
			t.Errorf("phone_number %v, want the pushed %s", tok.Claims.PhoneNumber, phoneA)
		}

		// A request_uri is single use.
		again := e.newBrowser().get(authURL)
		if again.Status != http.StatusBadRequest || again.Header.Get("Location") != "" {
			t.Errorf("reused request_uri: %d (Location %q), want a 400 page", again.Status, again.Header.Get("Location"))
		}
	})
}

func TestPARRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)

		status, res := r.pushed(r.authorize(), url.Values{"login_hint": {"tel:+33 12"}})
		if status != http.StatusBadRequest || res["error"] != "invalid_request" {
			t.Errorf("PAR with an invalid login_hint: %d %v, want 400 invalid_request", status, res)
		}

		// PAR is client-authenticated: without the secret nothing is stored.
		anon := *r
		anon.conf.ClientSecret = "wrong-secret-0123456789abcdef0123456789"
		status, res = anon.pushed(r.authorize(), url.Values{"login_hint": {"tel:" + phoneA}})
		if status != http.StatusUnauthorized || res["error"] != "invalid_client" {
			t.Errorf("PAR with a wrong secret: %d %v, want 401 invalid_client", status, res)
		}

		// A made-up request_uri gets a page, not a login.
		p := e.newBrowser().get("/oauth2/auth?" + url.Values{"client_id": {clientTrusted}, "request_uri": {"urn:ietf:params:oauth:request_uri:nope"}}.Encode())
		if p.Status != http.StatusBadRequest || p.URL.Path != "/oauth2/auth" {
			t.Errorf("unknown request_uri: %d %s, want a 400 page", p.Status, p.URL.Path)
		}
	})
}

// TestLoginHintInURL: a login_hint the user could have edited only pre-fills
// the field.
func TestLoginHintInURL(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)
		b := e.newBrowser()
		last := e.lastSMSID()

		ar := r.authorize(oauth2.SetAuthURLParam("login_hint", "tel:"+phoneA))
		p := b.get(ar.URL)
		p.expect(http.StatusOK, "/login/phone")
		if got := p.inputs["phone"]["value"]; got != phoneA {
			t.Errorf("phone field %q, want it pre-filled with %s", got, phoneA)
		}
		if e.lastSMSID() != last {
			t.Error("a login_hint in the URL sent an SMS before the user confirmed the number")
		}
		p = b.submit(p.form("/login/phone"), map[string]string{"phone": phoneB})
		p.expect(http.StatusOK, "/login/code")
		if !p.hasLinkTo("/login/phone") {
			t.Error("no 'use another number' link for a number the user typed")
		}
		p = b.submit(p.form("/login/code"), map[string]string{"code": e.codeFor(phoneB)})
		tok := r.exchange(r.callback(p, ar), ar)
		if tok.Claims.PhoneNumber == nil || *tok.Claims.PhoneNumber != phoneB {
			t.Errorf("phone_number %v, want the edited %s", tok.Claims.PhoneNumber, phoneB)
		}
	})
}

// TestChangeNumber: "use another number" goes back to the phone page, is no
// way around the resend cooldown (else every submission would send an SMS,
// to any number), and the first number's code stops counting.
func TestChangeNumber(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		const cooldown = time.Second
		e := newEnv(t, kind, withCooldown(cooldown))
		r := e.newRP(clientTrusted)
		b := e.newBrowser()
		ar := r.authorize()
		p := b.get(ar.URL)
		p = b.submit(p.form("/login/phone"), map[string]string{"phone": phoneA})
		p.expect(http.StatusOK, "/login/code")
		sent := time.Now()
		firstCode := e.codeFor(phoneA)
		last := e.lastSMSID()

		var change string
		for _, l := range p.links {
			if strings.HasPrefix(l, "/login/phone?") {
				change = l
			}
		}
		p = b.get(change)
		p.expect(http.StatusOK, "/login/phone")
		for _, number := range []string{phoneA, phoneB} {
			got := b.submit(p.form("/login/phone"), map[string]string{"phone": number})
			got.expect(http.StatusTooManyRequests, "/login/phone")
			if msg := got.alert(); !strings.HasPrefix(msg, "Please wait ") {
				t.Errorf("new number %s during the cooldown: %q, want the wait message", number, msg)
			}
			if v := got.inputs["phone"]["value"]; v != number {
				t.Errorf("typed number not kept: %q", v)
			}
		}
		if e.lastSMSID() != last {
			t.Errorf("the phone step sent an SMS during the cooldown (to %s)", e.lastSMS().To)
		}

		time.Sleep(time.Until(sent.Add(cooldown + 100*time.Millisecond)))
		p = b.submit(p.form("/login/phone"), map[string]string{"phone": phoneB})
		p.expect(http.StatusOK, "/login/code")
		secondCode := e.codeFor(phoneB)
		if firstCode != secondCode {
			got := b.submit(p.form("/login/code"), map[string]string{"code": firstCode})
			if got.Status != http.StatusBadRequest || got.Header.Get("Location") != "" {
				t.Errorf("the first number's code still counts: %d", got.Status)
			}
		}
		p = b.submit(p.form("/login/code"), map[string]string{"code": secondCode})
		tok := r.exchange(r.callback(p, ar), ar)
		if tok.Claims.PhoneNumber == nil || *tok.Claims.PhoneNumber != phoneB {
			t.Errorf("phone_number %v, want %s", tok.Claims.PhoneNumber, phoneB)
		}
	})
}
