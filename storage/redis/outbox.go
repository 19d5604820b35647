package redis

import (
	"context"
	"encoding/json"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/storage"
)

// AppendOutbox adds m in front of the outbox list and keeps the newest max
// messages (none when max <= 0); the list expires OutboxTTL after the last
// append. One round trip (MULTI: LPUSH, LTRIM, PEXPIRE).
func (s *Store) AppendOutbox(ctx context.Context, m storage.OutboxMessage, max int) error {
	b, err := json.Marshal(outboxWire{ID: m.ID, To: m.To, Body: m.Body, Locale: m.Locale, ClientID: m.ClientID, SentAt: m.SentAt})
	if err != nil {
		return fmt.Errorf("redis: append outbox %s: encode: %w", m.ID, err)
	}
	key := s.outboxKey()
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		if max <= 0 {
			p.Del(ctx, key)
			return nil
		}
		p.LPush(ctx, key, b)
		p.LTrim(ctx, key, 0, int64(max)-1)
		p.PExpire(ctx, key, storage.OutboxTTL)
		return nil
	})
	return fail(err, "append outbox %s", m.ID)
}

// ListOutbox returns up to limit messages, newest first.
func (s *Store) ListOutbox(ctx context.Context, limit int) ([]storage.OutboxMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: list outbox: %w", err)
	}
	msgs := []storage.OutboxMessage{}
	if limit <= 0 {
		return msgs, nil
	}
	vals, err := s.c.LRange(ctx, s.outboxKey(), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fail(err, "list outbox")
	}
	for _, v := range vals {
		var w outboxWire
		if err := json.Unmarshal([]byte(v), &w); err != nil {
			return nil, fmt.Errorf("redis: list outbox: decode: %w", err)
		}
		msgs = append(msgs, storage.OutboxMessage{ID: w.ID, To: w.To, Body: w.Body, Locale: w.Locale, ClientID: w.ClientID, SentAt: w.SentAt})
	}
	return msgs, nil
}
