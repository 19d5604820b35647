package config

import (
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// The factors the top-level factor key names.
var factorNames = []string{"smsotp", "orange"}

// OrangeOTPConfig is the orange_otp section, used when Factor is "orange":
// Orange's One Time Password Authentication API (challenge/v1) makes, texts
// and checks each code, and otpgate keeps its own lifetime, attempt and resend
// limits (sms.code_ttl, sms.max_attempts, sms.resend_cooldown,
// sms.max_resends) on top.
//
// The request shape of challenge/v1 is partly inferred: Service, PartnerID,
// Message, CodeLength and ValidateInfo are options so that what Orange
// confirms can be set without a new release.
type OrangeOTPConfig struct {
	// BaseURL is the API's base: Orange's, a regional one or a test server.
	BaseURL string `yaml:"base_url"`
	// ClientID and ClientSecret are the application's OAuth credentials.
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret" secret:"true"`
	// ClientSecretFile names a file holding ClientSecret.
	ClientSecretFile string `yaml:"client_secret_file"`
	// Service and PartnerID are the ids Orange assigns with API access.
	Service   string `yaml:"service"`
	PartnerID string `yaml:"partner_id"`
	// SenderName is the registered sender name shown on the SMS; empty uses
	// Orange's default.
	SenderName string `yaml:"sender_name"`
	// CodeLength is the number of digits Orange generates.
	CodeLength int `yaml:"code_length"`
	// Message is the SMS text with %OTP% where Orange puts the code; empty
	// uses otpgate's text in the user's language, ending with the
	// origin-bound line (@host #%OTP%).
	Message string `yaml:"message"`
	// ValidateInfo is the "info" input sent with each answer.
	ValidateInfo string `yaml:"validate_info"`
	// Timeout bounds each request to Orange.
	Timeout Duration `yaml:"timeout"`
}

// orangeOTPDefaults are the section's defaults (factors/orange's, repeated
// here: config imports no other otpgate package).
func orangeOTPDefaults() OrangeOTPConfig {
	return OrangeOTPConfig{
		BaseURL:      "https://api.orange.com",
		CodeLength:   6,
		ValidateInfo: "OrangeApiToken,ise2",
		Timeout:      seconds(10),
	}
}

// validateFactor checks the factor key and, when it is "orange", the
// orange_otp section. The section is left alone otherwise, so that an
// operator can keep it while trying the other factor.
func validateFactor(c Config, dev bool, errs *Errors) {
	if !oneOf(errs, "factor", c.Factor, factorNames) || c.Factor != "orange" {
		return
	}
	o := c.OrangeOTP
	const key = "orange_otp."
	if msg := apiURLProblem(o.BaseURL, dev); msg != "" {
		errs.add(key+"base_url", "%s", msg)
	}
	if o.ClientID == "" {
		errs.add(key+"client_id", "is required when 'factor' is 'orange': the application's client id from the Orange Developer console")
	}
	if o.ClientSecret == "" {
		errs.add(key+"client_secret", "is required when 'factor' is 'orange': set it or 'client_secret_file'")
	}
	if o.Service == "" {
		errs.add(key+"service", "is required when 'factor' is 'orange': the service id Orange assigns with API access")
	}
	if o.PartnerID == "" {
		errs.add(key+"partner_id", "is required when 'factor' is 'orange': the partner id Orange assigns with API access")
	}
	if n := utf8.RuneCountInString(o.SenderName); n > 11 {
		errs.add(key+"sender_name", "must be at most 11 characters, got %d", n)
	}
	between(errs, key+"code_length", o.CodeLength, 4, 8)
	if o.Message != "" {
		if !strings.Contains(o.Message, "%OTP%") {
			errs.add(key+"message", "must contain %%OTP%%, where Orange puts the code, got '%s'", o.Message)
		}
		if n := utf8.RuneCountInString(o.Message); n > 160 {
			errs.add(key+"message", "must be at most 160 characters (one SMS), got %d", n)
		}
	}
	between(errs, key+"timeout", o.Timeout, Duration(100*time.Millisecond), minutes(1))
}

// apiURLProblem says what is wrong with raw as the base URL of an API otpgate
// calls, or returns "": https outside --dev except for loopback hosts (a local
// test server), no credentials, no query.
func apiURLProblem(raw string, dev bool) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "is required, e.g. 'https://api.orange.com'"
	case err != nil || !u.IsAbs() || u.Host == "" || u.Scheme != "https" && u.Scheme != "http":
		return "must be an absolute http(s) URL like 'https://api.orange.com', got '" + raw + "'"
	case u.Scheme == "http" && !dev && !isLoopback(u.Hostname()):
		return "must use https outside --dev (http is allowed only for localhost and loopback addresses), got '" + raw + "'"
	case u.User != nil:
		return "must not contain a user name or password" // do not echo it
	case u.RawQuery != "" || u.Fragment != "":
		return "must not have a query or a fragment, got '" + raw + "'"
	}
	return ""
}
