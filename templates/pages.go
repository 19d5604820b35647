package templates

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"
)

//go:embed pages/*.html
var pageFiles embed.FS

//go:embed static/style.css static/app.js
var pageStaticFiles embed.FS

//go:embed locales/*.json
var pageCatalogFiles embed.FS

// pageLocales lists the page catalogs, first one the default. It mirrors
// Locales() (declared with the SMS texts) without depending on that file.
var pageLocales = []string{"en", "fr"}

// pageNames are the pages Render knows; each is pages/<name>.html.
var pageNames = []string{"phone", "code", "consent", "error", "index", "outbox", "demo"}

// Message is a catalog key and the fmt arguments for its text, so a handler
// can say what happened without composing the sentence itself.
type Message struct {
	Key  string
	Args []any
}

// OutboxItem is one SMS captured by the development outbox.
type OutboxItem struct {
	To, Body string
	SentAt   time.Time
}

// Demo is what the development relying party shows: where to start a login
// and, after one, the decoded ID token and userinfo as indented JSON.
type Demo struct {
	LoginURL, IDToken, Header, Claims, UserInfo, Error string
}

// Page is the data every page is rendered with; each page reads only the
// fields it needs.
type Page struct {
	ClientName string
	// CSRF goes into a hidden csrf_token field of every form.
	CSRF string
	// Action, ResendAction and ChangeURL are form and link targets;
	// ChangeURL is empty when the number cannot be changed.
	Action, ResendAction, ChangeURL string
	// Phone is the number as typed, kept after an error.
	Phone string
	// PhoneExample is a national-format example in the default region
	// ("06 12 34 56 78"); empty when numbers must carry their country code.
	PhoneExample string
	// PhoneMasked is the number shown on the code page ("+33 6 •• •• •• 78").
	PhoneMasked string
	// PhoneLocked says the relying party fixed the number.
	PhoneLocked bool
	CodeLength  int
	// ResendIn is the number of seconds before a resend is allowed.
	ResendIn    int
	ResendsLeft int
	// Scopes are the scope names shown on the consent page.
	Scopes []string
	// Error and Notice are shown as an alert and as a status line.
	Error, Notice *Message
	// Issuer, Outbox and Demo feed the development pages.
	Issuer string
	Outbox []OutboxItem
	Demo   *Demo
	// Status is the HTTP status of an error page; the caller writes it.
	Status int
}

// pageView is what templates execute with: the page plus what the layout needs.
type pageView struct {
	Page
	Lang   string
	Name   string
	Script bool
}

// scriptedPages are the pages that load app.js: the resend countdown, pasted codes
// cleaned up and double submits ignored. Every page works without it.
var scriptedPages = map[string]bool{"phone": true, "code": true, "consent": true}

var pageCatalogs = mustLoadPageCatalogs()

func mustLoadPageCatalogs() map[string]map[string]string {
	c := make(map[string]map[string]string, len(pageLocales))
	for _, loc := range pageLocales {
		b, err := pageCatalogFiles.ReadFile("locales/" + loc + ".json")
		if err != nil {
			panic(fmt.Sprintf("templates: read catalog %s: %v", loc, err))
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			panic(fmt.Sprintf("templates: parse catalog %s: %v", loc, err))
		}
		c[loc] = m
	}
	return c
}

// pageLocale maps an unknown locale to the default one.
func pageLocale(locale string) string {
	if _, ok := pageCatalogs[locale]; ok {
		return locale
	}
	return pageLocales[0]
}

