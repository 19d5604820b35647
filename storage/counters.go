package storage

import (
	"context"
	"time"
)

// Counters are what RateLimiter cannot give: counts that are read and
// adjusted rather than only limited, and latches that hold for a set time.
// The abuse guard (factors/guard) keeps per-country send and verification
// counts with them, and the latch is its pumping breaker.
//
// A counter is the very sliding-window counter Allow limits: AddCount(k, 0, w)
// reads the estimate Allow(k, _, w) compares with its limit. As with Allow,
// keys are opaque (callers hash anything personal) and the window belongs in
// the key: a backend may keep one counter per key whatever the window.
type Counters interface {
	// AddCount adds delta to key's count in the current fixed window and
	// returns the sliding-window estimate after the change (see
	// SlidingWindow). delta 0 only reads. A negative delta takes events back
	// (the current window first, then the previous one), never below zero.
	AddCount(ctx context.Context, key string, delta int64, window time.Duration) (float64, error)
	// AddCounts runs AddCount for every change, in one round trip where the
	// backend can, and returns the estimates in the order of changes. The
	// changes are independent, not one transaction. On error the estimates,
	// when not nil, are NaN for the changes not known to be applied, so that
	// the caller can take back the others.
	AddCounts(ctx context.Context, changes []CountChange) ([]float64, error)
	// SetLatch holds key for d from now, replacing any earlier hold. A d <= 0
	// releases it.
	SetLatch(ctx context.Context, key string, d time.Duration) error
	// Latch returns how much longer key is held; 0 when it is not.
	Latch(ctx context.Context, key string) (time.Duration, error)
}

// CountChange is one AddCount in Counters.AddCounts.
type CountChange struct {
	Key    string
	Delta  int64
	Window time.Duration
}

// AddToWindow applies delta to the counts of a sliding-window counter and
// returns the new counts: a positive delta adds to the current window, a
// negative one takes from the current window and then the previous one,
// never below zero. Every backend shares it (storage/redis mirrors it in Lua).
func AddToWindow(prev, cur, delta int64) (newPrev, newCur int64) {
	if delta >= 0 {
		return prev, cur + delta
	}
	cur += delta
	if cur < 0 {
		prev = max(0, prev+cur)
		cur = 0
	}
	return prev, cur
}

// WindowEstimate is the sliding-window estimate of the events in the last
// window: the previous fixed window weighted by its overlap, plus the current
// one (the quantity SlidingWindow compares with the limit).
func WindowEstimate(prev, cur int64, elapsed, window time.Duration) float64 {
	if window <= 0 {
		return float64(cur)
	}
	w, e := float64(window), float64(min(max(elapsed, 0), window))
	return float64(prev)*(w-e)/w + float64(cur)
}
