package config

import (
	"fmt"
	"net"

	"github.com/nyaruka/phonenumbers"
)

// HTTPConfig is the http section: how the public listener meets the network.
type HTTPConfig struct {
	// TrustedProxies are the addresses or CIDR ranges of the reverse proxies
	// in front of otpgate. X-Forwarded-For and X-Real-IP are believed only
	// from them; empty believes nobody, and the per-IP limits count the TCP
	// peer's address.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MaxBodyBytes bounds a request body on the public listener.
	MaxBodyBytes int `yaml:"max_body_bytes"`
}

// LimitConfig is one limit: at most Count events in any Window-long
// interval. A Count of 0 turns it off.
type LimitConfig struct {
	Count  int      `yaml:"count"`
	Window Duration `yaml:"window"`
}

// LimitsConfig is the limits section: the abuse limits in front of the
// factor (factors/guard), counted in the store so they hold across instances.
type LimitsConfig struct {
	// Enabled turns the limits and the breaker on; phone.number_types apply
	// either way. --dev default: false (a load test comes from one address).
	Enabled      bool        `yaml:"enabled"`
	IP           LimitConfig `yaml:"ip"`            // codes sent per client IP (IPv6: per /64)
	Phone        LimitConfig `yaml:"phone"`         // codes sent per phone number
	PhoneDaily   LimitConfig `yaml:"phone_daily"`   // the same over a longer window
	Prefix       LimitConfig `yaml:"prefix"`        // per number minus its last 4 digits
	Client       LimitConfig `yaml:"client"`        // per OAuth client
	Country      LimitConfig `yaml:"country"`       // per country calling code
	ClientBudget LimitConfig `yaml:"client_budget"` // SMS budget per OAuth client
	Budget       LimitConfig `yaml:"budget"`        // SMS budget of the service
	Attempts     LimitConfig `yaml:"attempts"`      // wrong answers per phone number
	// Breaker stops SMS to a region whose codes are not being used.
	Breaker PumpingBreakerConfig `yaml:"breaker"`
}

// PumpingBreakerConfig is limits.breaker: when over Window at least MinSends
// codes went to a region and fewer than MinConversionPercent of them were
// answered right, SMS to that region stop for Cooldown.
type PumpingBreakerConfig struct {
	Window               Duration `yaml:"window"`
	MinSends             int      `yaml:"min_sends"`
	MinConversionPercent int      `yaml:"min_conversion_percent"` // 0 turns the breaker off
	Cooldown             Duration `yaml:"cooldown"`
	// ExemptRegions are never stopped (ISO 3166-1 alpha-2): your home market,
	// where an SMS provider outage would otherwise look like pumping.
	ExemptRegions []string `yaml:"exempt_regions"`
}

// numberTypes are the values of phone.number_types: factors/guard's names
// for libphonenumber's types.
var numberTypes = []string{
	"mobile", "fixed_line_or_mobile", "fixed_line", "voip", "toll_free", "premium_rate",
	"shared_cost", "personal_number", "pager", "uan", "voicemail", "unknown",
}

// defaultNumberTypes can receive an SMS and are not where pumping pays.
func defaultNumberTypes() []string { return []string{"mobile", "fixed_line_or_mobile"} }

const defaultMaxBodyBytes = 64 << 10

func limitsDefaults(dev bool) LimitsConfig {
	return LimitsConfig{
		Enabled:      !dev,
		IP:           LimitConfig{10, minutes(10)},
		Phone:        LimitConfig{3, minutes(10)},
		PhoneDaily:   LimitConfig{10, hours(24)},
		Prefix:       LimitConfig{20, hours(1)},
		Client:       LimitConfig{1000, hours(1)},
		Country:      LimitConfig{1000, hours(1)},
		ClientBudget: LimitConfig{5000, hours(24)},
		Budget:       LimitConfig{10000, hours(24)},
		Attempts:     LimitConfig{10, hours(1)},
		Breaker: PumpingBreakerConfig{
			Window:               hours(1),
			MinSends:             20,
			MinConversionPercent: 20,
			Cooldown:             hours(1),
		},
	}
}

func validateHTTP(c Config, _ bool, errs *Errors) {
	for i, p := range c.HTTP.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			errs.add(fmt.Sprintf("http.trusted_proxies[%d]", i), "must be an IP address or a CIDR range like '10.0.0.0/8', got '%s'", p)
		}
	}
	between(errs, "http.max_body_bytes", c.HTTP.MaxBodyBytes, 1024, 10<<20)
}

func validateLimits(c Config, _ bool, errs *Errors) {
	for i, t := range c.Phone.NumberTypes {
		oneOf(errs, fmt.Sprintf("phone.number_types[%d]", i), t, numberTypes)
	}
	if c.Phone.NumberTypes != nil && len(c.Phone.NumberTypes) == 0 {
		errs.add("phone.number_types", "must not be empty: it would refuse every number; the default is [mobile, fixed_line_or_mobile]")
	}
	l := c.Limits
	for _, nl := range []struct {
		name  string
		limit LimitConfig
	}{
		{"ip", l.IP}, {"phone", l.Phone}, {"phone_daily", l.PhoneDaily}, {"prefix", l.Prefix},
		{"client", l.Client}, {"country", l.Country}, {"client_budget", l.ClientBudget},
		{"budget", l.Budget}, {"attempts", l.Attempts},
	} {
		key := "limits." + nl.name
		between(errs, key+".count", nl.limit.Count, 0, 100_000_000)
		if nl.limit.Count > 0 {
			between(errs, key+".window", nl.limit.Window, seconds(1), hours(744))
		}
	}
	b := l.Breaker
	between(errs, "limits.breaker.min_conversion_percent", b.MinConversionPercent, 0, 99)
	if b.MinConversionPercent > 0 {
		between(errs, "limits.breaker.window", b.Window, minutes(1), hours(168))
		between(errs, "limits.breaker.cooldown", b.Cooldown, minutes(1), hours(168))
		between(errs, "limits.breaker.min_sends", b.MinSends, 1, 1_000_000)
	}
	supported := phonenumbers.GetSupportedRegions()
	for i, r := range b.ExemptRegions {
		if !supported[r] {
			errs.add(fmt.Sprintf("limits.breaker.exempt_regions[%d]", i), "must be an ISO 3166-1 alpha-2 region code that has phone numbers, like 'FR', got '%s'", r)
		}
	}
}
