package templates

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// samplePages holds one representative Page per page name.
func samplePages() map[string]Page {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	return map[string]Page{
		"phone": {
			ClientName: "Acme Shop", CSRF: "tok-phone", Action: "/login/phone?f=abc",
			Phone: "+33 6 12", Error: &Message{Key: "error.phone_invalid"},
		},
		"code": {
			ClientName: "Acme Shop", CSRF: "tok-code", Action: "/login/code?f=abc",
			ResendAction: "/login/resend?f=abc", ChangeURL: "/login/phone?f=abc",
			PhoneMasked: "+33 6 •• •• •• 78", CodeLength: 6, ResendIn: 30, ResendsLeft: 2,
			Error: &Message{Key: "error.code_wrong", Args: []any{3}}, Notice: &Message{Key: "notice.code_resent"},
		},
		"consent": {
			ClientName: "Acme Shop", CSRF: "tok-consent", Action: "/login/consent?f=abc",
			Scopes: []string{"openid", "phone", "offline_access", "profile:read"},
		},
		"error": {Error: &Message{Key: "error.flow_expired"}, Status: 400},
		"index": {Issuer: "http://localhost:8080"},
		"outbox": {Outbox: []OutboxItem{
			{To: "+33612345678", Body: "123456 is your code", SentAt: t0},
			{To: "+33698765432", Body: "654321 is your code", SentAt: t0.Add(time.Minute)},
		}},
		"demo": {Demo: &Demo{
			LoginURL: "/dev/demo/login", IDToken: "eyJhbGciOiJSUzI1NiJ9.e30.sig",
			Header: `{"alg": "RS256"}`, Claims: `{"sub": "abc", "amr": ["sms"]}`, UserInfo: `{"sub": "abc"}`,
		}},
	}
}

