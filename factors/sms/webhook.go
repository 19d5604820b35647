package sms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// WebhookSignatureHeader carries the webhook's signature:
//
//	X-Otpgate-Signature: t=1767225600,v1=<hex HMAC-SHA256(secret, "1767225600.<body>")>
const WebhookSignatureHeader = "X-Otpgate-Signature"

// MinWebhookSecretLength is the shortest webhook secret accepted, in characters.
const MinWebhookSecretLength = 32

// WebhookConfig configures the webhook sender: each message is POSTed as JSON
// to URL, signed, for the operator's own SMS gateway to deliver.
type WebhookConfig struct {
	URL        string        `yaml:"url"`
	Secret     string        `yaml:"secret" secret:"true"` // HMAC key, at least 32 characters
	SecretFile string        `yaml:"secret_file"`
	Timeout    time.Duration `yaml:"timeout"`
}

func (c *WebhookConfig) check(dev bool, ps *problems) {
	checkURL(ps, "url", c.URL, dev, true)
	if n := utf8.RuneCountInString(c.Secret); n < MinWebhookSecretLength {
		ps.add("secret", "must be at least %d characters long (set it or 'secret_file'), got %d: use e.g. 'openssl rand -base64 32'", MinWebhookSecretLength, n)
	}
	checkTimeout(ps, c.Timeout)
}

// Open returns the *Webhook sender.
func (c *WebhookConfig) Open(deps Deps) (Sender, error) {
	deps = deps.withDefaults()
	if c.URL == "" || c.Secret == "" {
		return nil, errors.New("sms webhook: url and secret are required")
	}
	return &Webhook{
		ep:     &endpoint{name: "webhook", client: deps.HTTPClient(), timeout: c.Timeout},
		url:    c.URL,
		secret: []byte(c.Secret),
		now:    deps.Now,
	}, nil
}

// Webhook posts each message to an HTTP endpoint of the operator's.
type Webhook struct {
	ep     *endpoint
	url    string
	secret []byte
	now    func() time.Time
}

var _ Sender = (*Webhook)(nil)

// WebhookMessage is the JSON body the webhook receives.
type WebhookMessage struct {
	To        string `json:"to"`        // E.164
	Body      string `json:"body"`      // the text to send
	Locale    string `json:"locale"`    // its language
	ClientID  string `json:"client_id"` // the relying party
	MessageID string `json:"message_id"`
	// MessageID is unique per message: a receiver that keeps the ones it has
	// seen can drop a replayed request.
}

// WebhookError is a non-2xx answer of the webhook.
type WebhookError struct {
	Status int
	Text   string // the start of the answer's body, phone numbers masked
}

// Error describes the answer, for logs.
func (e *WebhookError) Error() string {
	s := fmt.Sprintf("webhook: HTTP %d", e.Status)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Send posts msg; any 2xx is success, and the id is the message_id sent. A
// 400 or 422 refuses the message; other answers are classified by status.
func (w *Webhook) Send(ctx context.Context, msg Message) (string, error) {
	if err := msg.check(); err != nil {
		return "", rejected(err)
	}
	m := WebhookMessage{To: msg.To, Body: msg.Body, Locale: msg.Locale, ClientID: msg.ClientID, MessageID: rand.Text()}
	body, err := json.Marshal(m)
	if err != nil {
		return "", rejected(err)
	}
	req, err := http.NewRequest(http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return "", rejected(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(WebhookSignatureHeader, SignWebhook(w.secret, w.now(), body))
	resp, err := w.ep.do(ctx, req)
	if err != nil {
		return "", err
	}
	if resp.status/100 == 2 {
		return m.MessageID, nil
	}
	e := &WebhookError{Status: resp.status, Text: scrub(string(resp.body))}
	if resp.status == http.StatusBadRequest || resp.status == http.StatusUnprocessableEntity {
		return "", rejected(e)
	}
	return "", classified(classifyStatus(resp.status), e)
}

// SignWebhook returns the signature header value for body sent at t.
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(webhookMAC(secret, ts, body))
}

func webhookMAC(secret []byte, ts string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// ErrWebhookSignature is returned by VerifyWebhook for a missing, malformed,
// wrong or stale signature.
var ErrWebhookSignature = errors.New("sms webhook: invalid signature")

// VerifyWebhook checks a signature header against body, as a receiver
// written in Go would: the HMAC must match (compared in constant time) and
// the timestamp must be within tolerance of now, so that a captured request
// cannot be replayed later.
func VerifyWebhook(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrWebhookSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside the tolerance", ErrWebhookSignature)
	}
	want := webhookMAC(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrWebhookSignature
}
