package factors

import (
	"context"
	"errors"
)

// Observer is told what happens to SMS and challenges, for metrics. It is
// defined here so that factors and senders can report events without
// importing whoever counts them (provider implements it); implementations
// must be cheap and safe for concurrent use. Calling codes are the E.164
// country calling code (33), or 0 when the number could not be parsed.
type Observer interface {
	// SMSSent: provider accepted a message to a number of callingCode.
	SMSSent(provider string, callingCode int)
	// SMSFailed: provider did not accept it; reason is the failure class
	// ("unavailable", "rejected", "unknown").
	SMSFailed(provider string, callingCode int, reason string)
	// SMSRefused: an abuse limit stopped the message before any provider;
	// reason is the limit's name (the LimitError's Reason).
	SMSRefused(callingCode int, reason string)
	// Challenge: a challenge of factor had outcome (one of the Outcome
	// constants).
	Challenge(factor, outcome string)
}

// Challenge outcomes reported to an Observer.
const (
	OutcomeStarted  = "started"  // a challenge was opened and its first code sent
	OutcomeVerified = "verified" // a right answer
	OutcomeFailed   = "failed"   // a wrong answer, with attempts left
	OutcomeLocked   = "locked"   // refused: too many wrong answers
	OutcomeExpired  = "expired"  // the answer came after the code's lifetime
)

// Observe returns f reporting its challenge outcomes to o; o nil returns f.
// Put it outermost (around the guard) so that a challenge the guard locks
// counts as locked.
func Observe(f Factor, o Observer) Factor {
	if o == nil {
		return f
	}
	return observed{Factor: f, o: o}
}

type observed struct {
	Factor
	o Observer
}

func (w observed) Start(ctx context.Context, req StartRequest) (Challenge, error) {
	ch, err := w.Factor.Start(ctx, req)
	if err == nil {
		w.o.Challenge(w.Name(), OutcomeStarted)
	}
	return ch, err
}

func (w observed) Verify(ctx context.Context, challengeID, answer string) (Result, error) {
	res, err := w.Factor.Verify(ctx, challengeID, answer)
	var invalid *InvalidCodeError
	switch {
	case err == nil:
		w.o.Challenge(w.Name(), OutcomeVerified)
	case errors.As(err, &invalid):
		w.o.Challenge(w.Name(), OutcomeFailed)
	case errors.Is(err, ErrTooManyAttempts):
		w.o.Challenge(w.Name(), OutcomeLocked)
	case errors.Is(err, ErrExpired):
		w.o.Challenge(w.Name(), OutcomeExpired)
	}
	return res, err
}
