package factors

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// maxPhoneInput bounds what is handed to the parser: no real number, even
// formatted with spaces and a tel: prefix, comes close.
const maxPhoneInput = 64

// Phone is a parsed, valid phone number.
type Phone struct {
	E164        string // "+33612345678"
	Region      string // ISO 3166-1 alpha-2 ("FR"), or "001" for non-geographic numbers
	CountryCode int    // calling code (33)
}

// ParsePhone parses what a user typed (national format such as "06 12 34 56 78"
// with defaultRegion "FR", international "+33 6 12 34 56 78", or an RFC 3966
// "tel:+33612345678" login hint) and returns the number if it is valid. Every
// failure wraps ErrInvalidPhone. The error never contains the input.
func ParsePhone(input, defaultRegion string) (Phone, error) {
	s := strings.TrimSpace(input)
	if len(s) >= 4 && strings.EqualFold(s[:4], "tel:") {
		s = s[4:]
	}
	if s == "" || len(s) > maxPhoneInput {
		return Phone{}, ErrInvalidPhone
	}
	num, err := parseNumber(s, strings.ToUpper(strings.TrimSpace(defaultRegion)))
	if err != nil {
		return Phone{}, fmt.Errorf("%w: %v", ErrInvalidPhone, err)
	}
	// An SMS cannot reach an extension; refusing it avoids a number that looks
	// verified but is not the one that received the code.
	if num.GetExtension() != "" {
		return Phone{}, fmt.Errorf("%w: extensions are not allowed", ErrInvalidPhone)
	}
	if !phonenumbers.IsValidNumber(num) {
		return Phone{}, fmt.Errorf("%w: not a valid number", ErrInvalidPhone)
	}
	return Phone{
		E164:        phonenumbers.Format(num, phonenumbers.E164),
		Region:      phonenumbers.GetRegionCodeForNumber(num),
		CountryCode: int(num.GetCountryCode()),
	}, nil
}

// parseNumber calls the parser and turns any panic it might raise on hostile
// input into an error: phone numbers come straight from users.
func parseNumber(s, region string) (num *phonenumbers.PhoneNumber, err error) {
	defer func() {
		if r := recover(); r != nil {
			num, err = nil, errors.New("unparsable number")
		}
	}()
	return phonenumbers.Parse(s, region)
}

// maskedJunk is what MaskPhone returns for anything it cannot parse.
const maskedJunk = "•••"

// MaskPhone returns an E.164 number in international format with every digit
// masked except the country code, the first national digit and the last two:
// "+33612345678" → "+33 6 •• •• •• 78". Short national numbers reveal less (only
// the last two digits below 7 digits, none below 5). Anything that is not a
// parsable E.164 number gives "•••". Use it wherever a number is shown or logged.
func MaskPhone(e164 string) string {
	s := strings.TrimSpace(e164)
	if !strings.HasPrefix(s, "+") || len(s) > maxPhoneInput {
		return maskedJunk
	}
	num, err := parseNumber(s, "")
	if err != nil || num == nil {
		return maskedJunk
	}
	num.Extension = nil
	formatted, ok := formatInternational(num)
	if !ok {
		return maskedJunk
	}
	ccDigits := len(strconv.Itoa(int(num.GetCountryCode())))
	total := 0
	for _, r := range formatted {
		if r >= '0' && r <= '9' {
			total++
		}
	}
	national := total - ccDigits
	keepFirst, keepLast := 1, 2
	switch {
	case national >= 7:
	case national >= 5:
		keepFirst = 0
	case national >= 1:
		keepFirst, keepLast = 0, 0
	default:
		return maskedJunk
	}
	var b strings.Builder
	i := 0
	for _, r := range formatted {
		if r < '0' || r > '9' {
			b.WriteRune(r)
			continue
		}
		if i < ccDigits+keepFirst || i >= total-keepLast {
			b.WriteRune(r)
		} else {
			b.WriteRune('•')
		}
		i++
	}
	return b.String()
}

func formatInternational(num *phonenumbers.PhoneNumber) (s string, ok bool) {
	defer func() {
		if recover() != nil {
			s, ok = "", false
		}
	}()
	s = phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
	return s, strings.HasPrefix(s, "+")
}

// PhonePolicy restricts which numbers may receive codes, by region (ISO 3166-1
// alpha-2 codes such as "FR", case-insensitive). Denied wins over Allowed; an
// empty Allowed list allows every region not denied.
type PhonePolicy struct {
	Allowed []string
	Denied  []string
}

// Check returns ErrRegionNotAllowed when the policy refuses p.
func (pp PhonePolicy) Check(p Phone) error {
	if containsRegion(pp.Denied, p.Region) {
		return fmt.Errorf("%w: %s", ErrRegionNotAllowed, p.Region)
	}
	if len(pp.Allowed) > 0 && !containsRegion(pp.Allowed, p.Region) {
		return fmt.Errorf("%w: %s", ErrRegionNotAllowed, p.Region)
	}
	return nil
}

// Validate reports every entry that is not a region the phone-number library
// knows, so a typo in the configuration is caught at start-up.
func (pp PhonePolicy) Validate() error {
	supported := phonenumbers.GetSupportedRegions()
	var errs []error
	for _, list := range []struct {
		name    string
		regions []string
	}{{"allowed", pp.Allowed}, {"denied", pp.Denied}} {
		for _, r := range list.regions {
			if !supported[strings.ToUpper(strings.TrimSpace(r))] {
				errs = append(errs, fmt.Errorf("phone policy: %s region %q is not an ISO 3166-1 alpha-2 code with phone numbers", list.name, r))
			}
		}
	}
	return errors.Join(errs...)
}

func containsRegion(list []string, region string) bool {
	return slices.ContainsFunc(list, func(r string) bool {
		return strings.EqualFold(strings.TrimSpace(r), region)
	})
}

// ExampleNumber returns an example mobile number of region in its national
// format ("06 12 34 56 78" for FR), to show users what to type; "" when the
// region is empty or unknown.
func ExampleNumber(region string) string {
	if region == "" {
		return ""
	}
	num := phonenumbers.GetExampleNumberForType(strings.ToUpper(region), phonenumbers.MOBILE)
	if num == nil {
		return ""
	}
	return phonenumbers.Format(num, phonenumbers.NATIONAL)
}
