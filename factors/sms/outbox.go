package sms

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/storage"
)

// DefaultOutboxSize is how many messages NewOutbox keeps when max is not positive.
const DefaultOutboxSize = 100

// Outbox is the development and test sender: it "sends" by appending the message
// to the store's outbox, where the /dev/outbox page and tests read it back
// (storage.OutboxStore.ListOutbox). It never fails on its own.
type Outbox struct {
	store storage.OutboxStore
	max   int
	now   func() time.Time
}

var _ Sender = (*Outbox)(nil)

// NewOutbox returns an outbox sender keeping the newest max messages in store.
// max ≤ 0 means DefaultOutboxSize; a nil now means time.Now.
func NewOutbox(store storage.OutboxStore, max int, now func() time.Time) *Outbox {
	if max <= 0 {
		max = DefaultOutboxSize
	}
	if now == nil {
		now = time.Now
	}
	return &Outbox{store: store, max: max, now: now}
}

// Send stores msg under a random id and returns that id.
func (o *Outbox) Send(ctx context.Context, msg Message) (string, error) {
	if err := msg.check(); err != nil {
		return "", err
	}
	m := storage.OutboxMessage{
		ID:       rand.Text(),
		To:       msg.To,
		Body:     msg.Body,
		Locale:   msg.Locale,
		ClientID: msg.ClientID,
		SentAt:   o.now(),
	}
	if err := o.store.AppendOutbox(ctx, m, o.max); err != nil {
		return "", fmt.Errorf("sms outbox: append message to %s: %w", factors.MaskPhone(msg.To), err)
	}
	return m.ID, nil
}