// T returns the text for key in locale, formatted with args by fmt.Sprintf.
// An unknown locale falls back to English and a missing key yields the key
// itself; the tests keep every key used present in every catalog.
func T(locale, key string, args ...any) string {
	s, ok := pageCatalogs[pageLocale(locale)][key]
	if !ok {
		return key
	}
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

// Negotiate picks the page language: the first supported tag of ui_locales
// (space-separated, in the caller's order), else the best match of the
// Accept-Language header (q-values honoured), else fallback, or English if
// fallback itself is not supported. Regional tags match their language:
// fr-FR and fr-CA give "fr".
func Negotiate(uiLocales, acceptLanguage, fallback string) string {
	m := pageLocaleMatcher()
	// A bound on both inputs keeps a hostile header from costing much.
	for i, s := range strings.Fields(uiLocales) {
		if i == 8 {
			break
		}
		tag, err := language.Parse(s)
		if err != nil {
			continue
		}
		if _, idx, conf := m.Match(tag); conf != language.No {
			return pageLocales[idx]
		}
	}
	if acceptLanguage != "" && len(acceptLanguage) <= 512 {
		if tags, _, err := language.ParseAcceptLanguage(acceptLanguage); err == nil && len(tags) > 0 {
			if _, idx, conf := m.Match(tags...); conf != language.No {
				return pageLocales[idx]
			}
		}
	}
	return pageLocale(fallback)
}

var pageLocaleMatcher = sync.OnceValue(func() language.Matcher {
	tags := make([]language.Tag, len(pageLocales))
	for i, l := range pageLocales {
		tags[i] = language.MustParse(l)
	}
	return language.NewMatcher(tags)
})

// Static returns the stylesheet and script served under /static/:
// style.css and app.js.
func Static() fs.FS {
	sub, err := fs.Sub(pageStaticFiles, "static")
	if err != nil {
		panic(err) // "static" is a fixed, embedded directory
	}
	return sub
}

// Render writes the page name ("phone", "code", "consent", "error", "index",
// "outbox", "demo") in locale to w. The page is rendered in full before
// anything is written, so on error w is untouched and the caller can still
// send an error page.
func Render(w io.Writer, name, locale string, p Page) error {
	sets, err := parsedPages()
	if err != nil {
		return err
	}
	locale = pageLocale(locale)
	tmpl, ok := sets[locale][name]
	if !ok {
		return fmt.Errorf("templates: unknown page %q", name)
	}
	if len(p.Outbox) > 1 {
		p.Outbox = slices.Clone(p.Outbox)
		slices.SortStableFunc(p.Outbox, func(a, b OutboxItem) int { return b.SentAt.Compare(a.SentAt) })
	}
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "layout", pageView{Page: p, Lang: locale, Name: name, Script: scriptedPages[name]}); err != nil {
		return fmt.Errorf("templates: render %s (%s): %w", name, locale, err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// parsedPages parses every page once per locale: the layout plus the page's
// own file, with t and msg bound to that locale.
var parsedPages = sync.OnceValues(func() (map[string]map[string]*template.Template, error) {
	sets := make(map[string]map[string]*template.Template, len(pageLocales))
	for _, loc := range pageLocales {
		sets[loc] = make(map[string]*template.Template, len(pageNames))
		for _, name := range pageNames {
			t, err := template.New(name).Funcs(pageFuncs(loc)).ParseFS(pageFiles,
				"pages/layout.html", path.Join("pages", name+".html"))
			if err != nil {
				return nil, fmt.Errorf("templates: parse page %s: %w", name, err)
			}
			sets[loc][name] = t
		}
	}
	return sets, nil
})

func pageFuncs(locale string) template.FuncMap {
	return template.FuncMap{
		"t": func(key string, args ...any) string { return T(locale, key, args...) },
		"msg": func(m *Message) string {
			if m == nil {
				return ""
			}
			return T(locale, m.Key, m.Args...)
		},
		// nobr keeps a short value such as a masked number on one line.
		"nobr": func(s string) string { return strings.ReplaceAll(s, " ", "\u00a0") },
		// scope describes a known scope and shows any other one as is.
		"scope": func(name string) string {
			if s, ok := pageCatalogs[locale]["scope."+name]; ok {
				return s
			}
			return name
		},
	}
}
