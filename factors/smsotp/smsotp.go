// Package smsotp is the SMS one-time-code factor: it generates the codes itself
// (crypto/rand, no modulo bias), keeps only a keyed hash of each code in a
// storage.ChallengeStore (with the code sealed under a key derived from the
// hash key, so that a resend can text the same code again), texts the code through an sms.Sender using the SMS
// texts in templates, and checks answers with the store's atomic verification
// (lifetime, attempt limit, single use).
//
// It implements factors.Factor. It imports storage, templates, factors and
// factors/sms, never provider or cmd. It never logs: errors carry context for
// the caller, and neither they nor anything else here contain a code or a full
// phone number.
package smsotp

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/templates"
)

// Name is the factor's name in configuration and logs.
const Name = "sms"

// Defaults for the zero values of Options (NIST SP 800-63B out-of-band codes).
const (
	DefaultCodeLength     = 6
	DefaultTTL            = factors.DefaultTTL
	DefaultMaxAttempts    = factors.DefaultMaxAttempts
	DefaultResendCooldown = factors.DefaultResendCooldown
	DefaultMaxResends     = factors.DefaultMaxResends
)

// MinHashKeyLength is the shortest HashKey New accepts, in bytes.
const MinHashKeyLength = 32

// Options configures the factor. Zero values take the defaults above; HashKey
// and Origin are required.
type Options struct {
	CodeLength     int           // digits per code, 4–10 (6)
	TTL            time.Duration // lifetime of each code, 1m–1h (5m)
	MaxAttempts    int           // wrong answers allowed per challenge, resends included, 1–20 (5)
	ResendCooldown time.Duration // minimum time between two codes, 1s–10m and below TTL (30s)
	MaxResends     int           // new codes allowed after the first, 1–10 (3)
	HashKey        []byte        // HMAC key for code hashes (and, through HKDF, of the sealed codes), at least MinHashKeyLength bytes
	Origin         string        // issuer host for the SMS origin line: "login.example.com", "localhost:8080"
	Policy         factors.PhonePolicy
	Now            func() time.Time // time.Now
	Rand           io.Reader        // crypto/rand.Reader
}

// Factor is the SMS one-time-code factor. It is safe for concurrent use.
type Factor struct {
	store  storage.ChallengeStore
	sender sms.Sender
	opts   Options
	seal   cipher.AEAD // AES-256-GCM under sealKey(HashKey)
}

// sealInfo is the HKDF info that derives the code-sealing key from HashKey.
const sealInfo = "otpgate sms code seal v1"

var _ factors.Factor = (*Factor)(nil)

// New returns the factor, or an error naming every invalid option.
func New(store storage.ChallengeStore, sender sms.Sender, opts Options) (*Factor, error) {
	opts = withDefaults(opts)
	var errs []error
	if store == nil {
		errs = append(errs, errors.New("smsotp: a challenge store is required"))
	}
	if sender == nil {
		errs = append(errs, errors.New("smsotp: an sms sender is required"))
	}
	errs = append(errs, validate(opts)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	opts.HashKey = append([]byte(nil), opts.HashKey...)
	aead, err := newSeal(opts.HashKey)
	if err != nil {
		return nil, err
	}
	return &Factor{store: store, sender: sender, opts: opts, seal: aead}, nil
}

// newSeal returns AES-256-GCM under a key derived from hashKey with
// HKDF-SHA256 (info sealInfo): no option of its own, and a key distinct from
// the HMAC key of the code hashes.
func newSeal(hashKey []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, hashKey, nil, sealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("smsotp: derive seal key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("smsotp: seal cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("smsotp: seal cipher: %w", err)
	}
	return aead, nil
}

func withDefaults(o Options) Options {
	if o.CodeLength == 0 {
		o.CodeLength = DefaultCodeLength
	}
	factors.DefaultLimits(&o.TTL, &o.MaxAttempts, &o.ResendCooldown, &o.MaxResends)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return o
}

func validate(o Options) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("smsotp: "+format, args...))
	}
	if o.CodeLength < 4 || o.CodeLength > 10 {
		bad("option 'code_length' must be between 4 and 10, got '%d'", o.CodeLength)
	}
	if o.TTL < time.Minute || o.TTL > time.Hour {
		bad("option 'ttl' must be between 1m and 1h, got '%s'", o.TTL)
	}
	if o.MaxAttempts < 1 || o.MaxAttempts > 20 {
		bad("option 'max_attempts' must be between 1 and 20, got '%d'", o.MaxAttempts)
	}
	if o.ResendCooldown < time.Second || o.ResendCooldown > 10*time.Minute || o.ResendCooldown >= o.TTL {
		bad("option 'resend_cooldown' must be between 1s and 10m and shorter than 'ttl', got '%s'", o.ResendCooldown)
	}
	if o.MaxResends < 1 || o.MaxResends > 10 {
		bad("option 'max_resends' must be between 1 and 10, got '%d'", o.MaxResends)
	}
	if len(o.HashKey) < MinHashKeyLength {
		bad("option 'hash_key' must be at least %d bytes, got %d", MinHashKeyLength, len(o.HashKey))
	}
	if err := checkOrigin(o.Origin); err != nil {
		bad("option 'origin' %v, got %q", err, o.Origin)
	}
	if err := o.Policy.Validate(); err != nil {
		bad("option 'policy': %v", err)
	}
	return errs
}

