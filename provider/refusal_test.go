package provider_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// codePage starts a login for r in b and submits phone: it returns the
// request and the code page.
func (b *browser) codePage(r *rp, phone string) (authRequest, *page) {
	b.t.Helper()
	ar := r.authorize()
	p := b.get(ar.URL)
	p.expect(http.StatusOK, "/login/phone")
	p = b.submit(p.form("/login/phone"), map[string]string{"phone": phone})
	p.expect(http.StatusOK, "/login/code")
	return ar, p
}

// wrongCode returns a code of the same length that is not code.
func wrongCode(code string) string {
	last := (code[len(code)-1]-'0'+1)%10 + '0'
	return code[:len(code)-1] + string(rune(last))
}

// noRedirect fails when p sent the browser to a relying party.
func noRedirect(t *testing.T, p *page) {
	t.Helper()
	if loc := p.Header.Get("Location"); loc != "" {
		t.Errorf("%s: redirected to %s", p.URL.Path, loc)
	}
}

func TestWrongCodeUntilLocked(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)
		b := e.newBrowser()
		_, p := b.codePage(r, phoneA)
		right := e.codeFor(phoneA)
		last := e.lastSMSID()

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
		// Locked: even the right code is refused now.
		p = b.submit(p.form("/login/code"), map[string]string{"code": right})
		p.expect(http.StatusBadRequest, "/login/code")
		noRedirect(t, p)
		if got := p.alert(); !strings.Contains(got, "Too many wrong codes") {
			t.Errorf("right code on a locked challenge: %q, want the locked message", got)
		}
		// And a locked challenge cannot be revived by a resend.
		e.Clock.Advance(time.Minute)
		p = b.submit(p.form("/login/resend"), nil)
		if p.Status != http.StatusBadRequest || !strings.Contains(p.alert(), "Too many wrong codes") {
			t.Errorf("resend on a locked challenge: %d %q", p.Status, p.alerts)
		}
		if e.lastSMSID() != last {
			t.Error("a locked challenge sent a new code")
		}
	})
}

func TestMalformedCodeCountsAsAttempt(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		b := e.newBrowser()
		_, p := b.codePage(e.newRP(clientTrusted), phoneA)
		for _, junk := range []string{"abc", "", strings.Repeat("9", 5000)} {
			p = b.submit(p.form("/login/code"), map[string]string{"code": junk})
			p.expect(http.StatusBadRequest, "/login/code")
		}
		if got := p.alert(); got != "Wrong code. 2 attempts left." {
			t.Errorf("after three malformed answers: %q, want 2 attempts left", got)
		}
	})
}

func TestExpiredCode(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)
		b := e.newBrowser()
		ar, p := b.codePage(r, phoneA)
		old := e.codeFor(phoneA)

		e.Clock.Advance(5*time.Minute + time.Second)
		p = b.submit(p.form("/login/code"), map[string]string{"code": old})
		p.expect(http.StatusBadRequest, "/login/code")
		noRedirect(t, p)
		if got := p.alert(); got != "This code has expired. Ask for a new one." {
			t.Errorf("expired code: %q", got)
		}
		// A new code works.
		p = b.submit(p.form("/login/resend"), nil)
		p.expect(http.StatusOK, "/login/code")
		fresh := e.codeFor(phoneA)
		p = b.submit(p.form("/login/code"), map[string]string{"code": fresh})
		r.exchange(r.callback(p, ar), ar)
	})
}

