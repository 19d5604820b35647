package factors

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// digitRun finds what would identify a typed number in an error message.
var digitRun = regexp.MustCompile(`[0-9]{5,}`)

// FuzzParsePhone feeds ParsePhone what users and relying parties can send:
// it must never panic, every failure must be ErrInvalidPhone without the
// input's digits, and every success a valid, stable E.164 number. The seed
// corpus is in testdata/fuzz/FuzzParsePhone.
func FuzzParsePhone(f *testing.F) {
	for _, seed := range []struct{ input, region string }{
		{"06 12 34 56 78", "FR"}, {"+33612345678", ""}, {"tel:+33612345678;ext=1", ""},
		{"(201) 555-0123", "US"}, {"+800 1234 5678", ""}, {"0033 6 12 34 56 78", "FR"},
	} {
		f.Add(seed.input, seed.region)
	}
	f.Fuzz(func(t *testing.T, input, region string) {
		p, err := ParsePhone(input, region)
		if err != nil {
			if !errors.Is(err, ErrInvalidPhone) {
				t.Fatalf("ParsePhone(%q, %q): %v, not ErrInvalidPhone", input, region, err)
			}
			if p != (Phone{}) {
				t.Fatalf("ParsePhone(%q) returned %+v with an error", input, p)
			}
			for _, run := range digitRun.FindAllString(input, -1) {
				if strings.Contains(err.Error(), run) {
					t.Fatalf("error %q repeats the input's digits %s", err, run)
				}
			}
			return
		}
		if !strings.HasPrefix(p.E164, "+") || len(p.E164) > 16 || p.CountryCode <= 0 || p.Region == "" {
			t.Fatalf("ParsePhone(%q, %q) = %+v: not an E.164 number", input, region, p)
		}
		for _, r := range p.E164[1:] {
			if r < '0' || r > '9' {
				t.Fatalf("E.164 %q has a non-digit", p.E164)
			}
		}
		// Stable: the E.164 form parses to itself, from any default region.
		again, err := ParsePhone(p.E164, "")
		if err != nil || again != p {
			t.Fatalf("ParsePhone(%q) = %+v, %v; first parse of %q gave %+v", p.E164, again, err, input, p)
		}
		masked := MaskPhone(p.E164)
		if !utf8.ValidString(masked) || masked == maskedJunk || strings.Contains(masked, p.E164[len(p.E164)-6:]) {
			t.Fatalf("MaskPhone(%q) = %q", p.E164, masked)
		}
	})
}
