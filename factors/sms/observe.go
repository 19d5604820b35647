package sms

import (
	"context"

	"github.com/otpgate/otpgate/factors"
)

// Observe returns s reporting each message's result to o under the provider
// name; o nil returns s. Setup.Open puts it around every provider of a
// Failover, so that a message a fallback delivers counts as failed at the
// first provider and sent at the second.
func Observe(provider string, s Sender, o factors.Observer) Sender {
	if o == nil {
		return s
	}
	return observed{provider: provider, next: s, o: o}
}

type observed struct {
	provider string
	next     Sender
	o        factors.Observer
}

func (w observed) Send(ctx context.Context, msg Message) (string, error) {
	id, err := w.next.Send(ctx, msg)
	cc := callingCode(msg.To)
	if err != nil {
		w.o.SMSFailed(w.provider, cc, FailureOf(err).String())
		return id, err
	}
	w.o.SMSSent(w.provider, cc)
	return id, nil
}

// StartupCheck runs the wrapped sender's check, if it has one.
func (w observed) StartupCheck(ctx context.Context) error {
	if c, ok := w.next.(StartupChecker); ok {
		return c.StartupCheck(ctx)
	}
	return nil
}
