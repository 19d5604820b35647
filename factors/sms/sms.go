// Package sms owns the SMS senders: the Sender interface every factor that texts
// a code goes through, and its implementations — the development senders that
// need no account (the outbox, whose messages are kept in storage and shown at
// /dev/outbox, and the log sender), the providers (Orange SMS messaging, Twilio
// Programmable Messaging, a signed webhook to the operator's own gateway), and
// Failover, which tries several providers in order behind circuit breakers.
//
// Senders are plug-ins by name: the registry in registry.go maps a type name
// ("orange") to its typed Config, decoded strictly from the provider's config
// block by DecodeStrict; Config.Open returns the live Sender. A sender that can
// prove its credentials at boot also implements StartupChecker. Every failure a
// sender can classify is a *SendError saying whether the message was certainly
// not accepted (see Failure): that, and only that, lets Failover try the next
// provider without risking a second SMS.
//
// Senders deliver text; they never generate or see codes as such, and never put
// a secret or a full phone number in an error or a log line. This package
// imports storage and factors (for MaskPhone), never provider, config or cmd.
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
