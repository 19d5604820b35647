package factors

import (
	"errors"
	"fmt"
	"time"
)

// Errors a factor returns. Compare with errors.Is; the page maps each one to a
// fixed message and never shows err.Error().
var (
	// ErrExpired: the code's lifetime has passed; the user needs a new code.
	ErrExpired = errors.New("factors: code expired")
	// ErrTooManyAttempts: the challenge is locked after too many wrong answers.
	ErrTooManyAttempts = errors.New("factors: too many attempts")
	// ErrTooManyResends: the challenge has sent every code it is allowed to.
	ErrTooManyResends = errors.New("factors: too many resends")
	// ErrNotFound: the challenge is unknown, already used, or long expired.
	ErrNotFound = errors.New("factors: challenge not found")
	// ErrInvalidPhone: the input is not a valid phone number.
	ErrInvalidPhone = errors.New("factors: invalid phone number")
	// ErrRegionNotAllowed: the number belongs to a region the policy refuses.
	ErrRegionNotAllowed = errors.New("factors: phone region not allowed")
	// ErrNumberTypeNotAllowed: the number is of a type the policy refuses
	// (premium rate, shared cost, VoIP, a fixed line…).
	ErrNumberTypeNotAllowed = errors.New("factors: phone number type not allowed")
	// ErrSMSUnavailable: sending is stopped for now (an SMS budget is spent).
	// It comes inside a *LimitError that says for how long.
	ErrSMSUnavailable = errors.New("factors: sms temporarily unavailable")
	// ErrCountryUnavailable: sending to the number's country is stopped for
	// now (the pumping breaker is open). It comes inside a *LimitError.
	ErrCountryUnavailable = errors.New("factors: sms temporarily unavailable for this country")
)

// LimitError says an abuse limit refused the request. Reason names the limit
// ("phone", "ip", "budget", …) for logs and metrics only: a page must never
// show it, nor tell one limit from another beyond what the user needs (when
// to try again, and Err). Err is nil for an ordinary rate limit, or
// ErrSMSUnavailable, ErrCountryUnavailable or ErrTooManyAttempts.
type LimitError struct {
	Reason     string
	RetryAfter time.Duration
	Err        error
}

// Error names the limit and the wait, for logs.
func (e *LimitError) Error() string {
	s := fmt.Sprintf("factors: limit %q reached, retry after %s", e.Reason, e.RetryAfter)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err.
func (e *LimitError) Unwrap() error { return e.Err }

// RateLimitedError says a new code was requested before the cooldown ended.
type RateLimitedError struct {
	RetryAfter time.Duration // how long to wait before asking again
}

// Error describes the wait, for logs.
func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("factors: rate limited, retry after %s", e.RetryAfter)
}

// InvalidCodeError says the answer was wrong and how many attempts remain.
type InvalidCodeError struct {
	Remaining int
}

// Error reports the attempts left, for logs.
func (e *InvalidCodeError) Error() string {
	return fmt.Sprintf("factors: invalid code, %d attempts remaining", e.Remaining)
}

// DeliveryError says the SMS sender failed. Err is the sender's error, for logs.
type DeliveryError struct {
	Err error
}

// Error includes the sender's error, for logs.
func (e *DeliveryError) Error() string {
	if e.Err == nil {
		return "factors: sms delivery failed"
	}
	return "factors: sms delivery failed: " + e.Err.Error()
}

// Unwrap returns the sender's error.
func (e *DeliveryError) Unwrap() error { return e.Err }
