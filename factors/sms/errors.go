package sms

import (
	"errors"
	"regexp"
	"strings"

	"github.com/otpgate/otpgate/factors"
)

// Failure says what a failed Send proves about the message. The failover
// sender acts on it: a message moves on to the next provider only when it was
// certainly not accepted, so that one code never leaves as two SMS.
type Failure int

const (
	// FailureUnknown: the provider may have accepted the message — the request
	// was written and then the connection dropped, the answer never came, or it
	// could not be understood (a 3xx, a 504 from a gateway). Never sent again.
	// Any error that carries no classification counts as this.
	FailureUnknown Failure = iota
	// FailureUnavailable: the provider did not take the message and the fault
	// is on its side or in its configuration: unreachable (refused, DNS, TLS,
	// a timeout before the request was written), 5xx, 429, credentials or
	// account refused. Counts against the provider's circuit breaker.
	FailureUnavailable
	// FailureRejected: the provider answered that it will not send this
	// message (an invalid or barred number, a text too long, a policy refusal).
	// Not sent; the provider itself is healthy, so its breaker is not charged.
	FailureRejected
)

func (f Failure) String() string {
	switch f {
	case FailureUnavailable:
		return "unavailable"
	case FailureRejected:
		return "rejected"
	}
	return "unknown"
}

// SendError is a failed Send with its classification. Senders return one for
// every failure they can classify; Err says what happened, for logs, without
// secrets or full phone numbers.
type SendError struct {
	Failure Failure
	Err     error
}

// Error returns Err's text.
func (e *SendError) Error() string {
	if e.Err == nil {
		return "sms: send failed (" + e.Failure.String() + ")"
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *SendError) Unwrap() error { return e.Err }

// FailureOf returns the classification of err: that of the outermost
// *SendError in its chain, FailureUnknown when there is none. The outermost one
// wins because a sender that wraps others (failover) sums their failures up.
func FailureOf(err error) Failure {
	var se *SendError
	if errors.As(err, &se) {
		return se.Failure
	}
	return FailureUnknown
}

// Retryable reports whether err proves that the message was not accepted, so
// that another provider may be asked to send it without risking a second SMS.
func Retryable(err error) bool {
	return err != nil && FailureOf(err) != FailureUnknown
}

func unavailable(err error) error { return &SendError{Failure: FailureUnavailable, Err: err} }
func rejected(err error) error    { return &SendError{Failure: FailureRejected, Err: err} }
func unknown(err error) error     { return &SendError{Failure: FailureUnknown, Err: err} }

// phoneLike matches what may be a phone number inside a provider's error text
// ("The 'To' number +15005550001 is not a valid phone number.").
var phoneLike = regexp.MustCompile(`\+?\d[\d ().-]{4,}\d`)

// maxProviderText bounds how much of a provider's error text reaches an error.
const maxProviderText = 200

// scrub makes a provider's free text safe for errors and logs: phone numbers
// masked, control characters dropped, length bounded.
func scrub(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = phoneLike.ReplaceAllStringFunc(s, func(m string) string {
		var digits strings.Builder
		for _, r := range m {
			if r >= '0' && r <= '9' {
				digits.WriteRune(r)
			}
		}
		if digits.Len() < 6 {
			return m // a code like 21211 or a count, not a number
		}
		return factors.MaskPhone("+" + digits.String())
	})
	if r := []rune(s); len(r) > maxProviderText {
		s = string(r[:maxProviderText]) + "…"
	}
	return strings.TrimSpace(s)
}