func renderPage(t *testing.T, name, locale string, p Page) (string, *html.Node) {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(&buf, name, locale, p); err != nil {
		t.Fatalf("Render(%q, %q): %v", name, locale, err)
	}
	doc, err := html.Parse(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return buf.String(), doc
}

func findNodes(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func isElem(tag string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == tag }
}

func attrOf(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// nodeText is the element's text with runs of white space, no-break spaces
// included, folded to one space; compare it with foldSpace(T(…)).
func nodeText(n *html.Node) string {
	var b strings.Builder
	for _, t := range findNodes(n, func(n *html.Node) bool { return n.Type == html.TextNode }) {
		b.WriteString(t.Data)
	}
	return foldSpace(b.String())
}

func foldSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

func nodeByID(doc *html.Node, id string) *html.Node {
	got := findNodes(doc, func(n *html.Node) bool { v, ok := attrOf(n, "id"); return ok && v == id })
	if len(got) != 1 {
		return nil
	}
	return got[0]
}

func TestRenderEveryPage(t *testing.T) {
	for _, locale := range pageLocales {
		for name, p := range samplePages() {
			t.Run(name+"/"+locale, func(t *testing.T) {
				_, doc := renderPage(t, name, locale, p)

				htmlEl := findNodes(doc, isElem("html"))[0]
				if lang, _ := attrOf(htmlEl, "lang"); lang != locale {
					t.Errorf("lang = %q, want %q", lang, locale)
				}
				if len(findNodes(doc, isElem("h1"))) != 1 {
					t.Error("want exactly one h1")
				}
				if titles := findNodes(doc, isElem("title")); len(titles) != 1 || nodeText(titles[0]) == "" {
					t.Error("want one non-empty title")
				}
				viewport := findNodes(doc, func(n *html.Node) bool {
					v, _ := attrOf(n, "name")
					return n.Data == "meta" && v == "viewport"
				})
				if len(viewport) != 1 {
					t.Error("want a viewport meta")
				}
				links := findNodes(doc, isElem("link"))
				if len(links) != 1 {
					t.Fatalf("want one link element, got %d", len(links))
				}
				if href, _ := attrOf(links[0], "href"); href != "/static/style.css" {
					t.Errorf("stylesheet href = %q", href)
				}

				// The CSP allows no inline script or style: check there is none.
				if len(findNodes(doc, isElem("style"))) != 0 {
					t.Error("inline <style> element")
				}
				for _, s := range findNodes(doc, isElem("script")) {
					src, ok := attrOf(s, "src")
					if !ok || src != "/static/app.js" || s.FirstChild != nil {
						t.Errorf("script must be the external /static/app.js only, got src=%q", src)
					}
					if _, ok := attrOf(s, "defer"); !ok {
						t.Error("app.js must be deferred")
					}
				}
				for _, n := range findNodes(doc, func(n *html.Node) bool { return n.Type == html.ElementNode }) {
					for _, a := range n.Attr {
						if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
							t.Errorf("<%s> has inline %s attribute", n.Data, a.Key)
						}
					}
				}

				// Every form posts and carries the CSRF token.
				for _, f := range findNodes(doc, isElem("form")) {
					if m, _ := attrOf(f, "method"); m != "post" {
						t.Errorf("form method = %q, want post", m)
					}
					tokens := findNodes(f, func(n *html.Node) bool {
						nm, _ := attrOf(n, "name")
						ty, _ := attrOf(n, "type")
						return n.Data == "input" && nm == "csrf_token" && ty == "hidden"
					})
					if len(tokens) != 1 {
						t.Fatalf("form %v: want one hidden csrf_token, got %d", f.Attr, len(tokens))
					}
					if v, _ := attrOf(tokens[0], "value"); v != p.CSRF {
						t.Errorf("csrf_token = %q, want %q", v, p.CSRF)
					}
				}

				// A key that fell through T would show as itself.
				body := nodeText(doc)
				for key := range pageCatalogs["en"] {
					if strings.Contains(body, key) {
						t.Errorf("page shows the raw key %q", key)
					}
				}
			})
		}
	}
}

func TestFormsPresent(t *testing.T) {
	want := map[string]int{"phone": 1, "code": 2, "consent": 1, "error": 0, "index": 0, "outbox": 0, "demo": 0}
	for name, p := range samplePages() {
		_, doc := renderPage(t, name, "en", p)
		if got := len(findNodes(doc, isElem("form"))); got != want[name] {
			t.Errorf("%s: %d forms, want %d", name, got, want[name])
		}
	}
}

func TestPhonePage(t *testing.T) {
	p := samplePages()["phone"]
	_, doc := renderPage(t, "phone", "en", p)
	inputs := findNodes(doc, func(n *html.Node) bool { v, _ := attrOf(n, "name"); return n.Data == "input" && v == "phone" })
	if len(inputs) != 1 {
		t.Fatalf("want one phone input, got %d", len(inputs))
	}
	in := inputs[0]
	for k, v := range map[string]string{"type": "tel", "autocomplete": "tel", "inputmode": "tel", "value": "+33 6 12", "aria-invalid": "true"} {
		if got, _ := attrOf(in, k); got != v {
			t.Errorf("phone input %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"required", "autofocus"} {
		if _, ok := attrOf(in, k); !ok {
			t.Errorf("phone input lacks %s", k)
		}
	}
	desc, _ := attrOf(in, "aria-describedby")
	for _, id := range strings.Fields(desc) {
		if nodeByID(doc, id) == nil {
			t.Errorf("aria-describedby names missing element %q", id)
		}
	}
	errEl := nodeByID(doc, "phone-error")
	if errEl == nil || !strings.Contains(desc, "phone-error") {
		t.Fatalf("error not tied to the input: aria-describedby=%q", desc)
	}
	if role, _ := attrOf(errEl, "role"); role != "alert" {
		t.Errorf("error role = %q, want alert", role)
	}
	if got, want := nodeText(errEl), foldSpace(T("en", "error.phone_invalid")); got != want {
		t.Errorf("error text = %q, want %q", got, want)
	}
	if body := nodeText(doc); !strings.Contains(body, "to continue to Acme Shop") || !strings.Contains(body, "Sign in with your phone") {
		t.Errorf("heading or client name missing: %q", body)
	}

	// Without an error the input is not marked invalid.
	p.Error = nil
	_, doc = renderPage(t, "phone", "en", p)
	in = findNodes(doc, func(n *html.Node) bool { v, _ := attrOf(n, "name"); return n.Data == "input" && v == "phone" })[0]
	if _, ok := attrOf(in, "aria-invalid"); ok {
		t.Error("aria-invalid without an error")
	}
	if desc, _ := attrOf(in, "aria-describedby"); desc != "phone-hint" {
		t.Errorf("aria-describedby = %q, want phone-hint", desc)
	}
	if len(findNodes(doc, func(n *html.Node) bool { v, _ := attrOf(n, "role"); return v == "alert" })) != 0 {
		t.Error("alert shown without an error")
	}

	// The hint shows the national format when a default region makes it work.
	if got, want := nodeText(nodeByID(doc, "phone-hint")), foldSpace(T("en", "phone.hint")); got != want {
		t.Errorf("hint without a region = %q, want %q", got, want)
	}
	p.PhoneExample = "06 12 34 56 78"
	for _, locale := range []string{"en", "fr"} {
		_, doc = renderPage(t, "phone", locale, p)
		if got := nodeText(nodeByID(doc, "phone-hint")); !strings.Contains(got, "06 12 34 56 78") {
			t.Errorf("%s hint with a regional example = %q", locale, got)
		}
	}
}

func codeInputOf(t *testing.T, doc *html.Node) *html.Node {
	t.Helper()
	inputs := findNodes(doc, func(n *html.Node) bool { v, _ := attrOf(n, "name"); return n.Data == "input" && v == "code" })
	if len(inputs) != 1 {
		t.Fatalf("want one code input, got %d", len(inputs))
	}
	return inputs[0]
}

func TestCodePageInput(t *testing.T) {
	_, doc := renderPage(t, "code", "en", samplePages()["code"])
	in := codeInputOf(t, doc)
	for k, v := range map[string]string{
		"name": "code", "autocomplete": "one-time-code", "inputmode": "numeric",
		"pattern": "[0-9]*", "maxlength": "6", "type": "text",
	} {
		if got, ok := attrOf(in, k); !ok || got != v {
			t.Errorf("code input %s = %q, want %q", k, got, v)
		}
	}
	if _, ok := attrOf(in, "required"); !ok {
		t.Error("code input not required")
	}
	if desc, _ := attrOf(in, "aria-describedby"); nodeByID(doc, desc) == nil || desc != "code-error" {
		t.Errorf("code input aria-describedby = %q", desc)
	}
	body := nodeText(doc)
	for _, want := range []string{"Enter the code", "We sent a code to +33 6 •• •• •• 78.", "Wrong code. 3 attempts left.", "Your code is on its way again.", "Verify"} {
		if !strings.Contains(body, want) {
			t.Errorf("code page lacks %q", want)
		}
	}

	// No length known: no maxlength="0" that would block typing.
	p := samplePages()["code"]
	p.CodeLength = 0
	_, doc = renderPage(t, "code", "en", p)
	if _, ok := attrOf(codeInputOf(t, doc), "maxlength"); ok {
		t.Error("maxlength set with CodeLength 0")
	}
}

func resendForms(doc *html.Node) []*html.Node {
	return findNodes(doc, func(n *html.Node) bool {
		if n.Data != "form" {
			return false
		}
		a, _ := attrOf(n, "action")
		return a == "/login/resend?f=abc"
	})
}

func TestResendButton(t *testing.T) {
	p := samplePages()["code"]
	for _, locale := range pageLocales {
		_, doc := renderPage(t, "code", locale, p)
		forms := resendForms(doc)
		if len(forms) != 1 {
			t.Fatalf("%s: want one resend form, got %d", locale, len(forms))
		}
		btns := findNodes(forms[0], isElem("button"))
		if len(btns) != 1 {
			t.Fatalf("want one resend button, got %d", len(btns))
		}
		b := btns[0]
		if _, ok := attrOf(b, "disabled"); !ok {
			t.Error("resend button enabled while ResendIn > 0")
		}
		if v, _ := attrOf(b, "data-resend-in"); v != "30" {
			t.Errorf("data-resend-in = %q, want 30", v)
		}
		if v, _ := attrOf(b, "data-ready"); v != T(locale, "code.resend") {
			t.Errorf("data-ready = %q", v)
		}
		if got, want := nodeText(b), foldSpace(T(locale, "code.resend_wait", 30)); got != want {
			t.Errorf("resend label = %q, want %q", got, want)
		}
		// app.js swaps the label's one number while counting down.
		if n := len(regexp.MustCompile(`\d+`).FindAllString(nodeText(b), -1)); n != 1 {
			t.Errorf("resend label has %d numbers, app.js expects exactly one", n)
		}
	}
	if got := nodeText(findNodes(resendForms(docOf(renderPage(t, "code", "en", p)))[0], isElem("button"))[0]); got != "Resend code (30 s)" {
		t.Errorf("en label = %q", got)
	}

	p.ResendIn = 0
	_, doc := renderPage(t, "code", "en", p)
	b := findNodes(resendForms(doc)[0], isElem("button"))[0]
	if _, ok := attrOf(b, "disabled"); ok {
		t.Error("resend button disabled with ResendIn 0")
	}
	if _, ok := attrOf(b, "data-resend-in"); ok {
		t.Error("countdown set with ResendIn 0")
	}
	if nodeText(b) != "Resend code" {
		t.Errorf("label = %q", nodeText(b))
	}

	p.ResendsLeft = 0
	_, doc = renderPage(t, "code", "en", p)
	if len(resendForms(doc)) != 0 {
		t.Error("resend form shown with no resends left")
	}
	if !strings.Contains(nodeText(doc), foldSpace(T("en", "code.no_resends"))) {
		t.Error("no word that resends are used up")
	}
}

func docOf(_ string, doc *html.Node) *html.Node { return doc }

func TestChangeNumberLink(t *testing.T) {
	changeLinks := func(doc *html.Node) []*html.Node {
		return findNodes(doc, func(n *html.Node) bool {
			return n.Data == "a" && nodeText(n) == T("en", "code.change")
		})
	}
	p := samplePages()["code"]
	_, doc := renderPage(t, "code", "en", p)
	links := changeLinks(doc)
	if len(links) != 1 {
		t.Fatalf("want one change link, got %d", len(links))
	}
	if href, _ := attrOf(links[0], "href"); href != p.ChangeURL {
		t.Errorf("change href = %q", href)
	}

	p.ChangeURL, p.PhoneLocked = "", true
	out, doc := renderPage(t, "code", "en", p)
	if len(changeLinks(doc)) != 0 || strings.Contains(out, "/login/phone") {
		t.Error("change link shown without ChangeURL")
	}
	if !strings.Contains(nodeText(doc), "This number was set by Acme Shop and can't be changed.") {
		t.Errorf("locked number not explained: %q", nodeText(doc))
	}
	p.ClientName = ""
	if _, doc := renderPage(t, "code", "fr", p); !strings.Contains(nodeText(doc), foldSpace(T("fr", "code.locked"))) {
		t.Error("locked number not explained without a client name")
	}
}

func TestConsentPage(t *testing.T) {
	_, doc := renderPage(t, "consent", "en", samplePages()["consent"])
	forms := findNodes(doc, isElem("form"))
	var decisions []string
	for _, b := range findNodes(forms[0], isElem("button")) {
		name, _ := attrOf(b, "name")
		value, _ := attrOf(b, "value")
		if typ, _ := attrOf(b, "type"); name != "decision" || typ != "submit" {
			t.Errorf("button name=%q type=%q", name, typ)
		}
		decisions = append(decisions, value)
	}
	if !slices.Equal(decisions, []string{"allow", "deny"}) {
		t.Errorf("decisions = %v", decisions)
	}
	var items []string
	for _, li := range findNodes(doc, isElem("li")) {
		items = append(items, nodeText(li))
	}
	want := []string{"Confirm your identity", "Know your verified phone number", "Stay signed in (refresh tokens)", "profile:read"}
	if !slices.Equal(items, want) {
		t.Errorf("scopes = %q, want %q", items, want)
	}
	if h := nodeText(findNodes(doc, isElem("h1"))[0]); h != "Acme Shop wants to:" {
		t.Errorf("h1 = %q", h)
	}
}

func TestErrorPage(t *testing.T) {
	for _, tc := range []struct {
		p    Page
		want string
	}{
		{Page{Error: &Message{Key: "error.rate_limited", Args: []any{15}}, Status: 429}, "Too many codes were requested. Try again in 15 minutes."},
		{Page{Status: 500}, foldSpace(T("en", "error.internal"))},
		{Page{Status: 404}, foldSpace(T("en", "error.not_found"))},
	} {
		_, doc := renderPage(t, "error", "en", tc.p)
		alerts := findNodes(doc, func(n *html.Node) bool { v, _ := attrOf(n, "role"); return v == "alert" })
		if len(alerts) != 1 || nodeText(alerts[0]) != tc.want {
			t.Errorf("status %d: alert %q, want %q", tc.p.Status, nodeText(doc), tc.want)
		}
	}
	if _, doc := renderPage(t, "error", "fr", Page{Status: 500}); nodeText(findNodes(doc, isElem("h1"))[0]) != "Une erreur s’est produite" {
		t.Error("French error title")
	}
}

func TestEscaping(t *testing.T) {
	evil := `<script>alert(1)</script>`
	for _, name := range []string{"phone", "code", "consent"} {
		p := samplePages()[name]
		p.ClientName = evil
		p.Phone = `"><img src=x onerror=alert(1)>`
		p.PhoneMasked = evil
		p.ChangeURL = ""
		p.PhoneLocked = true
		out, doc := renderPage(t, name, "en", p)
		if strings.Contains(out, "<script>alert") || strings.Contains(out, "<img") {
			t.Errorf("%s: markup from data reached the page", name)
		}
		if !strings.Contains(out, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: client name not shown escaped", name)
		}
		if !strings.Contains(nodeText(doc), evil) {
			t.Errorf("%s: client name not shown as text", name)
		}
	}
	// A javascript: URL is neutralised, not linked.
	out, _ := renderPage(t, "demo", "en", Page{Demo: &Demo{LoginURL: "javascript:alert(1)"}})
	if strings.Contains(out, "javascript:") {
		t.Error("javascript: URL rendered as a link")
	}
}

func TestOutboxPage(t *testing.T) {
	p := samplePages()["outbox"]
	out, doc := renderPage(t, "outbox", "en", p)
	if !strings.Contains(out, `<meta http-equiv="refresh" content="3">`) {
		t.Error("outbox does not refresh itself")
	}
	pres := findNodes(doc, isElem("pre"))
	if len(pres) != 2 || nodeText(pres[0]) != "654321 is your code" || nodeText(pres[1]) != "123456 is your code" {
		t.Errorf("outbox not newest first: %q", nodeText(doc))
	}
	if p.Outbox[0].Body != "123456 is your code" {
		t.Error("Render reordered the caller's slice")
	}
	_, doc = renderPage(t, "outbox", "fr", Page{})
	if !strings.Contains(nodeText(doc), foldSpace(T("fr", "outbox.empty"))) || len(findNodes(doc, isElem("pre"))) != 0 {
		t.Error("empty outbox not said")
	}
}

func TestIndexPage(t *testing.T) {
	_, doc := renderPage(t, "index", "en", samplePages()["index"])
	var hrefs []string
	for _, a := range findNodes(doc, isElem("a")) {
		h, _ := attrOf(a, "href")
		hrefs = append(hrefs, h)
	}
	for _, want := range []string{"/dev/demo", "/dev/outbox", "/.well-known/openid-configuration", "/.well-known/jwks.json"} {
		if !slices.Contains(hrefs, want) {
			t.Errorf("index lacks a link to %s", want)
		}
	}
	if !strings.Contains(nodeText(doc), "http://localhost:8080") {
		t.Error("index lacks the issuer")
	}
}

func TestDemoPage(t *testing.T) {
	p := samplePages()["demo"]
	_, doc := renderPage(t, "demo", "en", p)
	login := findNodes(doc, func(n *html.Node) bool { return n.Data == "a" && nodeText(n) == "Sign in with otpgate" })
	if len(login) != 1 {
		t.Fatal("no sign-in link")
	}
	if h, _ := attrOf(login[0], "href"); h != "/dev/demo/login" {
		t.Errorf("login href = %q", h)
	}
	var pres []string
	for _, n := range findNodes(doc, isElem("pre")) {
		pres = append(pres, n.FirstChild.Data)
	}
	for _, want := range []string{p.Demo.Header, p.Demo.Claims, p.Demo.UserInfo, p.Demo.IDToken} {
		if !slices.Contains(pres, want) {
			t.Errorf("demo lacks <pre>%s</pre>", want)
		}
	}

	_, doc = renderPage(t, "demo", "en", Page{Demo: &Demo{LoginURL: "/dev/demo/login", Error: "access_denied"}})
	if len(findNodes(doc, isElem("pre"))) != 0 {
		t.Error("token shown without IDToken")
	}
	alerts := findNodes(doc, func(n *html.Node) bool { v, _ := attrOf(n, "role"); return v == "alert" })
	if len(alerts) != 1 || nodeText(alerts[0]) != "access_denied" {
		t.Error("demo error not shown as an alert")
	}
	if _, doc := renderPage(t, "demo", "en", Page{}); !strings.Contains(nodeText(doc), foldSpace(T("en", "demo.unavailable"))) {
		t.Error("nil Demo not handled")
	}
}

func TestRenderUnknown(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, "nope", "en", Page{}); err == nil || buf.Len() != 0 {
		t.Errorf("unknown page: err=%v, wrote %d bytes", err, buf.Len())
	}
	if err := Render(&buf, "phone", "xx", Page{}); err != nil {
		t.Errorf("unknown locale: %v", err)
	}
	if !strings.Contains(buf.String(), `lang="en"`) {
		t.Error("unknown locale not rendered in English")
	}
	if err := Render(failingWriter{}, "phone", "en", Page{}); err == nil {
		t.Error("write error not returned")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

// requiredPageKeys are the messages the provider uses, with their English text.
var requiredPageKeys = map[string]string{
	"error.phone_invalid":   "This doesn't look like a valid phone number. Include the country code, e.g. +33 6 12 34 56 78.",
	"error.phone_region":    "Phone numbers from this country can't be used here.",
	"error.code_wrong":      "Wrong code. %d attempts left.",
	"error.code_wrong_last": "Wrong code. 1 attempt left.",
	"error.code_expired":    "This code has expired. Ask for a new one.",
	"error.code_locked":     "Too many wrong codes. Start again with a new code.",
	"error.resend_too_soon": "Please wait %d seconds before asking for a new code.",
	"error.resend_limit":    "You can't ask for more codes for this sign-in. Start again.",
	"error.delivery":        "We couldn't send the SMS. Try again in a moment.",
	"error.rate_limited":    "Too many codes were requested. Try again in %d minutes.",
	"error.csrf":            "Your session expired or the form was submitted twice. Please try again.",
	"error.flow_expired":    "This sign-in has expired. Go back to the application and start again.",
	"error.flow_invalid":    "This sign-in link isn't valid. Go back to the application and start again.",
	"error.other_browser":   "This sign-in was started in another browser. Continue there, or start again here.",
	"error.bad_request":     "The application sent an invalid sign-in request.",
	"error.unavailable":     "The service is temporarily unavailable. Please try again shortly.",
	"error.internal":        "Something went wrong on our side. Please try again.",
	"notice.code_resent":    "Your code is on its way again.",
	"title.error":           "Something went wrong",
	"scope.openid":          "Confirm your identity",
	"scope.phone":           "Know your verified phone number",
	"scope.offline_access":  "Stay signed in (refresh tokens)",
}

// pageTemplateKeys scans the page sources for {{t "key" …}}.
func pageTemplateKeys(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`\bt\s+"([^"]+)"`)
	var keys []string
	err := fs.WalkDir(pageFiles, "pages", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := pageFiles.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			keys = append(keys, m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 40 {
		t.Fatalf("found only %d keys in templates: the scan is broken", len(keys))
	}
	return keys
}

var fmtVerbRE = regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)

func TestPageCatalogs(t *testing.T) {
	used := append(pageTemplateKeys(t), slices.Collect(maps.Keys(requiredPageKeys))...)
	for _, locale := range pageLocales {
		for _, key := range used {
			if v, ok := pageCatalogs[locale][key]; !ok || strings.TrimSpace(v) == "" {
				t.Errorf("%s: key %q missing or empty", locale, key)
			}
		}
	}
	en := slices.Sorted(maps.Keys(pageCatalogs["en"]))
	for _, locale := range pageLocales[1:] {
		if other := slices.Sorted(maps.Keys(pageCatalogs[locale])); !slices.Equal(en, other) {
			t.Errorf("%s and en have different keys", locale)
		}
		for _, key := range en {
			a := fmtVerbRE.FindAllString(pageCatalogs["en"][key], -1)
			b := fmtVerbRE.FindAllString(pageCatalogs[locale][key], -1)
			if !slices.Equal(a, b) {
				t.Errorf("%s: %q has verbs %v, en has %v", locale, key, b, a)
			}
			if strings.Contains(pageCatalogs[locale][key], "'") {
				t.Errorf("%s: %q uses a straight apostrophe", locale, key)
			}
		}
	}
	for key, want := range requiredPageKeys {
		if got := pageCatalogs["en"][key]; got != want {
			t.Errorf("en %q = %q, want %q", key, got, want)
		}
	}
}

// TestPageCatalogFiles catches duplicate keys, which encoding/json would silently
// collapse into the last one.
func TestPageCatalogFiles(t *testing.T) {
	for _, locale := range pageLocales {
		b, err := pageCatalogFiles.ReadFile("locales/" + locale + ".json")
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		seen := map[string]bool{}
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			key := tok.(string)
			if seen[key] {
				t.Errorf("%s: duplicate key %q", locale, key)
			}
			seen[key] = true
			var v string
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%s: %q: %v", locale, key, err)
			}
		}
	}
}

func TestTLookup(t *testing.T) {
	for _, tc := range []struct {
		locale, key string
		args        []any
		want        string
	}{
		{"en", "error.code_wrong", []any{3}, "Wrong code. 3 attempts left."},
		{"fr", "error.code_wrong", []any{3}, "Code incorrect. Il vous reste 3\u00a0essais."},
		{"de", "title.error", nil, "Something went wrong"},
		{"", "title.error", nil, "Something went wrong"},
		{"fr", "no.such.key", nil, "no.such.key"},
		{"fr", "title.error", nil, "Une erreur s’est produite"},
	} {
		if got := T(tc.locale, tc.key, tc.args...); got != tc.want {
			t.Errorf("T(%q, %q, %v) = %q, want %q", tc.locale, tc.key, tc.args, got, tc.want)
		}
	}
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		ui, accept, fallback, want string
	}{
		{"fr en", "", "en", "fr"},
		{"en fr", "fr", "fr", "en"},
		{"de fr-CA", "en", "en", "fr"},
		{"de", "", "fr", "fr"},
		{"", "fr-FR,fr;q=0.9", "en", "fr"},
		{"", "fr-FR,fr;q=0.9,en;q=0.8", "en", "fr"},
		{"", "en;q=0.5, fr;q=0.8", "en", "fr"},
		{"", "de-DE,de;q=0.9,fr;q=0.5", "en", "fr"},
		{"", "en-GB,en;q=0.9", "fr", "en"},
		{"", "de", "en", "en"},
		{"", "de", "fr", "fr"},
		{"", "", "fr", "fr"},
		{"", "", "en", "en"},
		{"", "", "", "en"},
		{"", "", "xx", "en"},
		{"!!", "not a header ;;;", "fr", "fr"},
		{"", "*", "fr", "fr"},
	} {
		if got := Negotiate(tc.ui, tc.accept, tc.fallback); got != tc.want {
			t.Errorf("Negotiate(%q, %q, %q) = %q, want %q", tc.ui, tc.accept, tc.fallback, got, tc.want)
		}
	}
}

func TestStatic(t *testing.T) {
	st := Static()
	for _, name := range []string{"style.css", "app.js"} {
		f, err := st.Open(name)
		if err != nil {
			t.Fatalf("Static: %v", err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || len(b) < 100 {
			t.Errorf("%s: %d bytes, err %v", name, len(b), err)
		}
	}
	entries, err := fs.ReadDir(st, ".")
	if err != nil || len(entries) != 2 {
		t.Errorf("Static holds %d files, want 2 (err %v)", len(entries), err)
	}
}

func ExampleT_missingKey() {
	fmt.Println(T("en", "error.code_wrong", 2))
	fmt.Println(T("fr", "no.such.key"))
	// Output:
	// Wrong code. 2 attempts left.
	// no.such.key
}
