package factors

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParsePhone(t *testing.T) {
	tests := []struct {
		name, input, region string
		want                Phone
		wantErr             bool
	}{
		{name: "FR national", input: "06 12 34 56 78", region: "FR", want: Phone{"+33612345678", "FR", 33}},
		{name: "FR national, lower-case region", input: "0612345678", region: "fr", want: Phone{"+33612345678", "FR", 33}},
		{name: "international", input: "+33612345678", region: "", want: Phone{"+33612345678", "FR", 33}},
		{name: "international with spaces", input: " +33 6 12 34 56 78 ", region: "US", want: Phone{"+33612345678", "FR", 33}},
		{name: "international with 00 prefix", input: "0033 6 12 34 56 78", region: "FR", want: Phone{"+33612345678", "FR", 33}},
		{name: "tel URI", input: "tel:+33612345678", region: "", want: Phone{"+33612345678", "FR", 33}},
		{name: "tel URI upper case", input: "TEL:+33612345678", region: "", want: Phone{"+33612345678", "FR", 33}},
		{name: "US", input: "(201) 555-0123", region: "US", want: Phone{"+12015550123", "US", 1}},
		{name: "GB mobile", input: "07400 123456", region: "GB", want: Phone{"+447400123456", "GB", 44}},
		{name: "non-geographic", input: "+800 1234 5678", region: "", want: Phone{"+80012345678", "001", 800}},
		{name: "garbage", input: "hello", region: "FR", wantErr: true},
		{name: "empty", input: "", region: "FR", wantErr: true},
		{name: "tel: only", input: "tel:", region: "FR", wantErr: true},
		{name: "too short", input: "0612", region: "FR", wantErr: true},
		{name: "too long", input: "+336123456789012", region: "", wantErr: true},
		{name: "national without region", input: "0612345678", region: "", wantErr: true},
		{name: "invalid FR number", input: "+33012345678", region: "", wantErr: true},
		{name: "extension", input: "tel:+33612345678;ext=12", region: "", wantErr: true},
		{name: "huge input", input: "+33" + strings.Repeat("6", 10000), region: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePhone(tt.input, tt.region)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidPhone) {
					t.Fatalf("ParsePhone(%q, %q) = %+v, %v; want ErrInvalidPhone", tt.input, tt.region, got, err)
				}
				if got != (Phone{}) {
					t.Errorf("ParsePhone(%q) returned %+v with an error", tt.input, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePhone(%q, %q): %v", tt.input, tt.region, err)
			}
			if got != tt.want {
				t.Errorf("ParsePhone(%q, %q) = %+v, want %+v", tt.input, tt.region, got, tt.want)
			}
		})
	}
}

func TestParsePhoneErrorDoesNotEchoInput(t *testing.T) {
	_, err := ParsePhone("0612", "FR")
	if err == nil || strings.Contains(err.Error(), "0612") {
		t.Fatalf("error %v: want an error without the input", err)
	}
}

func TestMaskPhone(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"FR", "+33612345678", "+33 6 •• •• •• 78"},
		{"US", "+12015550123", "+1 2••-•••-••23"},
		{"GB", "+447400123456", "+44 7••• ••••56"},
		{"DE", "+4915123456789", "+49 1••• •••••89"},
		{"IT keeps its leading zero", "+390612345678", "+39 0• •••• ••78"},
		{"short national number reveals only the end", "+29022345", "+290 •••45"},
		{"very short national number reveals nothing", "+6831234", "+683 ••••"},
		{"formatted input", "+33 6 12 34 56 78", "+33 6 •• •• •• 78"},
		{"empty", "", "•••"},
		{"plus only", "+", "•••"},
		{"letters", "abc", "•••"},
		{"no plus", "33612345678", "•••"},
		{"unknown country code", "+99912345678", "•••"},
		{"country code only", "+1", "•••"},
		{"huge", "+" + strings.Repeat("9", 5000), "•••"},
		{"control bytes", "+33\x00\xff612345678", "•••"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskPhone(tt.in); got != tt.want {
				t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// Whatever the country, a masked number shows at most the country code and
// three national digits.
func TestMaskPhoneHidesMostDigits(t *testing.T) {
	for _, e164 := range []string{"+33612345678", "+12015550123", "+447400123456", "+819012345678", "+5491123456789", "+8613812345678", "+27821234567", "+919876543210"} {
		p, err := ParsePhone(e164, "")
		if err != nil {
			t.Fatalf("ParsePhone(%q): %v", e164, err)
		}
		masked := MaskPhone(e164)
		shown := 0
		for _, r := range masked {
			if r >= '0' && r <= '9' {
				shown++
			}
		}
		cc := strconv.Itoa(p.CountryCode)
		if shown > len(cc)+3 || strings.Count(masked, "•") < 4 {
			t.Errorf("MaskPhone(%q) = %q: shows %d digits", e164, masked, shown)
		}
		if !strings.HasPrefix(masked, "+"+cc+" ") {
			t.Errorf("MaskPhone(%q) = %q: want the country code first", e164, masked)
		}
		if !strings.HasSuffix(masked, e164[len(e164)-2:]) {
			t.Errorf("MaskPhone(%q) = %q: want the last two digits", e164, masked)
		}
	}
}

func TestExampleNumber(t *testing.T) {
	for region, want := range map[string]string{"FR": "06 12 34 56 78", "fr": "06 12 34 56 78", "": "", "ZZ": ""} {
		if got := ExampleNumber(region); got != want {
			t.Errorf("ExampleNumber(%q) = %q, want %q", region, got, want)
		}
	}
	// The example must parse back in its own region, or the hint would lie.
	if _, err := ParsePhone(ExampleNumber("GB"), "GB"); err != nil {
		t.Errorf("the GB example does not parse: %v", err)
	}
}
