package templates

import (
	"slices"
	"strings"
	"testing"
)

func TestSMS(t *testing.T) {
	d := SMSData{Code: "123456", Origin: "localhost:8080", TTLMinutes: 5}
	tests := []struct {
		locale string
		want   string
	}{
		{"en", "123456 is your otpgate sign-in code. It expires in 5 minutes.\n\n@localhost:8080 #123456"},
		{"fr", "123456 est votre code de connexion otpgate. Il expire dans 5 minutes.\n\n@localhost:8080 #123456"},
		{"fr-FR", "123456 est votre code de connexion otpgate. Il expire dans 5 minutes.\n\n@localhost:8080 #123456"},
		{"FR_ca", "123456 est votre code de connexion otpgate. Il expire dans 5 minutes.\n\n@localhost:8080 #123456"},
		{"en-GB", "123456 is your otpgate sign-in code. It expires in 5 minutes.\n\n@localhost:8080 #123456"},
		{"de", "123456 is your otpgate sign-in code. It expires in 5 minutes.\n\n@localhost:8080 #123456"},
		{"", "123456 is your otpgate sign-in code. It expires in 5 minutes.\n\n@localhost:8080 #123456"},
	}
	for _, tt := range tests {
		got, err := SMS(tt.locale, d)
		if err != nil {
			t.Fatalf("SMS(%q): %v", tt.locale, err)
		}
		if got != tt.want {
			t.Errorf("SMS(%q) =\n%q\nwant\n%q", tt.locale, got, tt.want)
		}
	}
}

func TestSMSEndsWithOriginLineInEveryLanguage(t *testing.T) {
	d := SMSData{Code: "0042", Origin: "login.example.com", TTLMinutes: 10}
	for _, lang := range Locales() {
		got, err := SMS(lang, d)
		if err != nil {
			t.Fatalf("SMS(%q): %v", lang, err)
		}
		if !strings.HasSuffix(got, "\n\n@login.example.com #0042") {
			t.Errorf("SMS(%q) = %q: does not end with the origin-bound line", lang, got)
		}
		if strings.Count(got, "\n") != 2 {
			t.Errorf("SMS(%q) = %q: want exactly one blank line before the origin line", lang, got)
		}
		if !strings.HasPrefix(got, "0042 ") {
			t.Errorf("SMS(%q) = %q: want the code first, for notification previews", lang, got)
		}
	}
}

func TestSMSSingularMinute(t *testing.T) {
	d := SMSData{Code: "123456", Origin: "localhost:8080", TTLMinutes: 1}
	for lang, want := range map[string]string{"en": "expires in 1 minute.", "fr": "expire dans 1 minute."} {
		got, err := SMS(lang, d)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, want) {
			t.Errorf("SMS(%q) = %q, want it to contain %q", lang, got, want)
		}
	}
}

func TestSMSRejectsDataThatBreaksTheOriginLine(t *testing.T) {
	for _, d := range []SMSData{
		{Code: "", Origin: "localhost", TTLMinutes: 5},
		{Code: "12 34", Origin: "localhost", TTLMinutes: 5},
		{Code: "1234", Origin: "", TTLMinutes: 5},
		{Code: "1234", Origin: "evil.example #9999\n\n@localhost", TTLMinutes: 5},
		{Code: "1234", Origin: "a@b", TTLMinutes: 5},
		{Code: "1234", Origin: "localhost", TTLMinutes: 0},
	} {
		if got, err := SMS("en", d); err == nil {
			t.Errorf("SMS(%+v) = %q, want an error", d, got)
		}
	}
}

func TestLocales(t *testing.T) {
	got := Locales()
	if !slices.Equal(got, []string{"en", "fr"}) {
		t.Fatalf("Locales() = %q, want [en fr]", got)
	}
	got[0] = "xx"
	if Locales()[0] != "en" {
		t.Error("Locales() exposes internal state")
	}
}
