// Package orange is the factor that delegates the one-time code to the Orange
// One Time Password Authentication API (challenge/v1): Orange generates the
// code, texts it and checks the answer; otpgate keeps only Orange's challenge
// id, in its own challenge record, and still enforces its own lifetime,
// attempt and resend limits on top, through storage.ChallengeStore.
//
// The request shape of challenge/v1 is inferred (see ref/sms-apis.md): the
// service and partner ids, the message, the code length and the validation
// "info" input are options, to confirm with Orange when access is granted.
//
// The record holds no code hash: each answer is counted atomically before
// Orange judges it (storage CountAttempt: expiry, attempt limit, lock), and
// an answer Orange accepts consumes the record atomically (ConsumeChallenge),
// so that of parallel right answers one wins even if Orange accepted a code
// twice. A resend is reserved in the store first (cooldown, resend limit,
// lock), which drops the old code's Orange id, and only then asked of Orange;
// the new id is recorded for that send only (SetProviderRef), so a slow
// answer never attaches an old code to a newer send.
//
// It implements factors.Factor and imports factors, factors/sms (the Orange
// token source and the strict decoder), storage and templates; never provider,
// config or cmd. It never logs, and its errors hold no code or full number.
package orange

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/text/language"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/templates"
)

// Name is the factor's name in configuration and logs.
const Name = "orange"

// Defaults for the zero values of Options.
const (
	DefaultCodeLength     = 6
	DefaultTTL            = factors.DefaultTTL
	DefaultMaxAttempts    = factors.DefaultMaxAttempts
	DefaultResendCooldown = factors.DefaultResendCooldown
	DefaultMaxResends     = factors.DefaultMaxResends
	DefaultValidateInfo   = "OrangeApiToken,ise2"
	method                = "OTP-SMS-AUTH"
)

// Options configures the factor. ClientID, ClientSecret, Service, PartnerID
// and Origin (or Message) are required.
type Options struct {
	BaseURL      string // sms.OrangeBaseURL
	ClientID     string
	ClientSecret string
	Service      string // the service id Orange assigned
	PartnerID    string // the partner id Orange assigned
	// Message is the SMS text, with %OTP% where Orange puts the code, at most
	// 160 characters. Empty: otpgate's SMS text in the user's language, with
	// the origin-bound line ("@login.example.com #%OTP%").
	Message      string
	SenderName   string // at most 11 characters; empty: Orange's default
	CodeLength   int    // digits Orange generates, 4–8 (6)
	ValidateInfo string // the "info" input of a validation (DefaultValidateInfo)
	Origin       string // the issuer's host, for the default message

	TTL            time.Duration // otpgate's lifetime of a code, 1m–15m (5m): Orange's is 15m
	MaxAttempts    int           // wrong answers allowed per code, 1–20 (5)
	ResendCooldown time.Duration // (30s)
	MaxResends     int           // (3)
	Policy         factors.PhonePolicy

	// Observer, if set, is told whether Orange accepted each code to send
	// (provider "orange").
	Observer factors.Observer
	// Tracer, if set, runs each request that makes Orange text a code in
	// an "sms.send" span (sms.TraceSend).
	Tracer trace.Tracer

	Timeout    time.Duration    // per request to Orange (sms.DefaultTimeout)
	HTTPClient *http.Client     // sms.NewHTTPClient()
	Now        func() time.Time // time.Now
}

// Factor is the Orange OTP factor. It is safe for concurrent use.
type Factor struct {
	store  storage.ChallengeStore
	opts   Options
	tokens *sms.OrangeTokens
	base   string
}

var (
	_ factors.Factor     = (*Factor)(nil)
	_ sms.StartupChecker = (*Factor)(nil)
)

