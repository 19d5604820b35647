package templates

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"text/template"
)

// DefaultSMSLocale is the language used when the requested one has no SMS text.
const DefaultSMSLocale = "en"

//go:embed sms/*.txt
var smsFiles embed.FS

// smsTemplates maps a language ("en") to its SMS text, parsed once at start-up.
var smsTemplates = mustParseSMS()

func mustParseSMS() map[string]*template.Template {
	names, err := fs.Glob(smsFiles, "sms/*.txt")
	if err != nil {
		panic(err)
	}
	m := make(map[string]*template.Template, len(names))
	for _, name := range names {
		b, err := smsFiles.ReadFile(name)
		if err != nil {
			panic(err)
		}
		lang := strings.TrimSuffix(path.Base(name), ".txt")
		// The file's final newline is not part of the message: the origin line
		// must be the very end of the SMS for WebOTP and one-time-code autofill.
		text := strings.TrimRight(string(b), "\r\n")
		m[lang] = template.Must(template.New(name).Option("missingkey=error").Parse(text))
	}
	if m[DefaultSMSLocale] == nil {
		panic("templates: missing sms/" + DefaultSMSLocale + ".txt")
	}
	return m
}

// SMSData fills an SMS text.
type SMSData struct {
	Code       string // the one-time code, digits
	Origin     string // the issuer's host (and port), e.g. "login.example.com"
	TTLMinutes int    // the code's lifetime in whole minutes
}

// SMS renders the one-time-code message in locale's language ("fr", "fr-FR",
// "fr_FR"), falling back to English. The message always ends with the
// origin-bound line "\n\n@<origin> #<code>".
func SMS(locale string, d SMSData) (string, error) {
	if d.Code == "" || strings.ContainsFunc(d.Code, breaksCodeLine) {
		return "", errors.New("templates: sms code must be non-empty, without spaces, '@' or '#'")
	}
	if d.Origin == "" || strings.ContainsFunc(d.Origin, breaksCodeLine) {
		return "", errors.New("templates: sms origin must be non-empty, without spaces, '@' or '#'")
	}
	if d.TTLMinutes < 1 {
		return "", errors.New("templates: sms lifetime must be at least one minute")
	}
	t := smsTemplates[smsLanguage(locale)]
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("templates: render sms %s: %w", t.Name(), err)
	}
	out := b.String()
	// A template edit must not silently break autofill: check the last line.
	if !strings.HasSuffix(out, "\n\n@"+d.Origin+" #"+d.Code) {
		return "", fmt.Errorf("templates: %s does not end with the origin-bound code line", t.Name())
	}
	return out, nil
}

// Locales lists the languages with an SMS text, sorted ("en", "fr").
func Locales() []string {
	langs := make([]string, 0, len(smsTemplates))
	for lang := range smsTemplates {
		langs = append(langs, lang)
	}
	slices.Sort(langs)
	return langs
}

// smsLanguage reduces a locale to the language of an SMS text, or the default.
func smsLanguage(locale string) string {
	lang, _, _ := strings.Cut(strings.TrimSpace(locale), "-")
	lang, _, _ = strings.Cut(lang, "_")
	lang = strings.ToLower(lang)
	if _, ok := smsTemplates[lang]; ok {
		return lang
	}
	return DefaultSMSLocale
}

// breaksCodeLine reports runes that would make "@origin #code" ambiguous.
func breaksCodeLine(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '#' || r == '@'
}
