// Package factors owns the ways otpgate proves that a person holds a phone number:
// the Factor interface the hosted login pages drive, the typed errors those pages
// turn into messages, phone-number parsing, masking and policy (E.164,
// allowed regions), and the Observer that factors, the guard and the senders
// report events to for metrics (observer.go).
//
// Implementations live in sub-packages: factors/smsotp generates codes itself and
// sends them through an SMS sender from factors/sms; factors/orange delegates the
// code to Orange. What those two share around a storage.Challenge (limits and
// their defaults, answer and id checks, outcome mapping) lives here, in
// challenge.go. Factors know nothing about OAuth or HTTP: this package imports
// storage, and it and its sub-packages never import provider or cmd.
package factors

import (
	"context"
	"time"
)

// StartRequest asks a factor to open a challenge for a phone number.
type StartRequest struct {
	FlowID   string // the login flow the challenge belongs to
	Phone    string // E.164, already parsed and checked against the policy
	Locale   string // language of the SMS ("fr", "en-GB", …)
	ClientID string // the relying party, for logs and per-client limits
	IP       string // the user's address as the provider sees it, for per-IP limits ("" if unknown)
}

// ResendRequest asks a factor to send a code again for an open challenge.
type ResendRequest struct {
	ChallengeID string
	Locale      string
	ClientID    string
	IP          string // as in StartRequest
}

// Challenge is what the login page needs to know about an open challenge.
type Challenge struct {
	ID           string
	Phone        string    // E.164; mask it with MaskPhone before showing or logging
	ExpiresAt    time.Time // the current code stops working at this time
	ResendAt     time.Time // the earliest time a new code may be requested
	ResendsLeft  int
	AttemptsLeft int
}

// Result is a successful verification.
type Result struct {
	Phone string   // the verified number, E.164
	AMR   []string // authentication method references (RFC 8176)
}

// Factor is one way of proving possession of a phone number. Implementations are
// safe for concurrent use and return the errors declared in this package.
type Factor interface {
	// Name identifies the factor in configuration and logs ("sms").
	Name() string
	// AMR returns the RFC 8176 method references a success proves (["sms"]).
	AMR() []string
	// Start opens a challenge and sends the first code.
	Start(ctx context.Context, req StartRequest) (Challenge, error)
	// Resend sends a code again for an open challenge: the same code while
	// it is valid where the factor can (smsotp), else a new one, and then the
	// previous code stops working. It never restores the challenge's attempts.
	Resend(ctx context.Context, req ResendRequest) (Challenge, error)
	// Verify checks an answer. A correct answer consumes the challenge.
	Verify(ctx context.Context, challengeID, answer string) (Result, error)
}
