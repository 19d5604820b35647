package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// TwilioBaseURL is the production base of the Twilio REST API.
const TwilioBaseURL = "https://api.twilio.com"

// TwilioConfig configures the Twilio Programmable Messaging sender.
type TwilioConfig struct {
	BaseURL    string `yaml:"base_url"`
	AccountSID string `yaml:"account_sid"` // AC…
	// AuthToken is the account's auth token. Instead, an API key may be used
	// (APIKeySID and APIKeySecret), which can be revoked on its own.
	AuthToken        string `yaml:"auth_token" secret:"true"`
	AuthTokenFile    string `yaml:"auth_token_file"`
	APIKeySID        string `yaml:"api_key_sid"` // SK…
	APIKeySecret     string `yaml:"api_key_secret" secret:"true"`
	APIKeySecretFile string `yaml:"api_key_secret_file"`
	// From is the sending number (E.164) or alphanumeric sender id; set it or
	// MessagingServiceSID (MG…), not both.
	From                string        `yaml:"from"`
	MessagingServiceSID string        `yaml:"messaging_service_sid"`
	StatusCallback      string        `yaml:"status_callback"` // optional delivery-status URL
	Timeout             time.Duration `yaml:"timeout"`
}

var (
	twilioSID        = regexp.MustCompile(`^[A-Z]{2}[0-9a-fA-F]{32}$`)
	e164             = regexp.MustCompile(`^\+[1-9][0-9]{3,14}$`)
	alphanumericFrom = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
)

func (c *TwilioConfig) check(dev bool, ps *problems) {
	checkBaseURL(ps, "base_url", c.BaseURL, dev)
	if !twilioSID.MatchString(c.AccountSID) || !strings.HasPrefix(c.AccountSID, "AC") {
		ps.add("account_sid", "must be the account SID, 'AC' and 32 hexadecimal digits, got '%s'", c.AccountSID)
	}
	switch {
	case c.AuthToken != "" && (c.APIKeySID != "" || c.APIKeySecret != ""):
		ps.add("auth_token", "and 'api_key_sid'/'api_key_secret' are both set: use one way to authenticate")
	case c.AuthToken == "" && c.APIKeySID == "" && c.APIKeySecret == "":
		ps.add("auth_token", "is required: set it (or 'auth_token_file'), or 'api_key_sid' and 'api_key_secret'")
	case c.AuthToken == "":
		if !twilioSID.MatchString(c.APIKeySID) || !strings.HasPrefix(c.APIKeySID, "SK") {
			ps.add("api_key_sid", "must be an API key SID, 'SK' and 32 hexadecimal digits, got '%s'", c.APIKeySID)
		}
		if c.APIKeySecret == "" {
			ps.add("api_key_secret", "is required with 'api_key_sid': set it or 'api_key_secret_file'")
		}
	}
	switch {
	case c.From != "" && c.MessagingServiceSID != "":
		ps.add("from", "and 'messaging_service_sid' are both set: set only one")
	case c.From == "" && c.MessagingServiceSID == "":
		ps.add("from", "is required: a number like '+15005550006' or a sender id, or set 'messaging_service_sid'")
	case c.From != "" && !e164.MatchString(c.From) && !alphanumericFrom.MatchString(c.From):
		ps.add("from", "must be a number in E.164 form like '+15005550006' or an alphanumeric sender id of at most 11 characters, got '%s'", c.From)
	case c.MessagingServiceSID != "" && (!twilioSID.MatchString(c.MessagingServiceSID) || !strings.HasPrefix(c.MessagingServiceSID, "MG")):
		ps.add("messaging_service_sid", "must be 'MG' and 32 hexadecimal digits, got '%s'", c.MessagingServiceSID)
	}
	if c.StatusCallback != "" {
		checkURL(ps, "status_callback", c.StatusCallback, dev, true)
	}
	checkTimeout(ps, c.Timeout)
}