func TestReplayedCode(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)

		t.Run("skip consent", func(t *testing.T) {
			e := e.with(t)
			r := e.newRP(clientTrusted)
			b := e.newBrowser()
			ar, p := b.codePage(r, phoneA)
			f := p.form("/login/code")
			code := e.codeFor(phoneA)
			r.callback(b.submit(f, map[string]string{"code": code}), ar)
			again := b.submit(f, map[string]string{"code": code})
			if again.Status != http.StatusGone {
				t.Errorf("replayed code: %d, want 410 (flow used up)", again.Status)
			}
			noRedirect(t, again)
		})

		t.Run("with consent", func(t *testing.T) {
			e := e.with(t)
			r := e.newRP(clientConfidential)
			b := e.newBrowser()
			ar, p := b.codePage(r, phoneA)
			f := p.form("/login/code")
			code := e.codeFor(phoneA)
			consent := b.submit(f, map[string]string{"code": code})
			consent.expect(http.StatusOK, "/login/consent")
			// The code again only leads back to the consent step.
			again := b.submit(f, map[string]string{"code": code})
			again.expect(http.StatusOK, "/login/consent")
			cf := consent.form("/login/consent")
			r.callback(b.submit(cf, map[string]string{"decision": "allow"}), ar)
			twice := b.submit(cf, map[string]string{"decision": "allow"})
			if twice.Status != http.StatusGone {
				t.Errorf("consent submitted twice: %d, want 410", twice.Status)
			}
			noRedirect(t, twice)
		})

		// Parallel submissions of the right code, or of consent: exactly one
		// authorization code.
		t.Run("parallel code", func(t *testing.T) {
			e := e.with(t)
			r := e.newRP(clientTrusted)
			b := e.newBrowser()
			_, p := b.codePage(r, phoneA)
			f := p.form("/login/code")
			f.fields.Set("code", e.codeFor(phoneA))
			if codes, statuses := b.parallelSubmit(f, 8); codes != 1 {
				t.Errorf("8 parallel submissions of the right code gave %d authorization codes (statuses %v), want exactly 1", codes, statuses)
			}
		})
		t.Run("parallel consent", func(t *testing.T) {
			e := e.with(t)
			r := e.newRP(clientConfidential)
			b := e.newBrowser()
			_, p := b.codePage(r, phoneB) // phoneA consented above
			p = b.submit(p.form("/login/code"), map[string]string{"code": e.codeFor(phoneB)})
			f := p.form("/login/consent")
			f.fields.Set("decision", "allow")
			if codes, statuses := b.parallelSubmit(f, 8); codes != 1 {
				t.Errorf("8 parallel consent submissions gave %d authorization codes (statuses %v), want exactly 1", codes, statuses)
			}
		})
	})
}

// parallelSubmit posts f n times at once and counts the redirects that carry
// an authorization code.
func (b *browser) parallelSubmit(f form, n int) (codes int, statuses map[int]int) {
	b.t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses = map[int]int{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, b.e.abs(f.action), strings.NewReader(f.fields.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := b.c.Do(req)
			if err != nil {
				b.t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.Query().Get("code") != "" {
				codes++
			}
		}()
	}
	wg.Wait()
	return codes, statuses
}

func TestCodeFromAnotherFlow(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)
		b := e.newBrowser()
		arA, pA := b.codePage(r, phoneA)
		codeA := e.codeFor(phoneA)
		arB, pB := b.codePage(r, phoneA)
		codeB := e.codeFor(phoneA)
		for codeA == codeB { // one chance in a million: open another flow B (a resend texts the same code)
			arB, pB = b.codePage(r, phoneA)
			codeB = e.codeFor(phoneA)
		}
		got := b.submit(pB.form("/login/code"), map[string]string{"code": codeA})
		got.expect(http.StatusBadRequest, "/login/code")
		if msg := got.alert(); msg != "Wrong code. 4 attempts left." {
			t.Errorf("flow A's code on flow B: %q, want a wrong-code message", msg)
		}
		// Each flow still completes with its own code.
		r.exchange(r.callback(b.submit(pB.form("/login/code"), map[string]string{"code": codeB}), arB), arB)
		r.exchange(r.callback(b.submit(pA.form("/login/code"), map[string]string{"code": codeA}), arA), arA)
	})
}

func TestTamperedStepURL(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientConfidential)
		b := e.newBrowser()
		ar, p := b.codePage(r, phoneA)
		code := e.codeFor(phoneA)
		flow := p.flowID()
		sig := p.URL.Query().Get("sig")
		csrf := p.form("/login/code").fields.Get("csrf_token")

		tampered := []string{
			"/login/code?" + url.Values{"flow": {flow}, "sig": {flipLast(sig)}}.Encode(),
			"/login/code?" + url.Values{"flow": {flow}}.Encode(),
			"/login/code?" + url.Values{"flow": {flow}, "sig": {stepSig(flow, "phone")}}.Encode(), // another step's signature
			// Skipping the SMS: the consent step with a forged signature.
			"/login/consent?" + url.Values{"flow": {flow}, "sig": {sig}}.Encode(),
			"/login/consent?" + url.Values{"flow": {flow}, "sig": {flipLast(stepSig(flow, "consent"))}}.Encode(),
		}
		for _, target := range tampered {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				var got *page
				if method == http.MethodGet {
					got = b.get(target)
				} else {
					got = b.post(target, url.Values{"csrf_token": {csrf}, "code": {code}, "decision": {"allow"}})
				}
				if got.Status != http.StatusBadRequest || got.alert() != "This sign-in link isn't valid. Go back to the application and start again." {
					t.Errorf("%s %s: %d %q, want 400 and the invalid-link page", method, target, got.Status, got.alerts)
				}
				noRedirect(t, got)
			}
		}
		// A correctly signed consent URL still cannot skip the code step: the
		// server serves the step the flow is at.
		got := b.post("/login/consent?"+url.Values{"flow": {flow}, "sig": {stepSig(flow, "consent")}}.Encode(),
			url.Values{"csrf_token": {csrf}, "decision": {"allow"}})
		if got.URL.Path != "/login/code" {
			t.Errorf("POST consent on a flow at the code step ended at %d %s, want the code page", got.Status, got.URL.Path)
		}
		// The untouched flow still works.
		p = b.submit(p.form("/login/code"), map[string]string{"code": code})
		p = b.submit(p.form("/login/consent"), map[string]string{"decision": "allow"})
		r.callback(p, ar)
	})
}

