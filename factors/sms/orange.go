package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// OrangeBaseURL is the production base of every Orange API.
const OrangeBaseURL = "https://api.orange.com"

// OrangeConfig configures the Orange SMS messaging API sender (GSMA OneAPI
// shape): otpgate writes the text, Orange delivers it.
type OrangeConfig struct {
	// BaseURL is the API base, without a trailing slash; change it for a
	// regional endpoint or a test server.
	BaseURL          string `yaml:"base_url"`
	ClientID         string `yaml:"client_id"`
	ClientSecret     string `yaml:"client_secret" secret:"true"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// SenderAddress is the number the contract sends from, "tel:+33600000000"
	// (the "tel:" may be left out).
	SenderAddress string `yaml:"sender_address"`
	// SenderName, when set, is shown instead of the number; it must be
	// registered with Orange (at most 11 characters).
	SenderName string        `yaml:"sender_name"`
	Timeout    time.Duration `yaml:"timeout"` // per request, token included
}

func (c *OrangeConfig) check(dev bool, ps *problems) {
	checkBaseURL(ps, "base_url", c.BaseURL, dev)
	if c.ClientID == "" {
		ps.add("client_id", "is required: the application's client id from the Orange Developer console")
	}
	if c.ClientSecret == "" {
		ps.add("client_secret", "is required: set it or 'client_secret_file'")
	}
	if _, ok := telAddress(c.SenderAddress); !ok {
		ps.add("sender_address", "must be the contract's number like 'tel:+33600000000', got '%s'", c.SenderAddress)
	}
	if n := utf8.RuneCountInString(c.SenderName); n > 11 {
		ps.add("sender_name", "must be at most 11 characters, got %d", n)
	}
	checkTimeout(ps, c.Timeout)
}

// telAddress normalises "+33…" or "tel:+33…" to "tel:+33…".
func telAddress(s string) (string, bool) {
	num := strings.TrimPrefix(s, "tel:")
	if len(num) < 4 || len(num) > 16 || num[0] != '+' {
		return "", false
	}
	for _, r := range num[1:] {
		if r < '0' || r > '9' {
			return "", false
		}
	}
	return "tel:" + num, true
}

// Open returns the *Orange sender.
func (c *OrangeConfig) Open(deps Deps) (Sender, error) {
	deps = deps.withDefaults()
	sender, ok := telAddress(c.SenderAddress)
	if !ok {
		return nil, errors.New("sms orange: invalid sender_address")
	}
	ep := &endpoint{name: "orange", client: deps.HTTPClient(), timeout: c.Timeout}
	base := strings.TrimRight(c.BaseURL, "/")
	// The sender address is one path segment, escaped as the reference shows
	// it (tel%3A%2B33…); url.PathEscape would leave ':' and '+' as they are.
	escaped := url.QueryEscape(sender)
	u, err := url.Parse(base + "/smsmessaging/v1/outbound/" + escaped + "/requests")
	if err != nil {
		return nil, fmt.Errorf("sms orange: base_url: %w", err)
	}
	return &Orange{
		ep:         ep,
		tokens:     NewOrangeTokens(ep.client, base, c.ClientID, c.ClientSecret, c.Timeout, deps.Now),
		messageURL: u,
		sender:     sender,
		senderName: c.SenderName,
	}, nil
}

// Orange sends SMS through the Orange SMS messaging API.
type Orange struct {
	ep         *endpoint
	tokens     *OrangeTokens
	messageURL *url.URL
	sender     string
	senderName string
}

var (
	_ Sender         = (*Orange)(nil)
	_ StartupChecker = (*Orange)(nil)
)

type orangeSMSRequest struct {
	Request struct {
		Address       string `json:"address"`
		SenderAddress string `json:"senderAddress"`
		SenderName    string `json:"senderName,omitempty"`
		Text          struct {
			Message string `json:"message"`
		} `json:"outboundSMSTextMessage"`
	} `json:"outboundSMSMessageRequest"`
}

// Send posts msg; 201 is success. On a 401 it refreshes the token and tries
// once more: a 401 proves the message was refused.
func (o *Orange) Send(ctx context.Context, msg Message) (string, error) {
	if err := msg.check(); err != nil {
		return "", rejected(err)
	}
	var body orangeSMSRequest
	body.Request.Address = "tel:" + msg.To
	body.Request.SenderAddress = o.sender
	body.Request.SenderName = o.senderName
	body.Request.Text.Message = msg.Body
	data, err := json.Marshal(body)
	if err != nil {
		return "", rejected(err)
	}
	token, err := o.tokens.Token(ctx, "")
	if err != nil {
		return "", err
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequest(http.MethodPost, o.messageURL.String(), bytes.NewReader(data))
		if err != nil {
			return "", rejected(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := o.ep.do(ctx, req)
		if err != nil {
			return "", err
		}
		if resp.status == http.StatusUnauthorized && attempt == 0 {
			if token, err = o.tokens.Token(ctx, token); err != nil {
				return "", err
			}
			continue
		}
		if resp.status/100 == 2 {
			return orangeMessageID(resp), nil
		}
		return "", orangeFailure(resp)
	}
}

// orangeMessageID is the last segment of the resourceURL Orange echoes back,
// or of the Location header; "" when there is neither.
func orangeMessageID(resp *response) string {
	var echo struct {
		Request struct {
			ResourceURL string `json:"resourceURL"`
		} `json:"outboundSMSMessageRequest"`
	}
	ref := resp.header.Get("Location")
	if json.Unmarshal(resp.body, &echo) == nil && echo.Request.ResourceURL != "" {
		ref = echo.Request.ResourceURL
	}
	if ref == "" {
		return ""
	}
	return path.Base(strings.TrimRight(ref, "/"))
}

// OrangeError is an error answer of an Orange API: the requestError
// exceptions of the messaging APIs, or the gateway's {code, message}.
type OrangeError struct {
	Status    int
	Exception string // "serviceException", "policyException" or "" for a gateway error
	MessageID string // "SVC0004", "POL0001", or the gateway's numeric code
	Text      string // phone numbers masked
}

// Error describes the answer, for logs.
func (e *OrangeError) Error() string {
	s := fmt.Sprintf("orange: HTTP %d", e.Status)
	if e.Exception != "" {
		s += " " + e.Exception
	}
	if e.MessageID != "" {
		s += " " + e.MessageID
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

type orangeErrorBody struct {
	RequestError map[string]struct {
		MessageID string `json:"messageId"`
		Text      string `json:"text"`
		// variables are left out on purpose: they may hold the number.
	} `json:"requestError"`
	Code        json.RawMessage `json:"code"`
	Message     string          `json:"message"`
	Description string          `json:"description"`
}

func parseOrangeError(resp *response) *OrangeError {
	e := &OrangeError{Status: resp.status}
	var b orangeErrorBody
	if json.Unmarshal(resp.body, &b) != nil {
		return e
	}
	for _, kind := range []string{"serviceException", "policyException"} {
		if ex, ok := b.RequestError[kind]; ok {
			e.Exception, e.MessageID, e.Text = kind, scrub(ex.MessageID), scrub(ex.Text)
			return e
		}
	}
	if len(b.Code) > 0 {
		e.MessageID = scrub(strings.Trim(string(b.Code), `"`))
	}
	e.Text = scrub(strings.TrimSpace(b.Message + " " + b.Description))
	return e
}

