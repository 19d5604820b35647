package config

import (
	"slices"
	"testing"
)

func TestLimits(t *testing.T) {
	if d := Defaults(true).Limits; d.Enabled {
		t.Error("--dev enables the limits: a load test from one address would be refused")
	}
	if d := Defaults(false); !d.Limits.Enabled || d.Limits.Phone != (LimitConfig{3, minutes(10)}) ||
		!slices.Equal(d.Phone.NumberTypes, []string{"mobile", "fixed_line_or_mobile"}) || d.HTTP.MaxBodyBytes != 65536 || d.HTTP.TrustedProxies != nil {
		t.Errorf("production defaults: %+v %+v %+v", d.Limits, d.Phone, d.HTTP)
	}

	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, c Config)
		want  []string
	}{
		{name: "from the file",
			yaml: "limits:\n  enabled: true\n  phone: {count: 5, window: 1h}\n  breaker:\n    exempt_regions: [fr, BE]\nphone:\n  number_types: [mobile, fixed_line]\nhttp:\n  trusted_proxies: [10.0.0.0/8, 192.0.2.1]\n",
			check: func(t *testing.T, c Config) {
				if !c.Limits.Enabled || c.Limits.Phone != (LimitConfig{5, hours(1)}) || c.Limits.PhoneDaily != (LimitConfig{10, hours(24)}) ||
					!slices.Equal(c.Limits.Breaker.ExemptRegions, []string{"FR", "BE"}) ||
					!slices.Equal(c.Phone.NumberTypes, []string{"mobile", "fixed_line"}) ||
					!slices.Equal(c.HTTP.TrustedProxies, []string{"10.0.0.0/8", "192.0.2.1"}) {
					t.Errorf("%+v %+v %+v", c.Limits, c.Phone, c.HTTP)
				}
			}},
		{name: "from the environment",
			env: map[string]string{"OTPGATE_LIMITS_IP_COUNT": "0", "OTPGATE_LIMITS_BUDGET_WINDOW": "168h",
				"OTPGATE_LIMITS_BREAKER_MIN_CONVERSION_PERCENT": "35", "OTPGATE_HTTP_TRUSTED_PROXIES": "10.1.0.0/16, ::1",
				"OTPGATE_PHONE_NUMBER_TYPES": "mobile"},
			check: func(t *testing.T, c Config) {
				if c.Limits.IP.Count != 0 || c.Limits.Budget.Window != hours(168) || c.Limits.Breaker.MinConversionPercent != 35 ||
					!slices.Equal(c.HTTP.TrustedProxies, []string{"10.1.0.0/16", "::1"}) || !slices.Equal(c.Phone.NumberTypes, []string{"mobile"}) {
					t.Errorf("%+v %+v %+v", c.Limits, c.Phone, c.HTTP)
				}
			}},
		{name: "a limit turned off needs no window", yaml: "limits:\n  prefix: {count: 0, window: 0s}\n"},
		{name: "a breaker turned off needs no window", yaml: "limits:\n  breaker: {min_conversion_percent: 0, window: 0s, cooldown: 0s, min_sends: 0}\n"},
		{name: "problems",
			yaml: "limits:\n  phone: {count: -1}\n  attempts: {count: 5, window: 500ms}\n  breaker:\n    min_conversion_percent: 100\n    exempt_regions: [XX]\n" +
				"phone:\n  number_types: [mobile, satellite]\nhttp:\n  trusted_proxies: [lb.internal]\n  max_body_bytes: 10\n",
			want: []string{
				"http: option 'trusted_proxies[0]' must be an IP address or a CIDR range like '10.0.0.0/8', got 'lb.internal'",
				"http: option 'max_body_bytes' must be between 1024 and 10485760, got '10'",
				"phone: option 'number_types[1]' must be one of 'mobile', 'fixed_line_or_mobile', 'fixed_line', 'voip', 'toll_free', 'premium_rate', 'shared_cost', 'personal_number', 'pager', 'uan', 'voicemail', 'unknown', got 'satellite'",
				"limits.phone: option 'count' must be between 0 and 100000000, got '-1'",
				"limits.attempts: option 'window' must be between 1s and 744h, got '500ms'",
				"limits.breaker: option 'min_conversion_percent' must be between 0 and 99, got '100'",
				"limits.breaker: option 'exempt_regions[0]' must be an ISO 3166-1 alpha-2 region code that has phone numbers, like 'FR', got 'XX'",
			}},
		{name: "no number type", yaml: "phone:\n  number_types: []\n", want: []string{
			"phone: option 'number_types' must not be empty: it would refuse every number; the default is [mobile, fixed_line_or_mobile]",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = writeFile(t, "otpgate.yaml", tt.yaml)
			}
			c, err := Load(path, true, env(tt.env))
			wantProblems(t, err, tt.want...)
			if err == nil && tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}