func flipLast(s string) string {
	if strings.HasSuffix(s, "A") {
		return s[:len(s)-1] + "B"
	}
	return s[:len(s)-1] + "A"
}

func TestCSRF(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientConfidential)
		b := e.newBrowser()
		const csrfMessage = "Your session expired or the form was submitted twice. Please try again."

		// Another flow of the same browser, for its (valid, but foreign) token.
		_, other := b.codePage(r, phoneB)
		foreign := other.form("/login/code").fields.Get("csrf_token")

		ar := r.authorize()
		p := b.get(ar.URL)
		last := e.lastSMSID()
		for _, token := range []string{"", "forged", foreign} {
			got := b.submit(p.form("/login/phone"), map[string]string{"phone": phoneA, "csrf_token": token})
			if got.Status != http.StatusForbidden || got.alert() != csrfMessage {
				t.Errorf("phone step with csrf_token %q: %d %q, want 403", token, got.Status, got.alerts)
			}
		}
		if e.lastSMSID() != last {
			t.Error("a phone submission without a valid CSRF token sent an SMS")
		}

		p = b.submit(p.form("/login/phone"), map[string]string{"phone": phoneA})
		p.expect(http.StatusOK, "/login/code")
		code := e.codeFor(phoneA)
		for _, form := range []string{"/login/code", "/login/resend"} {
			got := b.submit(p.form(form), map[string]string{"code": code, "csrf_token": ""})
			if got.Status != http.StatusForbidden || got.alert() != csrfMessage {
				t.Errorf("%s without csrf_token: %d %q, want 403", form, got.Status, got.alerts)
			}
		}
		// The refused submission did not use the code up.
		p = b.submit(p.form("/login/code"), map[string]string{"code": code})
		p.expect(http.StatusOK, "/login/consent")
		got := b.submit(p.form("/login/consent"), map[string]string{"decision": "allow", "csrf_token": foreign})
		if got.Status != http.StatusForbidden {
			t.Errorf("consent with another flow's csrf_token: %d, want 403", got.Status)
		}
		noRedirect(t, got)
		r.callback(b.submit(p.form("/login/consent"), map[string]string{"decision": "allow"}), ar)
	})
}

func TestFlowFromAnotherBrowser(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)
		victim := e.newBrowser()
		ar, p := victim.codePage(r, phoneA)
		code := e.codeFor(phoneA)
		f := p.form("/login/code")

		attacker := e.newBrowser()
		const msg = "This sign-in was started in another browser. Continue there, or start again here."
		check := func(what string, got *page) {
			t.Helper()
			if got.Status != http.StatusForbidden || got.alert() != msg {
				t.Errorf("%s: %d %q, want 403 and the other-browser page", what, got.Status, got.alerts)
			}
			noRedirect(t, got)
		}
		check("GET without a browser cookie", attacker.get(p.URL.String()))
		check("POST without a browser cookie", attacker.submit(f, map[string]string{"code": code}))
		attacker.codePage(r, phoneB) // now it has a browser cookie of its own
		check("GET with another browser cookie", attacker.get(p.URL.String()))
		check("POST with another browser cookie", attacker.submit(f, map[string]string{"code": code}))

		// The victim's flow is intact.
		r.exchange(r.callback(victim.submit(f, map[string]string{"code": code}), ar), ar)
	})
}

