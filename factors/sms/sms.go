// Package sms owns the SMS senders: the Sender interface every factor that texts
// a code goes through, and the development senders that need no account — the
// outbox (messages kept in storage and shown at /dev/outbox, also what tests read)
// and the log sender. Real providers (Orange SMS, Twilio, a generic webhook, and
// a failover sender that tries several in turn) come later, as further Sender
// implementations in this package.
//
// Senders deliver text; they never generate or see codes as such, and never log a
// full phone number. This package imports storage and factors (for MaskPhone),
// never provider or cmd.
package sms

import (
	"context"
	"errors"
)

// Message is one SMS to send.
type Message struct {
	To       string // E.164
	Body     string
	Locale   string // language of Body, for providers and the outbox
	ClientID string // the relying party on whose behalf the code is sent
}

// Sender delivers SMS messages. Implementations are safe for concurrent use.
type Sender interface {
	// Send delivers msg and returns the provider's id for it. An error means the
	// message was not accepted.
	Send(ctx context.Context, msg Message) (providerMessageID string, err error)
}

// errIncomplete rejects a message without a recipient or a body before it
// reaches a provider.
var errIncomplete = errors.New("sms: message needs a recipient and a body")

func (m Message) check() error {
	if m.To == "" || m.Body == "" {
		return errIncomplete
	}
	return nil
}
