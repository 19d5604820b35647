package factors

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// Defaults of the challenge limits that the SMS factors (smsotp, orange)
// share, for the zero values of their options (NIST SP 800-63B out-of-band
// codes).
const (
	DefaultTTL            = 5 * time.Minute
	DefaultMaxAttempts    = 5
	DefaultResendCooldown = 30 * time.Second
	DefaultMaxResends     = 3
)

// DefaultLimits sets each zero limit to its default above: the lifetime of a
// code, the wrong answers allowed, the cooldown between sends and the resends
// allowed after the first send.
func DefaultLimits(ttl *time.Duration, maxAttempts *int, resendCooldown *time.Duration, maxResends *int) {
	if *ttl == 0 {
		*ttl = DefaultTTL
	}
	if *maxAttempts == 0 {
		*maxAttempts = DefaultMaxAttempts
	}
	if *resendCooldown == 0 {
		*resendCooldown = DefaultResendCooldown
	}
	if *maxResends == 0 {
		*maxResends = DefaultMaxResends
	}
}

// CheckE164 parses phone, which must already be in E.164 form (the form a
// StartRequest carries), and checks it against the policy p.
func CheckE164(phone string, p PhonePolicy) (Phone, error) {
	parsed, err := ParsePhone(phone, "")
	if err != nil {
		return Phone{}, err
	}
	if parsed.E164 != phone {
		return Phone{}, fmt.Errorf("%w: not in E.164 form", ErrInvalidPhone)
	}
	if err := p.Check(parsed); err != nil {
		return Phone{}, err
	}
	return parsed, nil
}

// MaxAnswerLength bounds the answer NormalizeAnswer looks at: anything longer
// is wrong whatever it contains.
const MaxAnswerLength = 64

// NormalizeAnswer drops white space from answer and accepts exactly digits
// ASCII digits.
func NormalizeAnswer(answer string, digits int) (string, bool) {
	if len(answer) > MaxAnswerLength {
		return "", false
	}
	var b strings.Builder
	for _, r := range answer {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\u00a0' || r == '\u202f':
		default:
			return "", false
		}
	}
	if b.Len() != digits {
		return "", false
	}
	return b.String(), true
}

// MaxChallengeIDLength bounds the challenge ids PlausibleChallengeID accepts.
const MaxChallengeIDLength = 64

// PlausibleChallengeID rejects, before they reach the store, challenge ids no
// factor can have issued: empty or longer than MaxChallengeIDLength. They come
// from forms, and an attacker's megabyte is not a key.
func PlausibleChallengeID(id string) bool {
	return id != "" && len(id) <= MaxChallengeIDLength
}

// NewChallengeID returns a 128-bit challenge id read from r, base64url without
// padding. Its error is r's, unwrapped: the caller names itself.
func NewChallengeID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ChallengeFrom describes a stored challenge for the login page, for a factor
// with the given resend cooldown and resends allowed after the first send.
func ChallengeFrom(c storage.Challenge, cooldown time.Duration, maxResends int) Challenge {
	return Challenge{
		ID:           c.ID,
		Phone:        c.Phone,
		ExpiresAt:    c.ExpiresAt,
		ResendAt:     c.LastSentAt.Add(cooldown),
		ResendsLeft:  max(0, 1+maxResends-c.Sends),
		AttemptsLeft: max(0, c.MaxAttempts-c.Attempts),
	}
}

// ResendRefusal maps the outcome of a store's ResendChallenge to the factor's
// answer: nil for storage.ResendOK, a *RateLimitedError, ErrTooManyResends or
// ErrTooManyAttempts for a refusal, and for any other outcome an error that
// begins with the factor's name ("smsotp: resend challenge: unexpected outcome …").
func ResendRefusal(factor string, r storage.ResendResult) error {
	switch r.Outcome {
	case storage.ResendOK:
		return nil
	case storage.ResendTooSoon:
		return &RateLimitedError{RetryAfter: r.RetryAfter}
	case storage.ResendTooMany:
		return ErrTooManyResends
	case storage.ResendLocked:
		return ErrTooManyAttempts
	}
	return fmt.Errorf("%s: resend challenge: unexpected outcome %s", factor, r.Outcome)
}

// VerifyRefusal maps the refusals a store's VerifyChallenge or CountAttempt
// reports to the factor's answer: ErrExpired for storage.VerifyExpired,
// ErrTooManyAttempts for storage.VerifyLocked, and nil for any other outcome,
// which the factor judges itself.
func VerifyRefusal(o storage.VerifyOutcome) error {
	switch o {
	case storage.VerifyExpired:
		return ErrExpired
	case storage.VerifyLocked:
		return ErrTooManyAttempts
	}
	return nil
}

// StoreError maps an error of a ChallengeStore call to the factor's answer:
// nil for nil, ErrNotFound for storage.ErrNotFound, and any other error
// wrapped after op ("smsotp: resend challenge").
func StoreError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return ErrNotFound
	}
	return fmt.Errorf("%s: %w", op, err)
}