// orangeFailure classifies a non-2xx answer to a message request. A
// serviceException refuses this message (SVC0001, "a service error occurred",
// is Orange's own trouble); a policyException refuses it under the account's
// policy, which another provider may not share.
func orangeFailure(resp *response) error {
	e := parseOrangeError(resp)
	switch {
	case e.Exception == "serviceException" && e.MessageID != "SVC0001" && resp.status == http.StatusBadRequest:
		return rejected(e)
	case e.Exception == "policyException" && resp.status == http.StatusForbidden:
		return rejected(e)
	}
	return classified(classifyStatus(resp.status), e)
}

// StartupCheck fetches a token: the credentials work.
func (o *Orange) StartupCheck(ctx context.Context) error {
	_, err := o.tokens.Token(ctx, "")
	return err
}

// OrangeTokens gets and caches OAuth 2.0 client-credentials tokens for the
// Orange APIs. A token is refreshed ahead of its expiry; however many
// requests need one at once, a single token request is in flight.
type OrangeTokens struct {
	ep       *endpoint
	tokenURL string
	id       string
	secret   string
	now      func() time.Time

	mu      sync.Mutex
	token   string
	expiry  time.Time // when the token stops working
	refresh time.Time // when to get a new one
	call    *tokenCall
}

type tokenCall struct {
	done   chan struct{}
	token  string
	expiry time.Time
	err    error
}

