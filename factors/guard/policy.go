package guard

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// Names of the limits, as LimitError.Reason carries them to logs and metrics.
const (
	ReasonNumberType   = "number_type"   // the number's type is refused (a policy, not a limit)
	ReasonIP           = "ip"            // sends per client IP (IPv6: per /64)
	ReasonPhone        = "phone"         // sends per phone number, short window
	ReasonPhoneDaily   = "phone_daily"   // sends per phone number, long window
	ReasonPrefix       = "prefix"        // sends per number prefix (the number minus its last 4 digits)
	ReasonClient       = "client"        // sends per OAuth client
	ReasonCountry      = "country"       // sends per country calling code
	ReasonClientBudget = "client_budget" // the SMS budget of one OAuth client
	ReasonBudget       = "budget"        // the SMS budget of the whole service
	ReasonBreaker      = "breaker"       // the pumping breaker of the number's region is open
	ReasonAttempts     = "attempts"      // wrong answers per phone number, across challenges
)

// Limit allows at most Count events in any Window-long interval (a sliding
// window). A Count of 0 turns the limit off.
type Limit struct {
	Count  int
	Window time.Duration
}

func (l Limit) on() bool { return l.Count > 0 }

// String reads "3/10m0s", or "off".
func (l Limit) String() string {
	if !l.on() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", l.Count, l.Window)
}

// Limits are counted in the store, so they hold across instances. The send
// limits are checked, in the order of the fields, before every SMS (first
// code and resends); Attempts before every answer.
type Limits struct {
	IP           Limit // per client IP; IPv6 addresses count per /64
	Phone        Limit // per phone number
	PhoneDaily   Limit // per phone number, over a longer window
	Prefix       Limit // per number prefix: the number minus its last 4 digits
	Client       Limit // per OAuth client
	Country      Limit // per country calling code
	ClientBudget Limit // SMS budget per OAuth client: refusals are logged as errors
	Budget       Limit // SMS budget of the service: refusals are logged as errors
	Attempts     Limit // wrong answers per phone number, across challenges
}

// Breaker stops SMS to a region whose traffic does not convert: when, over
// Window, at least MinSends codes went to the region and fewer than
// MinConversion of them were answered correctly, sending there stops for
// Cooldown; then the counts start again from zero. Regions are ISO 3166-1
// codes ("JM", "001" for non-geographic numbers), finer than calling codes:
// pumped Caribbean numbers do not stop the rest of +1.
type Breaker struct {
	Window        time.Duration
	MinSends      int
	MinConversion float64 // 0 to 1; 0 turns the breaker off
	Cooldown      time.Duration
	Exempt        []string // regions the breaker never stops (your home market)
}

func (b Breaker) on() bool { return b.MinConversion > 0 }

// Policy is what the guard enforces.
type Policy struct {
	// NumberTypes are the phone number types that may receive codes, by the
	// names in NumberTypeNames; nil means DefaultNumberTypes.
	NumberTypes []string
	Limits      Limits
	Breaker     Breaker
}

// DefaultNumberTypes are the types served by default: numbers that can
// receive an SMS. Fixed lines mostly cannot; premium-rate, shared-cost, UAN,
// personal and pager numbers are where SMS pumping earns money; VoIP ranges
// are refused because numbers there are disposable and often cannot receive
// SMS either (allow "voip" where your users rely on it).
var DefaultNumberTypes = []string{"mobile", "fixed_line_or_mobile"}

// numberTypes maps the names used in configuration to the library's types.
var numberTypes = map[string]phonenumbers.PhoneNumberType{
	"fixed_line":           phonenumbers.FIXED_LINE,
	"mobile":               phonenumbers.MOBILE,
	"fixed_line_or_mobile": phonenumbers.FIXED_LINE_OR_MOBILE,
	"toll_free":            phonenumbers.TOLL_FREE,
	"premium_rate":         phonenumbers.PREMIUM_RATE,
	"shared_cost":          phonenumbers.SHARED_COST,
	"voip":                 phonenumbers.VOIP,
	"personal_number":      phonenumbers.PERSONAL_NUMBER,
	"pager":                phonenumbers.PAGER,
	"uan":                  phonenumbers.UAN,
	"voicemail":            phonenumbers.VOICEMAIL,
	"unknown":              phonenumbers.UNKNOWN,
}