// Open returns the *Twilio sender.
func (c *TwilioConfig) Open(deps Deps) (Sender, error) {
	deps = deps.withDefaults()
	base := strings.TrimRight(c.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(c.AccountSID)
	user, pass := c.AccountSID, c.AuthToken
	if c.AuthToken == "" {
		user, pass = c.APIKeySID, c.APIKeySecret
	}
	if user == "" || pass == "" {
		return nil, errors.New("sms twilio: no credentials")
	}
	return &Twilio{
		ep:          &endpoint{name: "twilio", client: deps.HTTPClient(), timeout: c.Timeout},
		messagesURL: base + "/Messages.json",
		accountURL:  base + ".json",
		user:        user,
		pass:        pass,
		from:        c.From,
		service:     c.MessagingServiceSID,
		callback:    c.StatusCallback,
	}, nil
}

// Twilio sends SMS through Twilio Programmable Messaging.
type Twilio struct {
	ep                      *endpoint
	messagesURL, accountURL string
	user, pass              string
	from, service, callback string
}

var (
	_ Sender         = (*Twilio)(nil)
	_ StartupChecker = (*Twilio)(nil)
)

// TwilioError is an error answer of the Twilio API.
type TwilioError struct {
	Status   int
	Code     int    // Twilio's error code, e.g. 21211
	Message  string // phone numbers masked
	MoreInfo string
}

// Error describes the answer, for logs.
func (e *TwilioError) Error() string {
	s := fmt.Sprintf("twilio: HTTP %d", e.Status)
	if e.Code != 0 {
		s += fmt.Sprintf(" error %d", e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// twilioRecipientErrors are the codes that refuse one message (its number or
// text) rather than the account's configuration.
var twilioRecipientErrors = map[int]bool{
	21211: true, // invalid 'To' phone number
	21214: true, // 'To' phone number cannot be reached
	21217: true, // phone number does not appear to be valid
	21408: true, // permission to send an SMS has not been enabled for the region
	21610: true, // the recipient unsubscribed (STOP)
	21612: true, // cannot route to this number
	21614: true, // 'To' number is not a valid mobile number
	21617: true, // the body exceeds the maximum length
	21635: true, // 'To' number cannot be a landline
}

type twilioMessage struct {
	SID    string `json:"sid"`
	Status string `json:"status"`
}

// Send posts msg to Messages.json; 201 (any 2xx) is success and the message
// SID is its id.
func (t *Twilio) Send(ctx context.Context, msg Message) (string, error) {
	if err := msg.check(); err != nil {
		return "", rejected(err)
	}
	form := url.Values{"To": {msg.To}, "Body": {msg.Body}}
	if t.service != "" {
		form.Set("MessagingServiceSid", t.service)
	} else {
		form.Set("From", t.from)
	}
	if t.callback != "" {
		form.Set("StatusCallback", t.callback)
	}
	req, err := http.NewRequest(http.MethodPost, t.messagesURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", rejected(err)
	}
	req.SetBasicAuth(t.user, t.pass)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := t.ep.do(ctx, req)
	if err != nil {
		return "", err
	}
	if resp.status/100 == 2 {
		var m twilioMessage
		_ = json.Unmarshal(resp.body, &m) // the message is sent even if the answer is odd
		return m.SID, nil
	}
	e := parseTwilioError(resp)
	if resp.status == http.StatusBadRequest && twilioRecipientErrors[e.Code] {
		return "", rejected(e)
	}
	return "", classified(classifyStatus(resp.status), e)
}

func parseTwilioError(resp *response) *TwilioError {
	var b struct {
		Code     int    `json:"code"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
	}
	_ = json.Unmarshal(resp.body, &b)
	return &TwilioError{Status: resp.status, Code: b.Code, Message: scrub(b.Message), MoreInfo: scrub(b.MoreInfo)}
}

// StartupCheck reads the account resource: the credentials work and the
// account is active.
func (t *Twilio) StartupCheck(ctx context.Context) error {
	req, err := http.NewRequest(http.MethodGet, t.accountURL, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(t.user, t.pass)
	req.Header.Set("Accept", "application/json")
	resp, err := t.ep.do(ctx, req)
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		e := parseTwilioError(resp)
		if resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden {
			return fmt.Errorf("credentials refused: %w", e)
		}
		return e
	}
	var account struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(resp.body, &account) == nil && account.Status != "" && account.Status != "active" {
		return fmt.Errorf("twilio: account is %q, not active", scrub(account.Status))
	}
	return nil
}
