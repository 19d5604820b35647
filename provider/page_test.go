package provider_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// page is one answer as the test browser sees it: the final response after
// redirects inside otpgate, with its forms, links and messages parsed.
type page struct {
	t      testing.TB
	Status int
	URL    *url.URL // the URL that produced this response
	Header http.Header
	Body   string
	forms  []form
	links  []string
	alerts []string // error alerts
	notes  []string // info alerts
	inputs map[string]map[string]string
}

// form is an HTML form: its action and the values it would submit (hidden
// and text inputs; for buttons see buttons).
type form struct {
	action  string
	method  string
	fields  url.Values
	buttons []button
}

type button struct {
	name, value string
	disabled    bool
}

func newPage(t testing.TB, resp *http.Response, body []byte) *page {
	p := &page{t: t, Status: resp.StatusCode, URL: resp.Request.URL, Header: resp.Header, Body: string(body), inputs: map[string]map[string]string{}}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		return p
	}
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse %s: %v", p.URL, err)
	}
	var cur *form
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			a := attrs(n)
			switch n.Data {
			case "form":
				p.forms = append(p.forms, form{action: a["action"], method: a["method"], fields: url.Values{}})
				cur = &p.forms[len(p.forms)-1]
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c)
				}
				cur = nil
				return
			case "input":
				if a["name"] != "" {
					p.inputs[a["name"]] = a
					if cur != nil {
						cur.fields.Set(a["name"], a["value"])
					}
				}
			case "button":
				if cur != nil {
					_, disabled := a["disabled"]
					cur.buttons = append(cur.buttons, button{name: a["name"], value: a["value"], disabled: disabled})
				}
			case "a":
				p.links = append(p.links, a["href"])
			case "p":
				if strings.Contains(a["class"], "alert-error") {
					p.alerts = append(p.alerts, text(n))
				}
				if strings.Contains(a["class"], "alert-info") {
					p.notes = append(p.notes, text(n))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return p
}

func attrs(n *html.Node) map[string]string {
	m := map[string]string{}
	for _, a := range n.Attr {
		m[a.Key] = a.Val
	}
	return m
}

// text is the node's text with runs of white space (no-break spaces included)
// folded into one space.
func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(strings.ReplaceAll(b.String(), "\u00a0", " ")), " ")
}

// Text is the page body with tags dropped and white space folded, for
// "the page says …" checks.
func (p *page) Text() string {
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		return p.Body
	}
	return text(doc)
}

// form returns the form whose action path is path, failing when there is none.
func (p *page) form(path string) form {
	p.t.Helper()
	for _, f := range p.forms {
		if u, err := url.Parse(f.action); err == nil && u.Path == path {
			return f
		}
	}
	p.t.Fatalf("%s (%d): no form posting to %s; page text: %s", p.URL, p.Status, path, p.Text())
	return form{}
}

// hasForm reports whether the page has a form posting to path.
func (p *page) hasForm(path string) bool {
	for _, f := range p.forms {
		if u, err := url.Parse(f.action); err == nil && u.Path == path {
			return true
		}
	}
	return false
}

// hasLinkTo reports whether the page links to path.
func (p *page) hasLinkTo(path string) bool {
	for _, l := range p.links {
		if u, err := url.Parse(l); err == nil && u.Path == path {
			return true
		}
	}
	return false
}

// expect fails unless the page is the login step path ("/login/code") with status.
func (p *page) expect(status int, path string) {
	p.t.Helper()
	if p.Status != status || p.URL.Path != path {
		p.t.Fatalf("got %d %s, want %d %s; alerts %q; text: %.400s", p.Status, p.URL.Path, status, path, p.alerts, p.Text())
	}
}

// alert returns the page's single error alert ("" when there is none).
func (p *page) alert() string {
	p.t.Helper()
	switch len(p.alerts) {
	case 0:
		return ""
	case 1:
		return p.alerts[0]
	}
	p.t.Fatalf("page %s has %d error alerts: %q", p.URL.Path, len(p.alerts), p.alerts)
	return ""
}

// location is the redirect target of a response the browser stopped at.
func (p *page) location() *url.URL {
	p.t.Helper()
	if p.Status < 300 || p.Status > 399 {
		p.t.Fatalf("%s: status %d, want a redirect to the relying party; alerts %q; text: %.400s", p.URL, p.Status, p.alerts, p.Text())
	}
	u, err := url.Parse(p.Header.Get("Location"))
	if err != nil {
		p.t.Fatalf("bad Location %q: %v", p.Header.Get("Location"), err)
	}
	return u
}

// flowID is the flow id of a login step page's URL.
func (p *page) flowID() string {
	p.t.Helper()
	id := p.URL.Query().Get("flow")
	if id == "" {
		p.t.Fatalf("%s is not a login step URL", p.URL)
	}
	return id
}
