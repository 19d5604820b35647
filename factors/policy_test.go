package factors

import (
	"errors"
	"strings"
	"testing"
)

func TestPhonePolicy(t *testing.T) {
	fr := Phone{E164: "+33612345678", Region: "FR", CountryCode: 33}
	us := Phone{E164: "+12015550123", Region: "US", CountryCode: 1}
	tests := []struct {
		name   string
		policy PhonePolicy
		phone  Phone
		allow  bool
	}{
		{"empty policy allows all", PhonePolicy{}, us, true},
		{"allowed", PhonePolicy{Allowed: []string{"FR", "BE"}}, fr, true},
		{"allowed, any case", PhonePolicy{Allowed: []string{"fr"}}, fr, true},
		{"not in allowed", PhonePolicy{Allowed: []string{"FR"}}, us, false},
		{"denied", PhonePolicy{Denied: []string{"US"}}, us, false},
		{"denied, other region", PhonePolicy{Denied: []string{"US"}}, fr, true},
		{"denied wins over allowed", PhonePolicy{Allowed: []string{"FR"}, Denied: []string{"FR"}}, fr, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.phone)
			if tt.allow && err != nil {
				t.Errorf("Check(%s) = %v, want nil", tt.phone.Region, err)
			}
			if !tt.allow && !errors.Is(err, ErrRegionNotAllowed) {
				t.Errorf("Check(%s) = %v, want ErrRegionNotAllowed", tt.phone.Region, err)
			}
		})
	}
}

func TestPhonePolicyValidate(t *testing.T) {
	if err := (PhonePolicy{Allowed: []string{"FR", "be"}, Denied: []string{"US"}}).Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	err := PhonePolicy{Allowed: []string{"FR", "XX"}, Denied: []string{"France"}}.Validate()
	if err == nil {
		t.Fatal("Validate accepted unknown regions")
	}
	for _, want := range []string{`"XX"`, `"France"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not name %s", err, want)
		}
	}
}