// NumberTypeNames lists every name NumberTypes accepts, sorted.
func NumberTypeNames() []string {
	names := make([]string, 0, len(numberTypes))
	for n := range numberTypes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// DefaultPolicy returns the defaults, chosen for a service of up to some
// thousands of logins a day (docs/security.md says why each one).
func DefaultPolicy() Policy {
	return Policy{
		NumberTypes: slices.Clone(DefaultNumberTypes),
		Limits: Limits{
			IP:           Limit{10, 10 * time.Minute},
			Phone:        Limit{3, 10 * time.Minute},
			PhoneDaily:   Limit{10, 24 * time.Hour},
			Prefix:       Limit{20, time.Hour},
			Client:       Limit{1000, time.Hour},
			Country:      Limit{1000, time.Hour},
			ClientBudget: Limit{5000, 24 * time.Hour},
			Budget:       Limit{10000, 24 * time.Hour},
			Attempts:     Limit{10, time.Hour},
		},
		Breaker: Breaker{
			Window:        time.Hour,
			MinSends:      20,
			MinConversion: 0.2,
			Cooldown:      time.Hour,
		},
	}
}

// namedLimit is a limit with its name.
type namedLimit struct {
	name  string
	limit Limit
}

// sends lists the send limits in checking order: the ones an attacker's
// own resources exhaust first, the shared budgets last, so that a send
// refused early does not touch them.
func (l Limits) sends() []namedLimit {
	return []namedLimit{
		{ReasonIP, l.IP}, {ReasonPhone, l.Phone}, {ReasonPhoneDaily, l.PhoneDaily},
		{ReasonPrefix, l.Prefix}, {ReasonClient, l.Client}, {ReasonCountry, l.Country},
		{ReasonClientBudget, l.ClientBudget}, {ReasonBudget, l.Budget},
	}
}

// Validate reports every invalid setting at once.
func (p Policy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("guard: "+format, args...)) }
	for _, t := range p.NumberTypes {
		if _, ok := numberTypes[strings.ToLower(strings.TrimSpace(t))]; !ok {
			bad("number type %q is not one of %s", t, strings.Join(NumberTypeNames(), ", "))
		}
	}
	if p.NumberTypes != nil && len(p.NumberTypes) == 0 {
		bad("number types: an empty list would refuse every number")
	}
	for _, nl := range append(p.Limits.sends(), namedLimit{ReasonAttempts, p.Limits.Attempts}) {
		switch l := nl.limit; {
		case l.Count < 0:
			bad("limit %s: count must not be negative, got %d", nl.name, l.Count)
		case l.on() && (l.Window < time.Second || l.Window > 31*24*time.Hour):
			bad("limit %s: window must be between 1s and 744h, got %s", nl.name, l.Window)
		}
	}
	b := p.Breaker
	if b.MinConversion < 0 || b.MinConversion >= 1 {
		bad("breaker: min conversion must be at least 0 and below 1, got %v", b.MinConversion)
	}
	if b.on() {
		if b.Window < time.Minute || b.Window > 7*24*time.Hour {
			bad("breaker: window must be between 1m and 168h, got %s", b.Window)
		}
		if b.Cooldown < time.Minute || b.Cooldown > 7*24*time.Hour {
			bad("breaker: cooldown must be between 1m and 168h, got %s", b.Cooldown)
		}
		if b.MinSends < 1 {
			bad("breaker: min sends must be at least 1, got %d", b.MinSends)
		}
	}
	supported := phonenumbers.GetSupportedRegions()
	for _, r := range b.Exempt {
		if r = strings.ToUpper(strings.TrimSpace(r)); !supported[r] && r != "001" {
			bad("breaker: exempt region %q is not an ISO 3166-1 alpha-2 code with phone numbers", r)
		}
	}
	return errors.Join(errs...)
}
