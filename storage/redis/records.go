package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/storage"
)

// Helpers shared by the records stored as one JSON string: flows, browser
// sessions, consents, clients and signing keys. Each record has its own wire
// struct in wire.go, so that renaming a field of a storage type never silently
// changes what is stored.

// getJSON reads key into v. format and args name the operation in errors.
func (s *Store) getJSON(ctx context.Context, key string, v any, format string, args ...any) error {
	b, err := s.c.Get(ctx, key).Bytes()
	if err != nil {
		return fail(err, format, args...)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("redis: %s: decode: %w", fmt.Sprintf(format, args...), err)
	}
	return nil
}

// createJSON stores v under key, expiring at pxat (0: never), unless key exists.
func (s *Store) createJSON(ctx context.Context, key string, v any, pxat int64, format string, args ...any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("redis: %s: encode: %w", fmt.Sprintf(format, args...), err)
	}
	created, err := s.runScript(ctx, createJSON, []string{key}, b, pxat).Int()
	if err != nil {
		return fail(err, format, args...)
	}
	if created == 0 {
		return fmt.Errorf("redis: %s: %w", fmt.Sprintf(format, args...), storage.ErrAlreadyExists)
	}
	return nil
}

// setJSON stores v under key, replacing any previous value, expiring at pxat.
func (s *Store) setJSON(ctx context.Context, key string, v any, pxat int64, format string, args ...any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("redis: %s: encode: %w", fmt.Sprintf(format, args...), err)
	}
	// SET … PXAT in one command: the value never exists without its expiry.
	err = s.c.Do(ctx, "SET", key, b, "PXAT", pxat).Err()
	return fail(err, format, args...)
}

// del removes key; ErrNotFound when it did not exist.
func (s *Store) del(ctx context.Context, key string, format string, args ...any) error {
	n, err := s.c.Del(ctx, key).Result()
	if err == nil && n == 0 {
		err = goredis.Nil
	}
	return fail(err, format, args...)
}

// swap runs compareAndSet: it writes b (expiring at pxat, 0: never) over keys[0]
// if the stored version is still expected, and when keys[1] is given adds
// member with score to that index. It reports whether it wrote; a record that
// vanished meanwhile is ErrNotFound.
//
// Update* call it in a loop of at most casTries reads, each applying the
// caller's update to a fresh copy, and give up with storage.ErrConflict.
func (s *Store) swap(ctx context.Context, keys []string, expected int64, b []byte, pxat int64, member string, score int64) (bool, error) {
	n, err := s.runScript(ctx, compareAndSet, keys, expected, b, pxat, member, score).Int()
	return n == 1, err
}

// backoff waits a random moment, growing with the lost tries up to 16 ms, so
// that writers that just collided spread out; it returns early with the
// context's error.
func backoff(ctx context.Context, try int) error {
	t := time.NewTimer(rand.N(time.Millisecond << min(try, 4)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// conflict is the error of an Update* that lost casTries races.
func conflict(format string, args ...any) error {
	return fmt.Errorf("redis: %s: the record changed %d times while updating: %w",
		fmt.Sprintf(format, args...), casTries, storage.ErrConflict)
}
