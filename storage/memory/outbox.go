package memory

import (
	"context"
	"fmt"

	"github.com/otpgate/otpgate/storage"
)

// AppendOutbox adds m in front of the outbox, keeps the newest max messages
// and pushes the outbox's expiry to storage.OutboxTTL from now. max must be
// positive.
func (s *Store) AppendOutbox(ctx context.Context, m storage.OutboxMessage, max int) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: append outbox: %w", err)
	}
	defer s.mu.Unlock()
	if max < 1 {
		return fmt.Errorf("memory: append outbox: max must be positive, got %d", max)
	}
	now := s.now()
	if expired(s.outboxExpiresAt, now) {
		s.outbox = nil
	}
	n := min(len(s.outbox)+1, max)
	// A fresh slice each time: ListOutbox hands out copies, and max is small.
	out := make([]storage.OutboxMessage, n)
	out[0] = m
	copy(out[1:], s.outbox)
	s.outbox = out
	s.outboxExpiresAt = now.Add(storage.OutboxTTL)
	return nil
}

// ListOutbox returns up to limit messages, newest first; a non-positive limit
// returns none.
func (s *Store) ListOutbox(ctx context.Context, limit int) ([]storage.OutboxMessage, error) {
	if err := s.lock(ctx); err != nil {
		return nil, fmt.Errorf("memory: list outbox: %w", err)
	}
	defer s.mu.Unlock()
	if expired(s.outboxExpiresAt, s.now()) {
		s.outbox = nil
	}
	n := min(len(s.outbox), max(limit, 0))
	out := make([]storage.OutboxMessage, n)
	copy(out, s.outbox)
	return out, nil
}