// New returns the factor, or an error naming every invalid option.
func New(store storage.ChallengeStore, opts Options) (*Factor, error) {
	opts = withDefaults(opts)
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("orange: "+format, args...)) }
	if store == nil {
		bad("a challenge store is required")
	}
	if opts.ClientID == "" || opts.ClientSecret == "" {
		bad("options 'client_id' and 'client_secret' are required")
	}
	if opts.Service == "" || opts.PartnerID == "" {
		bad("options 'service' and 'partner_id' are required: Orange assigns them with API access")
	}
	if opts.Message != "" {
		if !strings.Contains(opts.Message, "%OTP%") || utf8.RuneCountInString(opts.Message) > 160 {
			bad("option 'message' must contain %%OTP%% and be at most 160 characters")
		}
	} else if _, err := templates.SMS("en", templates.SMSData{Code: "%OTP%", Origin: opts.Origin, TTLMinutes: 1}); err != nil {
		bad("option 'origin' is required for the default message: %v", err)
	}
	if utf8.RuneCountInString(opts.SenderName) > 11 {
		bad("option 'sender_name' must be at most 11 characters")
	}
	if opts.CodeLength < 4 || opts.CodeLength > 8 {
		bad("option 'code_length' must be between 4 and 8, got '%d'", opts.CodeLength)
	}
	if opts.TTL < time.Minute || opts.TTL > 15*time.Minute {
		bad("option 'ttl' must be between 1m and 15m (Orange's own lifetime), got '%s'", opts.TTL)
	}
	if opts.MaxAttempts < 1 || opts.MaxAttempts > 20 {
		bad("option 'max_attempts' must be between 1 and 20, got '%d'", opts.MaxAttempts)
	}
	if opts.ResendCooldown < time.Second || opts.ResendCooldown >= opts.TTL {
		bad("option 'resend_cooldown' must be at least 1s and shorter than 'ttl', got '%s'", opts.ResendCooldown)
	}
	if opts.MaxResends < 0 || opts.MaxResends > 10 {
		bad("option 'max_resends' must be between 0 and 10, got '%d'", opts.MaxResends)
	}
	if err := opts.Policy.Validate(); err != nil {
		bad("option 'policy': %v", err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	base := strings.TrimRight(opts.BaseURL, "/")
	return &Factor{
		store:  store,
		opts:   opts,
		base:   base,
		tokens: sms.NewOrangeTokens(opts.HTTPClient, base, opts.ClientID, opts.ClientSecret, opts.Timeout, opts.Now),
	}, nil
}

func withDefaults(o Options) Options {
	if o.BaseURL == "" {
		o.BaseURL = sms.OrangeBaseURL
	}
	if o.CodeLength == 0 {
		o.CodeLength = DefaultCodeLength
	}
	if o.ValidateInfo == "" {
		o.ValidateInfo = DefaultValidateInfo
	}
	factors.DefaultLimits(&o.TTL, &o.MaxAttempts, &o.ResendCooldown, &o.MaxResends)
	if o.Timeout <= 0 {
		o.Timeout = sms.DefaultTimeout
	}
	if o.HTTPClient == nil {
		o.HTTPClient = sms.NewHTTPClient()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// StartupCheck fetches a token: the credentials work. It cannot tell
// whether the service and partner ids are right; only a challenge can.
func (f *Factor) StartupCheck(ctx context.Context) error {
	_, err := f.tokens.Token(ctx, "")
	return err
}

// Name returns "orange".
func (f *Factor) Name() string { return Name }

// AMR returns ["sms"] (RFC 8176): the code still travels by SMS.
func (f *Factor) AMR() []string { return []string{"sms"} }

// Start asks Orange to text a code to req.Phone and opens otpgate's challenge
// around Orange's challenge id. A failure at Orange is a *factors.DeliveryError.
func (f *Factor) Start(ctx context.Context, req factors.StartRequest) (factors.Challenge, error) {
	phone, err := factors.CheckE164(req.Phone, f.opts.Policy)
	if err != nil {
		return factors.Challenge{}, err
	}
	id, err := factors.NewChallengeID(rand.Reader)
	if err != nil {
		return factors.Challenge{}, fmt.Errorf("orange: challenge id: %w", err)
	}
	ref, err := f.create(ctx, phone, req.Locale)
	if err != nil {
		return factors.Challenge{}, &factors.DeliveryError{Err: err}
	}
	now := f.opts.Now()
	// No code hash: Orange holds the code, and an empty hash never passes
	// the store's own verification.
	c := storage.Challenge{
		ID:          id,
		FlowID:      req.FlowID,
		Phone:       phone.E164,
		ProviderRef: ref,
		MaxAttempts: f.opts.MaxAttempts,
		Sends:       1,
		LastSentAt:  now,
		ExpiresAt:   now.Add(f.opts.TTL),
		CreatedAt:   now,
	}
	if err := f.store.CreateChallenge(ctx, c); err != nil {
		return factors.Challenge{}, fmt.Errorf("orange: create challenge: %w", err)
	}
	return f.challenge(c), nil
}

// Resend asks Orange for a new code, within otpgate's cooldown and resend
// limits, reserved in the store before Orange is called so that racing
// resends send one SMS; the previous code stops working at once. A failure at
// Orange counts as a send and is a *factors.DeliveryError; no code works
// until the next resend.
func (f *Factor) Resend(ctx context.Context, req factors.ResendRequest) (factors.Challenge, error) {
	if !plausibleID(req.ChallengeID) {
		return factors.Challenge{}, factors.ErrNotFound
	}
	now := f.opts.Now()
	// No ProviderRef: the old code's id goes now, the new one is recorded
	// once Orange has answered.
	res, err := f.store.ResendChallenge(ctx, req.ChallengeID, storage.Resend{
		Now:       now,
		Cooldown:  f.opts.ResendCooldown,
		MaxSends:  1 + f.opts.MaxResends,
		ExpiresAt: now.Add(f.opts.TTL),
	})
	if err := factors.StoreError("orange: resend challenge", err); err != nil {
		return factors.Challenge{}, err
	}
	if err := factors.ResendRefusal("orange", res); err != nil {
		return factors.Challenge{}, err
	}
	c := res.Challenge
	phone, err := factors.ParsePhone(c.Phone, "")
	if err != nil {
		return factors.Challenge{}, err
	}
	ref, err := f.create(ctx, phone, req.Locale)
	if err != nil {
		return factors.Challenge{}, &factors.DeliveryError{Err: err}
	}
	// The SMS is out: record its id even if the caller gives up now.
	switch err := f.store.SetProviderRef(context.WithoutCancel(ctx), c.ID, c.Sends, ref); {
	case errors.Is(err, storage.ErrConflict):
		// A later resend overtook this one while Orange answered: its code
		// is the one that works, and its SMS is on its way too.
	case errors.Is(err, storage.ErrNotFound):
		return factors.Challenge{}, factors.ErrNotFound
	case err != nil:
		return factors.Challenge{}, fmt.Errorf("orange: record resent challenge: %w", err)
	}
	return f.challenge(c), nil
}

// Verify counts the attempt in otpgate's record (expiry, attempt limit), then
// asks Orange, and consumes the record when Orange accepts the code. Errors:
// factors.ErrNotFound, *factors.InvalidCodeError, factors.ErrExpired,
// factors.ErrTooManyAttempts, or an error from Orange (the attempt stays
// counted).
func (f *Factor) Verify(ctx context.Context, challengeID, answer string) (factors.Result, error) {
	if !plausibleID(challengeID) {
		return factors.Result{}, factors.ErrNotFound
	}
	res, err := f.store.CountAttempt(ctx, challengeID, f.opts.Now())
	if err := factors.StoreError("orange: count attempt", err); err != nil {
		return factors.Result{}, err
	}
	if err := factors.VerifyRefusal(res.Outcome); err != nil {
		return factors.Result{}, err
	}
	if res.Outcome != storage.VerifyCounted {
		return factors.Result{}, fmt.Errorf("orange: count attempt: unexpected outcome %s", res.Outcome)
	}
	c := res.Challenge
	code, ok := factors.NormalizeAnswer(answer, f.opts.CodeLength)
	if !ok {
		return factors.Result{}, wrong(res.Remaining)
	}
	if c.ProviderRef == "" {
		// The last resend failed at Orange (or is still waiting for it).
		return factors.Result{}, factors.ErrExpired
	}
	phone, err := factors.ParsePhone(c.Phone, "")
	if err != nil {
		return factors.Result{}, err
	}
	switch err := f.validate(ctx, c.ProviderRef, phone, code); {
	case errors.Is(err, errWrongCode):
		return factors.Result{}, wrong(res.Remaining)
	case errors.Is(err, errUnknownChallenge):
		return factors.Result{}, factors.ErrExpired
	case err != nil:
		return factors.Result{}, err
	}
	// Orange said yes: consume the record, even if the caller gives up now.
	// Of right answers racing, one gets it.
	if _, err := f.store.ConsumeChallenge(context.WithoutCancel(ctx), c.ID); err != nil {
		return factors.Result{}, factors.StoreError("orange: consume challenge", err)
	}
	return factors.Result{Phone: c.Phone, AMR: f.AMR()}, nil
}

// wrong reports a wrong answer with left attempts remaining after it. The
// store already counted it: after the last one the challenge is locked there
// too, and a resend is refused, as with smsotp.
func wrong(left int) error {
	if left > 0 {
		return &factors.InvalidCodeError{Remaining: left}
	}
	return factors.ErrTooManyAttempts
}

func (f *Factor) challenge(c storage.Challenge) factors.Challenge {
	return factors.ChallengeFrom(c, f.opts.ResendCooldown, f.opts.MaxResends)
}

// ---------------------------------------------------------------------------
// challenge/v1

type input struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type challengeBody struct {
	Challenge struct {
		Method    string  `json:"method"`
		Country   string  `json:"country"`
		Service   string  `json:"service"`
		PartnerID string  `json:"partnerId"`
		Inputs    []input `json:"inputs"`
		Result    []input `json:"result,omitempty"`
	} `json:"challenge"`
}

func (f *Factor) body(phone factors.Phone, inputs ...input) ([]byte, error) {
	var b challengeBody
	b.Challenge.Method = method
	b.Challenge.Country = Alpha3(phone.Region)
	b.Challenge.Service = f.opts.Service
	b.Challenge.PartnerID = f.opts.PartnerID
	b.Challenge.Inputs = append([]input{{Type: "MSISDN", Value: phone.E164}}, inputs...)
	return json.Marshal(b)
}

// Alpha3 returns the ISO 3166-1 alpha-3 code of an alpha-2 region ("FR" →
// "FRA"), as challenge/v1 wants the subscriber's country; "" when unknown.
func Alpha3(region string) string {
	r, err := language.ParseRegion(region)
	if err != nil || r.IsPrivateUse() || r.ISO3() == "ZZZ" {
		return ""
	}
	return r.ISO3()
}

func (f *Factor) message(locale string) (string, error) {
	if f.opts.Message != "" {
		return f.opts.Message, nil
	}
	return templates.SMS(locale, templates.SMSData{Code: "%OTP%", Origin: f.opts.Origin, TTLMinutes: int(f.opts.TTL / time.Minute)})
}

// create opens a challenge at Orange, which texts the code, and returns its id.
func (f *Factor) create(ctx context.Context, phone factors.Phone, locale string) (string, error) {
	var id string
	err := sms.TraceSend(ctx, f.opts.Tracer, Name, phone.CountryCode, func(ctx context.Context) (err error) {
		id, err = f.send(ctx, phone, locale)
		return err
	})
	if o := f.opts.Observer; o != nil {
		if err != nil {
			o.SMSFailed(Name, phone.CountryCode, sms.FailureOf(err).String())
		} else {
			o.SMSSent(Name, phone.CountryCode)
		}
	}
	return id, err
}

func (f *Factor) send(ctx context.Context, phone factors.Phone, locale string) (string, error) {
	msg, err := f.message(locale)
	if err != nil {
		return "", err
	}
	inputs := []input{{Type: "message", Value: msg}, {Type: "otpLength", Value: strconv.Itoa(f.opts.CodeLength)}}
	if f.opts.SenderName != "" {
		inputs = append(inputs, input{Type: "senderName", Value: f.opts.SenderName})
	}
	inputs = append(inputs, input{Type: "confirmationCode", Value: ""})
	body, err := f.body(phone, inputs...)
	if err != nil {
		return "", err
	}
	resp, err := f.post(ctx, f.base+"/challenge/v1/challenges", body)
	if err != nil {
		return "", err
	}
	if resp.status/100 != 2 {
		return "", orangeError("create challenge", resp)
	}
	id := path.Base(strings.TrimRight(resp.header.Get("Location"), "/"))
	if id == "" || id == "." || id == "/" || id == "challenges" {
		return "", fmt.Errorf("orange: create challenge: HTTP %d without a Location naming the challenge", resp.status)
	}
	return id, nil
}

var (
	errWrongCode        = errors.New("orange: code not accepted")
	errUnknownChallenge = errors.New("orange: challenge unknown")
)

// validate asks Orange whether code answers the challenge ref: nil when it
// does, errWrongCode when it does not (400/403, or no result), and
// errUnknownChallenge for a 404.
func (f *Factor) validate(ctx context.Context, ref string, phone factors.Phone, code string) error {
	body, err := f.body(phone, input{Type: "confirmationCode", Value: code}, input{Type: "info", Value: f.opts.ValidateInfo})
	if err != nil {
		return err
	}
	resp, err := f.post(ctx, f.base+"/challenge/v1/challenges/"+url.PathEscape(ref), body)
	if err != nil {
		return err
	}
	switch {
	case resp.status/100 == 2:
		var b challengeBody
		if json.Unmarshal(resp.body, &b) != nil || len(b.Challenge.Result) == 0 {
			return errWrongCode
		}
		return nil
	case resp.status == http.StatusBadRequest || resp.status == http.StatusForbidden:
		return errWrongCode
	case resp.status == http.StatusNotFound:
		return errUnknownChallenge
	}
	return orangeError("validate challenge", resp)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// post sends body with a bearer token, refreshing the token and trying once
// more after a 401.
func (f *Factor) post(ctx context.Context, u string, body []byte) (*response, error) {
	token, err := f.tokens.Token(ctx, "")
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		resp, err := f.do(ctx, u, token, body)
		if err != nil {
			return nil, err
		}
		if resp.status == http.StatusUnauthorized && attempt == 0 {
			if token, err = f.tokens.Token(ctx, token); err != nil {
				return nil, err
			}
			continue
		}
		return resp, nil
	}
}

func (f *Factor) do(ctx context.Context, u, token string, body []byte) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := f.opts.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds the challenge id, not worth repeating
		}
		return nil, fmt.Errorf("orange: POST %s: %w", strings.TrimPrefix(u, f.base), err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// orangeError names the answer by status and Orange's messageId, never its
// free text (it may quote the number).
func orangeError(what string, resp *response) error {
	var b struct {
		RequestError map[string]struct {
			MessageID string `json:"messageId"`
		} `json:"requestError"`
	}
	_ = json.Unmarshal(resp.body, &b)
	for kind, ex := range b.RequestError {
		if id := strings.Map(keepIDRune, ex.MessageID); id != "" {
			return fmt.Errorf("orange: %s: HTTP %d %s %s", what, resp.status, strings.Map(keepIDRune, kind), id)
		}
	}
	return fmt.Errorf("orange: %s: HTTP %d", what, resp.status)
}

func keepIDRune(r rune) rune {
	if r < 0x80 && (r == '_' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
		return r
	}
	return -1
}

// ---------------------------------------------------------------------------

// plausibleID accepts what Start makes (factors.NewChallengeID: base64url),
// stricter than factors.PlausibleChallengeID alone, which smsotp uses.
func plausibleID(id string) bool {
	if !factors.PlausibleChallengeID(id) {
		return false
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}
