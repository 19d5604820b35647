package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/storage"
)

// readWindow is the start of both scripts on a sliding-window HASH (fields w,
// c, p): with w (the window in µs) already set, it reads now (ARGV[3] or Redis's
// TIME), the window index idx, the time e elapsed in it, and the counts cur and
// prev as they stand for idx.
const readWindow = `local now
if ARGV[3] then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local idx = math.floor(now / w)
local e = now - idx * w
local s = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local sw, prev, cur = tonumber(s[1]), 0, 0
if sw == idx then
  cur, prev = tonumber(s[2]) or 0, tonumber(s[3]) or 0
elseif sw == idx - 1 then
  prev = tonumber(s[2]) or 0
end
`

// slidingWindow is storage.SlidingWindow in Lua, on Redis's clock (TIME), so that
// every otpgate instance counts against the same time. Units are microseconds
// (TIME's resolution); windows are aligned to multiples of the window since the
// Unix epoch. One HASH per limiter key holds the current window's index "w", its
// count "c" and the previous window's count "p"; it is written only when the
// event is allowed and expires two windows after, when both counts would be
// stale anyway.
//
// KEYS[1] counters; ARGV[1] limit, ARGV[2] window (µs), ARGV[3] optional: now
// (µs) instead of TIME, only for the tests that check the arithmetic against
// storage.SlidingWindow.
// Returns {allowed (1/0), retry after (ms)}.
var slidingWindow = goredis.NewScript(`
local limit, w = tonumber(ARGV[1]), tonumber(ARGV[2])
` + readWindow + `if prev * (w - e) / w + cur + 1 <= limit then
  redis.call('HSET', KEYS[1], 'w', string.format('%d', idx), 'c', cur + 1, 'p', prev)
  redis.call('PEXPIRE', KEYS[1], math.ceil(2 * w / 1000))
  return {1, 0}
end
local function ceilms(us)
  local ms = math.ceil(us / 1000)
  if ms < 1 then ms = 1 end
  return ms
end
if cur + 1 <= limit and prev > 0 then
  local t = w * (1 - (limit - cur - 1) / prev)
  if t < w then return {0, ceilms(t - e)} end
end
local t = 0
if cur > 0 then t = math.max(0, w * (1 - (limit - 1) / cur)) end
return {0, ceilms(w - e + t)}
`)

// Allow records one event for key if at most limit events fall in any
// window-long interval; see storage.RateLimiter. One script call.
func (s *Store) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return false, 0, fmt.Errorf("redis: allow: %w", err)
	}
	if limit <= 0 || window <= 0 {
		allowed, retry := storage.SlidingWindow(0, 0, 0, window, limit) // refuses, like every backend
		return allowed, retry, nil
	}
	return s.allow(ctx, key, limit, window, nil)
}

// AllowEach runs the Allow script for every check in one pipeline: one round
// trip on a standalone server, one per node on a cluster.
func (s *Store) AllowEach(ctx context.Context, checks []storage.RateCheck) ([]storage.RateResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: allow: %w", err)
	}
	out := make([]storage.RateResult, len(checks))
	var calls []scriptCall
	var at []int // the check of each call
	for i, c := range checks {
		if c.Limit <= 0 || c.Window <= 0 {
			out[i].Allowed, out[i].RetryAfter = storage.SlidingWindow(0, 0, 0, c.Window, c.Limit) // refuses, like Allow
			continue
		}
		calls = append(calls, scriptCall{slidingWindow, []string{s.limiterKey(c.Key)}, []any{c.Limit, max(c.Window.Microseconds(), 1)}})
		at = append(at, i)
	}
	// Each call succeeds or fails on its own (a timeout fails them all; a
	// cluster node down, only its own): the results of those that answered
	// are kept, so that the caller can take back what they counted.
	var first error
	for j, cmd := range s.runScripts(ctx, calls) {
		res, err := cmd.Int64Slice()
		switch {
		case err != nil:
			err = fail(err, "allow") // keys may hold hashed phone numbers: not in errors
		case len(res) != 2:
			err = fmt.Errorf("redis: allow: unexpected script reply of %d items", len(res))
		default:
			out[at[j]] = storage.RateResult{Allowed: res[0] == 1, RetryAfter: time.Duration(res[1]) * time.Millisecond}
		}
		if first == nil {
			first = err
		}
	}
	return out, first
}

// allow runs slidingWindow; now, when not nil, replaces Redis's clock (tests).
func (s *Store) allow(ctx context.Context, key string, limit int, window time.Duration, now *time.Time) (bool, time.Duration, error) {
	w := max(window.Microseconds(), 1)
	args := []any{limit, w}
	if now != nil {
		args = append(args, now.UnixMicro())
	}
	res, err := s.runScript(ctx, slidingWindow, []string{s.limiterKey(key)}, args...).Int64Slice()
	if err != nil {
		// The key may hold a hashed phone number: it stays out of errors.
		return false, 0, fail(err, "allow")
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("redis: allow: unexpected script reply of %d items", len(res))
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond, nil
}