// checkOrigin accepts a bare host with an optional port, as the origin-bound
// SMS line expects: no scheme, path, user or spaces.
func checkOrigin(origin string) error {
	if origin == "" {
		return errors.New("is required (the issuer's host, e.g. login.example.com)")
	}
	u, err := url.Parse("//" + origin)
	if err != nil || u.Host != origin || u.User != nil || u.Path != "" || strings.ContainsAny(origin, " \t\r\n#@") {
		return errors.New("must be a host with an optional port, without scheme or path")
	}
	return nil
}

// Name returns "sms".
func (f *Factor) Name() string { return Name }

// AMR returns ["sms"] (RFC 8176).
func (f *Factor) AMR() []string { return []string{"sms"} }

// Start opens a challenge for req.Phone and texts its first code. When the
// sender fails, the challenge is deleted and the error is a *factors.DeliveryError.
func (f *Factor) Start(ctx context.Context, req factors.StartRequest) (factors.Challenge, error) {
	phone, err := factors.CheckE164(req.Phone, f.opts.Policy)
	if err != nil {
		return factors.Challenge{}, err
	}
	id, err := factors.NewChallengeID(f.opts.Rand)
	if err != nil {
		return factors.Challenge{}, fmt.Errorf("smsotp: challenge id: %w", err)
	}
	code, err := generateCode(f.opts.Rand, f.opts.CodeLength)
	if err != nil {
		return factors.Challenge{}, err
	}
	body, err := f.render(req.Locale, code, f.opts.TTL)
	if err != nil {
		return factors.Challenge{}, err
	}
	sealed, err := f.sealCode(id, code)
	if err != nil {
		return factors.Challenge{}, err
	}
	now := f.opts.Now()
	c := storage.Challenge{
		ID:          id,
		FlowID:      req.FlowID,
		Phone:       phone.E164,
		CodeHash:    f.hash(id, code),
		SealedCode:  sealed,
		MaxAttempts: f.opts.MaxAttempts,
		Sends:       1,
		LastSentAt:  now,
		ExpiresAt:   now.Add(f.opts.TTL),
		CreatedAt:   now,
	}
	if err := f.store.CreateChallenge(ctx, c); err != nil {
		return factors.Challenge{}, fmt.Errorf("smsotp: create challenge: %w", err)
	}
	msg := sms.Message{To: phone.E164, Body: body, Locale: req.Locale, ClientID: req.ClientID}
	if _, err := f.sender.Send(ctx, msg); err != nil {
		// The user never got this code: leave nothing that could be verified or
		// counted. The request context may be the reason the send failed.
		if derr := f.store.DeleteChallenge(context.WithoutCancel(ctx), id); derr != nil && !errors.Is(derr, storage.ErrNotFound) {
			err = errors.Join(err, fmt.Errorf("smsotp: delete undelivered challenge: %w", derr))
		}
		return factors.Challenge{}, &factors.DeliveryError{Err: err}
	}
	return f.challenge(c), nil
}

// Resend texts the challenge's code again while it is valid (for at least
// another minute, so that the SMS can say so), else a new code, which
// replaces the old one. Either way the attempt counter goes on where it was:
// asking for another SMS never buys more guesses. Errors: factors.ErrNotFound,
// *factors.RateLimitedError (cooldown), factors.ErrTooManyResends,
// factors.ErrTooManyAttempts (locked), *factors.DeliveryError. After a delivery
// failure the challenge stays open and the send counts, so a broken provider
// cannot be used to bypass the resend limit.
//
// The code read here is the one the store keeps: only a successful resend
// changes a challenge's code, and it starts the cooldown, so a racing resend
// that read the same record is refused (too soon) rather than texting a code
// that is no longer current.
func (f *Factor) Resend(ctx context.Context, req factors.ResendRequest) (factors.Challenge, error) {
	if !factors.PlausibleChallengeID(req.ChallengeID) {
		return factors.Challenge{}, factors.ErrNotFound
	}
	cur, err := f.store.GetChallenge(ctx, req.ChallengeID)
	if err := factors.StoreError("smsotp: resend challenge", err); err != nil {
		return factors.Challenge{}, err
	}
	now := f.opts.Now()
	r := storage.Resend{
		Now:      now,
		Cooldown: f.opts.ResendCooldown,
		MaxSends: 1 + f.opts.MaxResends,
	}
	var code string
	validFor := cur.ExpiresAt.Sub(now)
	if validFor >= time.Minute {
		if c, ok := f.unsealCode(req.ChallengeID, cur.SealedCode); ok {
			code, r.KeepCode = c, true
		}
	}
	if !r.KeepCode {
		// Expired (or about to), or sealed under another key: a new code.
		if code, err = generateCode(f.opts.Rand, f.opts.CodeLength); err != nil {
			return factors.Challenge{}, err
		}
		if r.SealedCode, err = f.sealCode(req.ChallengeID, code); err != nil {
			return factors.Challenge{}, err
		}
		r.CodeHash = f.hash(req.ChallengeID, code)
		r.ExpiresAt = now.Add(f.opts.TTL)
		validFor = f.opts.TTL
	}
	body, err := f.render(req.Locale, code, validFor)
	if err != nil {
		return factors.Challenge{}, err
	}
	res, err := f.store.ResendChallenge(ctx, req.ChallengeID, r)
	if err := factors.StoreError("smsotp: resend challenge", err); err != nil {
		return factors.Challenge{}, err
	}
	if err := factors.ResendRefusal("smsotp", res); err != nil {
		return factors.Challenge{}, err
	}
	msg := sms.Message{To: res.Challenge.Phone, Body: body, Locale: req.Locale, ClientID: req.ClientID}
	if _, err := f.sender.Send(ctx, msg); err != nil {
		return factors.Challenge{}, &factors.DeliveryError{Err: err}
	}
	return f.challenge(res.Challenge), nil
}

