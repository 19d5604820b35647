package config

import (
	"strings"
	"testing"
)

const orangeFactor = `
issuer: https://id.example.com
system_secret: ` + testSecret + `
factor: orange
orange_otp:
  client_id: otp-app
  client_secret: otp-hunter2
  service: svc-123
  partner_id: partner-456
  sender_name: EXAMPLE
  message: "%OTP% is your Example code"
`

func TestOrangeFactorLoads(t *testing.T) {
	// No sms.providers: Orange texts the codes itself.
	c, err := Load(writeFile(t, "otpgate.yaml", orangeFactor), false, env(map[string]string{
		"OTPGATE_ORANGE_OTP_CODE_LENGTH": "8",
		"OTPGATE_ORANGE_OTP_TIMEOUT":     "3s",
		"OTPGATE_ORANGE_OTP_BASE_URL":    "https://api.orange.example",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := OrangeOTPConfig{
		BaseURL: "https://api.orange.example", ClientID: "otp-app", ClientSecret: "otp-hunter2",
		Service: "svc-123", PartnerID: "partner-456", SenderName: "EXAMPLE", CodeLength: 8,
		Message: "%OTP% is your Example code", ValidateInfo: "OrangeApiToken,ise2", Timeout: seconds(3),
	}
	if c.Factor != "orange" || c.OrangeOTP != want {
		t.Errorf("factor %q, orange_otp %+v\nwant orange, %+v", c.Factor, c.OrangeOTP, want)
	}
	if s := c.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "client_secret: REDACTED") {
		t.Errorf("Config.String() does not redact orange_otp.client_secret:\n%s", s)
	}

	secret := writeFile(t, "orange-secret", "file-hunter2\n")
	c, err = Load(writeFile(t, "otpgate.yaml", strings.Replace(orangeFactor, "client_secret: otp-hunter2", "client_secret_file: "+secret, 1)), false, nil)
	if err != nil || c.OrangeOTP.ClientSecret != "file-hunter2" {
		t.Errorf("client_secret_file: secret %q, %v", c.OrangeOTP.ClientSecret, err)
	}

	// The default stays smsotp, which still needs someone to send its SMS.
	c, err = Load("", true, nil)
	if err != nil || c.Factor != "smsotp" || c.OrangeOTP != orangeOTPDefaults() {
		t.Errorf("dev defaults: factor %q, orange_otp %+v, %v", c.Factor, c.OrangeOTP, err)
	}
	_, err = Load(writeFile(t, "otpgate.yaml", "issuer: https://id.example.com\nsystem_secret: "+testSecret+"\n"), false, nil)
	if err == nil || !strings.Contains(err.Error(), "sms: option 'providers' is required outside --dev") {
		t.Errorf("smsotp without providers: %v, want sms.providers required", err)
	}
}

func TestOrangeFactorProblems(t *testing.T) {
	base := "issuer: https://id.example.com\nsystem_secret: " + testSecret + "\n"
	long := strings.Repeat("x", 157) + "%OTP%"
	tests := []struct {
		name string
		dev  bool
		yaml string
		want []string
	}{
		{"unknown factor", false, "sms: {sender: outbox}\nfactor: twilio-verify\n", []string{
			"option 'factor' must be one of 'smsotp', 'orange', got 'twilio-verify'",
		}},
		{"orange without its options", false, "factor: orange\norange_otp:\n  base_url: ''\n  code_length: 0\n  timeout: 0s\n", []string{
			"orange_otp: option 'base_url' is required, e.g. 'https://api.orange.com'",
			"orange_otp: option 'client_id' is required when 'factor' is 'orange': the application's client id from the Orange Developer console",
			"orange_otp: option 'client_secret' is required when 'factor' is 'orange': set it or 'client_secret_file'",
			"orange_otp: option 'service' is required when 'factor' is 'orange': the service id Orange assigns with API access",
			"orange_otp: option 'partner_id' is required when 'factor' is 'orange': the partner id Orange assigns with API access",
			"orange_otp: option 'code_length' must be between 4 and 8, got '0'",
			"orange_otp: option 'timeout' must be between 100ms and 1m, got '0s'",
		}},
		{"orange with bad values", false, `factor: orange
orange_otp:
  base_url: http://api.orange.com
  client_id: a
  client_secret: b
  service: c
  partner_id: d
  sender_name: MUCH-TOO-LONG
  code_length: 9
  message: "Your code is OTP"
  timeout: 2m
`, []string{
			"orange_otp: option 'base_url' must use https outside --dev (http is allowed only for localhost and loopback addresses), got 'http://api.orange.com'",
			"orange_otp: option 'sender_name' must be at most 11 characters, got 13",
			"orange_otp: option 'code_length' must be between 4 and 8, got '9'",
			"orange_otp: option 'message' must contain %OTP%, where Orange puts the code, got 'Your code is OTP'",
			"orange_otp: option 'timeout' must be between 100ms and 1m, got '2m'",
		}},
		{"message longer than one SMS", false, "factor: orange\norange_otp: {client_id: a, client_secret: b, service: c, partner_id: d, message: '" + long + "'}\n", []string{
			"orange_otp: option 'message' must be at most 160 characters (one SMS), got 162",
		}},
		{"base url with credentials", true, "factor: orange\norange_otp: {base_url: 'https://u:hunter2@api.orange.com', client_id: a, client_secret: b, service: c, partner_id: d}\n", []string{
			"orange_otp: option 'base_url' must not contain a user name or password",
		}},
		{"test server over http", false, "factor: orange\norange_otp: {base_url: 'http://127.0.0.1:8089', client_id: a, client_secret: b, service: c, partner_id: d}\n", nil},
		{"orange options ignored with smsotp", false, "sms: {sender: outbox}\norange_otp: {code_length: 99, message: no placeholder}\n", nil},
		{"unknown orange option", false, "factor: orange\norange_otp: {client_id: a, client_secret: b, service: c, partner_id: d, partnerId: e}\n", []string{
			"orange_otp: option 'partnerId' is unknown (line 4); did you mean 'partner_id'?",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "otpgate.yaml", base+tt.yaml), tt.dev, nil)
			wantProblems(t, err, tt.want...)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a problem quotes a secret: %v", err)
			}
		})
	}
}