func TestReusedAuthorizationCode(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)
		ar, code := e.newBrowser().login(r, phoneA, phoneA)
		tok := r.exchange(code, ar)
		if !r.active(tok.AccessToken) {
			t.Fatal("fresh access token inactive")
		}
		if _, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(ar.Verifier)); oauthError(err) != "invalid_grant" {
			t.Fatalf("second exchange of a code: %v, want invalid_grant", err)
		}
		// The tokens of the first exchange are revoked (RFC 6749 §4.1.2).
		if r.active(tok.AccessToken) {
			t.Error("access token from the first exchange still active after code reuse")
		}
		if _, err := r.refresh(tok.RefreshToken); oauthError(err) != "invalid_grant" {
			t.Errorf("refresh token from the first exchange: %v, want invalid_grant", err)
		}
	})
}

func TestConsentDeny(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientConfidential)
		b := e.newBrowser()
		ar, p := b.codePage(r, phoneA)
		p = b.submit(p.form("/login/code"), map[string]string{"code": e.codeFor(phoneA)})
		p.expect(http.StatusOK, "/login/consent")
		cf := p.form("/login/consent")
		if got := r.callbackError(b.submit(cf, map[string]string{"decision": "deny"}), ar); got != "access_denied" {
			t.Errorf("deny: error %q, want access_denied", got)
		}
		if got := b.submit(cf, map[string]string{"decision": "allow"}); got.Status != http.StatusGone {
			t.Errorf("allow after deny: %d, want 410", got.Status)
		}
		// Nothing was remembered: the next login asks again.
		_, p = b.codePage(r, phoneA)
		b.submit(p.form("/login/code"), map[string]string{"code": e.codeFor(phoneA)}).expect(http.StatusOK, "/login/consent")
	})
}

func TestResend(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		r := e.newRP(clientTrusted)
		b := e.newBrowser()
		ar, p := b.codePage(r, phoneA)
		first := e.codeFor(phoneA)
		rf := p.form("/login/resend")
		if len(rf.buttons) != 1 || !rf.buttons[0].disabled {
			t.Errorf("resend button %v, want one, disabled during the cooldown", rf.buttons)
		}

		last := e.lastSMSID()
		got := b.submit(rf, nil)
		got.expect(http.StatusTooManyRequests, "/login/resend")
		if msg := got.alert(); !strings.HasPrefix(msg, "Please wait ") || !strings.HasSuffix(msg, " seconds before asking for a new code.") {
			t.Errorf("resend too soon: %q", msg)
		}
		if e.lastSMSID() != last {
			t.Error("a resend during the cooldown sent an SMS")
		}

		// A wrong answer before the resend counts against the same budget as
		// the ones after it.
		wrong := b.submit(p.form("/login/code"), map[string]string{"code": wrongCode(first)})
		if msg := wrong.alert(); msg != "Wrong code. 4 attempts left." {
			t.Errorf("wrong code before the resend: %q", msg)
		}
		e.Clock.Advance(31 * time.Second)
		p = b.submit(rf, nil)
		p.expect(http.StatusOK, "/login/code")
		if len(p.notes) != 1 || p.notes[0] != "Your code is on its way again." {
			t.Errorf("after a resend: notices %q", p.notes)
		}
		second := e.codeFor(phoneA)
		if e.lastSMSID() == last {
			t.Fatal("no SMS for the resend")
		}
		if second != first {
			t.Errorf("a resend while the code is valid texted %s, want the same code %s", second, first)
		}
		wrong = b.submit(p.form("/login/code"), map[string]string{"code": wrongCode(first)})
		if msg := wrong.alert(); msg != "Wrong code. 3 attempts left." {
			t.Errorf("wrong code after the resend: %q, want the count going on (3 left)", msg)
		}

		// Two more resends are allowed, then the limit.
		for range 2 {
			e.Clock.Advance(31 * time.Second)
			b.submit(rf, nil).expect(http.StatusOK, "/login/code")
		}
		e.Clock.Advance(31 * time.Second)
		got = b.submit(rf, nil)
		if got.Status != http.StatusTooManyRequests || got.alert() != "You can't ask for more codes for this sign-in. Start again." {
			t.Errorf("fourth resend: %d %q, want 429 and the resend-limit message", got.Status, got.alerts)
		}
		if got.hasForm("/login/resend") {
			t.Error("the code page still offers a resend after the limit")
		}
		// The last code sent still works.
		p = b.submit(got.form("/login/code"), map[string]string{"code": e.codeFor(phoneA)})
		r.exchange(r.callback(p, ar), ar)
	})
}