// Verify checks answer against the challenge's current code. Spaces are
// ignored; anything but CodeLength digits is a wrong answer and counts as an
// attempt. Errors: factors.ErrNotFound, *factors.InvalidCodeError,
// factors.ErrExpired, factors.ErrTooManyAttempts.
func (f *Factor) Verify(ctx context.Context, challengeID, answer string) (factors.Result, error) {
	if !factors.PlausibleChallengeID(challengeID) {
		return factors.Result{}, factors.ErrNotFound
	}
	code, ok := factors.NormalizeAnswer(answer, f.opts.CodeLength)
	if !ok {
		// No code is ever empty, so this hash matches nothing, and the store
		// still counts the attempt: malformed answers are not free guesses.
		code = ""
	}
	res, err := f.store.VerifyChallenge(ctx, challengeID, f.hash(challengeID, code), f.opts.Now())
	if err := factors.StoreError("smsotp: verify challenge", err); err != nil {
		return factors.Result{}, err
	}
	switch res.Outcome {
	case storage.VerifyOK:
		return factors.Result{Phone: res.Challenge.Phone, AMR: f.AMR()}, nil
	case storage.VerifyWrongCode:
		return factors.Result{}, &factors.InvalidCodeError{Remaining: res.Remaining}
	}
	if err := factors.VerifyRefusal(res.Outcome); err != nil {
		return factors.Result{}, err
	}
	return factors.Result{}, fmt.Errorf("smsotp: verify challenge: unexpected outcome %s", res.Outcome)
}

// render writes the SMS for code, which stays valid for validFor.
func (f *Factor) render(locale, code string, validFor time.Duration) (string, error) {
	body, err := templates.SMS(locale, templates.SMSData{
		Code:       code,
		Origin:     f.opts.Origin,
		TTLMinutes: int(validFor / time.Minute), // rounded down: never promise more time than there is
	})
	if err != nil {
		return "", fmt.Errorf("smsotp: render sms: %w", err)
	}
	return body, nil
}

// challenge describes a stored challenge for the login page.
func (f *Factor) challenge(c storage.Challenge) factors.Challenge {
	return factors.ChallengeFrom(c, f.opts.ResendCooldown, f.opts.MaxResends)
}

// hash binds a code to its challenge, so a hash copied from one challenge
// record is worthless for another.
func (f *Factor) hash(challengeID, code string) []byte {
	mac := hmac.New(sha256.New, f.opts.HashKey)
	mac.Write([]byte(challengeID))
	mac.Write([]byte{0})
	mac.Write([]byte(code))
	return mac.Sum(nil)
}

// sealCode encrypts code for the challenge record with AES-256-GCM, the
// challenge id as additional data (a sealed code copied to another record
// does not open): nonce ‖ ciphertext ‖ tag. The nonce is random from
// crypto/rand, whatever Options.Rand is, so that a fixed test source never
// repeats a nonce under the key.
func (f *Factor) sealCode(challengeID, code string) ([]byte, error) {
	nonce := make([]byte, f.seal.NonceSize(), f.seal.NonceSize()+len(code)+f.seal.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("smsotp: seal code: %w", err)
	}
	return f.seal.Seal(nonce, nonce, []byte(code), []byte(challengeID)), nil
}

// unsealCode opens a sealed code; false when it does not open (absent,
// tampered with, sealed under another hash key or for another challenge) or
// is not a code of the configured length.
func (f *Factor) unsealCode(challengeID string, sealed []byte) (string, bool) {
	n := f.seal.NonceSize()
	if len(sealed) < n+f.seal.Overhead() {
		return "", false
	}
	plain, err := f.seal.Open(nil, sealed[:n], sealed[n:], []byte(challengeID))
	if err != nil {
		return "", false
	}
	code, ok := factors.NormalizeAnswer(string(plain), f.opts.CodeLength)
	return code, ok && code == string(plain)
}
