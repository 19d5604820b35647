package redis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/storage"
)

// addCount is storage.AddToWindow and storage.WindowEstimate in Lua, on the
// HASH slidingWindow keeps (fields w, c, p) and on Redis's clock, so that a
// count added here is the count Allow limits.
//
// KEYS[1] counters; ARGV[1] delta, ARGV[2] window (µs), ARGV[3] optional: now
// (µs) instead of TIME (tests). Returns the estimate as a string: Redis would
// truncate a Lua number to an integer.
var addCount = goredis.NewScript(`
local delta, w = tonumber(ARGV[1]), tonumber(ARGV[2])
` + readWindow + `if delta ~= 0 then
  cur = cur + delta
  if cur < 0 then
    prev = math.max(0, prev + cur)
    cur = 0
  end
  redis.call('HSET', KEYS[1], 'w', string.format('%d', idx), 'c', cur, 'p', prev)
  redis.call('PEXPIRE', KEYS[1], math.ceil(2 * w / 1000))
end
return string.format('%.17g', prev * (w - e) / w + cur)
`)

// AddCount adds delta to the sliding-window counter key, the one Allow
// limits, and returns its estimate; see storage.Counters. One script call.
func (s *Store) AddCount(ctx context.Context, key string, delta int64, window time.Duration) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("redis: add count: %w", err)
	}
	if window <= 0 {
		return 0, fmt.Errorf("redis: add count: window must be positive, got %v", window)
	}
	w := max(window.Microseconds(), 1)
	res, err := s.runScript(ctx, addCount, []string{s.limiterKey(key)}, delta, w).Text()
	if err != nil {
		return 0, fail(err, "add count") // the key may hold a hashed phone number
	}
	est, err := strconv.ParseFloat(res, 64)
	if err != nil {
		return 0, fmt.Errorf("redis: add count: unexpected script reply %q", res)
	}
	return est, nil
}

// AddCounts runs the AddCount script for every change in one pipeline: one
// round trip on a standalone server, one per node on a cluster.
func (s *Store) AddCounts(ctx context.Context, changes []storage.CountChange) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: add count: %w", err)
	}
	calls := make([]scriptCall, len(changes))
	for i, c := range changes {
		if c.Window <= 0 {
			return nil, fmt.Errorf("redis: add count: window must be positive, got %v", c.Window)
		}
		calls[i] = scriptCall{addCount, []string{s.limiterKey(c.Key)}, []any{c.Delta, max(c.Window.Microseconds(), 1)}}
	}
	// Each call succeeds or fails on its own, as in AllowEach.
	out := make([]float64, len(changes))
	var first error
	for i, cmd := range s.runScripts(ctx, calls) {
		res, err := cmd.Text()
		if err != nil {
			err = fail(err, "add count") // keys may hold hashed phone numbers
		} else if out[i], err = strconv.ParseFloat(res, 64); err != nil {
			err = fmt.Errorf("redis: add count: unexpected script reply %q", res)
		}
		if err != nil {
			out[i] = math.NaN()
			if first == nil {
				first = err
			}
		}
	}
	return out, first
}

// SetLatch holds key for d (SET … PX), or releases it when d <= 0.
func (s *Store) SetLatch(ctx context.Context, key string, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: set latch: %w", err)
	}
	if d <= 0 {
		return fail(s.c.Del(ctx, s.latchKey(key)).Err(), "release latch")
	}
	return fail(s.c.Set(ctx, s.latchKey(key), "1", max(d, time.Millisecond)).Err(), "set latch")
}

// Latch returns how much longer key is held (its PTTL), 0 when it is not.
func (s *Store) Latch(ctx context.Context, key string) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("redis: latch: %w", err)
	}
	d, err := s.c.PTTL(ctx, s.latchKey(key)).Result()
	if err != nil {
		return 0, fail(err, "latch")
	}
	if d < 0 { // -2: absent; -1 (no TTL) is never written
		return 0, nil
	}
	return d, nil
}

func (s *Store) latchKey(key string) string { return s.prefix + "{latch:" + esc(key) + "}" }

var _ storage.Counters = (*Store)(nil)