// NewOrangeTokens returns a token source for the client credentials, posting
// to base + "/oauth/v3/token" through client with the given timeout.
func NewOrangeTokens(client *http.Client, base, clientID, clientSecret string, timeout time.Duration, now func() time.Time) *OrangeTokens {
	if now == nil {
		now = time.Now
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &OrangeTokens{
		ep:       &endpoint{name: "orange token", client: client, timeout: timeout},
		tokenURL: strings.TrimRight(base, "/") + "/oauth/v3/token",
		id:       clientID,
		secret:   clientSecret,
		now:      now,
	}
}

// Token returns a usable access token. stale, when not empty, is a token an
// API has just refused (401): a different one is returned, fetched if needed.
// A failure is a FailureUnavailable *SendError: no message was sent.
func (t *OrangeTokens) Token(ctx context.Context, stale string) (string, error) {
	t.mu.Lock()
	now := t.now()
	if t.token != "" && t.token != stale && now.Before(t.refresh) {
		tok := t.token
		t.mu.Unlock()
		return tok, nil
	}
	c := t.call
	if c == nil {
		c = &tokenCall{done: make(chan struct{})}
		t.call = c
		// The fetch outlives any one caller: the others waiting on it must not
		// fail because the first one gave up. It is bounded by the timeout.
		go t.fetch(context.WithoutCancel(ctx), c)
	}
	fallback, fallbackOK := t.token, t.token != "" && t.token != stale && now.Before(t.expiry)
	t.mu.Unlock()

	select {
	case <-c.done:
	case <-ctx.Done():
		return "", unavailable(fmt.Errorf("orange token: %w", ctx.Err()))
	}
	if c.err != nil {
		if fallbackOK {
			return fallback, nil // early refresh failed; the old token still works
		}
		return "", c.err
	}
	return c.token, nil
}

func (t *OrangeTokens) fetch(ctx context.Context, c *tokenCall) {
	c.token, c.expiry, c.err = t.request(ctx)
	t.mu.Lock()
	if c.err == nil {
		lifetime := c.expiry.Sub(t.now())
		t.token, t.expiry = c.token, c.expiry
		// Refresh a fifth of the lifetime early, at most five minutes.
		t.refresh = c.expiry.Add(-min(lifetime/5, 5*time.Minute))
	}
	t.call = nil
	t.mu.Unlock()
	close(c.done)
}

type orangeToken struct {
	TokenType   string      `json:"token_type"`
	AccessToken string      `json:"access_token"`
	ExpiresIn   flexSeconds `json:"expires_in"`
}

// flexSeconds reads a number of seconds written as a JSON number or string
// (Orange sends "3600").
type flexSeconds int64

func (s *flexSeconds) UnmarshalJSON(b []byte) error {
	str := strings.Trim(string(b), `"`)
	n, err := strconv.ParseFloat(str, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("expires_in: not a number of seconds: %q", b)
	}
	*s = flexSeconds(n)
	return nil
}

func (t *OrangeTokens) request(ctx context.Context) (string, time.Time, error) {
	req, err := http.NewRequest(http.MethodPost, t.tokenURL, strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		return "", time.Time{}, unavailable(err)
	}
	req.SetBasicAuth(t.id, t.secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := t.now()
	resp, err := t.ep.do(ctx, req)
	if err != nil {
		// Whatever happened to the token request, no SMS left.
		return "", time.Time{}, unavailable(err)
	}
	if resp.status != http.StatusOK {
		e := parseOrangeError(resp)
		if resp.status == http.StatusUnauthorized || resp.status == http.StatusBadRequest || resp.status == http.StatusForbidden {
			return "", time.Time{}, unavailable(fmt.Errorf("orange token: credentials refused: %w", e))
		}
		return "", time.Time{}, unavailable(fmt.Errorf("orange token: %w", e))
	}
	var tok orangeToken
	if err := json.Unmarshal(resp.body, &tok); err != nil || tok.AccessToken == "" {
		return "", time.Time{}, unavailable(errors.New("orange token: unreadable answer"))
	}
	if tok.TokenType != "" && !strings.EqualFold(tok.TokenType, "bearer") {
		return "", time.Time{}, unavailable(fmt.Errorf("orange token: unexpected token_type %q", scrub(tok.TokenType)))
	}
	lifetime := time.Duration(tok.ExpiresIn) * time.Second
	if lifetime <= 0 {
		lifetime = time.Hour // the documented lifetime, when none is given
	}
	return tok.AccessToken, start.Add(lifetime), nil
}

// checkBaseURL requires an absolute https URL (http for loopback hosts, or
// any host with --dev) without query or fragment.
func checkBaseURL(ps *problems, option, raw string, dev bool) {
	checkURL(ps, option, raw, dev, false)
}

// checkURL is checkBaseURL, allowing a query when query is true.
func checkURL(ps *problems, option, raw string, dev, query bool) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		ps.add(option, "is required")
	case err != nil || !u.IsAbs() || u.Host == "":
		ps.add(option, "must be an absolute URL like 'https://api.example.com', got '%s'", safeRaw(raw))
	case u.Scheme != "https" && u.Scheme != "http":
		ps.add(option, "must use https, got '%s'", safeURL(u))
	case u.Scheme == "http" && !dev && !isLoopback(u.Hostname()):
		ps.add(option, "must use https outside --dev (http is allowed only for localhost and loopback addresses), got '%s'", safeURL(u))
	case u.User != nil:
		ps.add(option, "must not contain a user name or password")
	case u.Fragment != "" || (!query && u.RawQuery != ""):
		ps.add(option, "must not have a query or a fragment")
	}
}

// safeRaw quotes an unparsable URL only up to a character that could start
// credentials.
func safeRaw(raw string) string {
	if i := strings.IndexAny(raw, "@?#"); i >= 0 {
		return raw[:i] + "…"
	}
	return raw
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkTimeout(ps *problems, d time.Duration) {
	if d < 100*time.Millisecond || d > time.Minute {
		ps.add("timeout", "must be between 100ms and 1m, got '%s'", d)
	}
}