func TestInvalidPhone(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		b := e.newBrowser()
		p := b.get(e.newRP(clientTrusted).authorize().URL)
		last := e.lastSMSID()
		for _, typed := range []string{"12", "not a number", "+33 6 12 34 56 78 ext. 12", strings.Repeat("6", 300)} {
			got := b.submit(p.form("/login/phone"), map[string]string{"phone": typed})
			got.expect(http.StatusBadRequest, "/login/phone")
			if !strings.HasPrefix(got.alert(), "This doesn't look like a valid phone number.") {
				t.Errorf("%q: %q", typed, got.alerts)
			}
			if v := got.inputs["phone"]["value"]; v != typed {
				t.Errorf("typed value not kept: %q, want %q", v, typed)
			}
		}
		if e.lastSMSID() != last {
			t.Error("an invalid number sent an SMS")
		}
	})
}

func TestSecurityHeadersAndCookies(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, withSessionTTL(time.Hour))
		r := e.newRP(clientConfidential)
		b := e.newBrowser()

		ar, p := b.codePage(r, phoneA)
		pages := []*page{p}
		consent := b.submit(p.form("/login/code"), map[string]string{"code": e.codeFor(phoneA)})
		consent.expect(http.StatusOK, "/login/consent")
		pages = append(pages, consent, b.get("/oauth2/auth?client_id=nope"), b.get("/no/such/page"))
		for _, pg := range pages {
			h := pg.Header
			csp := h.Get("Content-Security-Policy")
			if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("%s: CSP %q", pg.URL.Path, csp)
			}
			if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: X-Frame-Options %q Referrer-Policy %q X-Content-Type-Options %q", pg.URL.Path,
					h.Get("X-Frame-Options"), h.Get("Referrer-Policy"), h.Get("X-Content-Type-Options"))
			}
			if h.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: Cache-Control %q, want no-store", pg.URL.Path, h.Get("Cache-Control"))
			}
		}
		// Browsers apply form-action to every hop of the redirect answering
		// a form: the code and consent forms end at the relying party, so its
		// origin must be allowed there (Chromium otherwise stops the login on
		// the code page), and nowhere else.
		rpOrigin := "http://localhost:9999"
		for _, pg := range []*page{p, consent} {
			if fa := formAction(pg.Header.Get("Content-Security-Policy")); fa != "form-action 'self' "+rpOrigin {
				t.Errorf("%s: %q, want form-action 'self' %s", pg.URL.Path, fa, rpOrigin)
			}
		}
		phonePage := e.newBrowser().get(r.authorize().URL)
		phonePage.expect(http.StatusOK, "/login/phone")
		if fa := formAction(phonePage.Header.Get("Content-Security-Policy")); fa != "form-action 'self'" {
			t.Errorf("phone page: %q, want form-action 'self'", fa)
		}
		r.callback(b.submit(consent.form("/login/consent"), map[string]string{"decision": "allow"}), ar)

		seen := map[string]bool{}
		for _, resp := range b.tr.responses() {
			for _, c := range resp.Cookies() {
				seen[c.Name] = true
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
					t.Errorf("cookie %s: HttpOnly %v SameSite %v Path %q, want HttpOnly, Lax, /", c.Name, c.HttpOnly, c.SameSite, c.Path)
				}
				if c.Secure {
					t.Errorf("cookie %s is Secure on an http issuer (the browser would drop it)", c.Name)
				}
			}
		}
		for _, name := range []string{"otpgate_browser", "otpgate_session"} {
			if !seen[name] {
				t.Errorf("cookie %s never set", name)
			}
		}
	})
}

// formAction returns the form-action directive of a CSP.
func formAction(csp string) string {
	for _, d := range strings.Split(csp, ";") {
		if d = strings.TrimSpace(d); strings.HasPrefix(d, "form-action") {
			return d
		}
	}
	return ""
}

func TestExpiredFlow(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		const ttl = time.Second
		e := newEnv(t, kind, withFlowTTL(ttl))
		b := e.newBrowser()
		started := time.Now()
		_, p := b.codePage(e.newRP(clientTrusted), phoneA)
		code := e.codeFor(phoneA)
		time.Sleep(time.Until(started.Add(ttl + 200*time.Millisecond)))
		const msg = "This sign-in has expired. Go back to the application and start again."
		for _, got := range []*page{b.get(p.URL.String()), b.submit(p.form("/login/code"), map[string]string{"code": code})} {
			if got.Status != http.StatusGone || got.alert() != msg {
				t.Errorf("%s after the flow's lifetime: %d %q, want 410 and the expired page", got.URL.Path, got.Status, got.alerts)
			}
			noRedirect(t, got)
		}
	})
}
