package memory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// limitKey identifies one counter. The window is part of it, so a caller may
// limit the same key per minute and per day without the two mixing.
type limitKey struct {
	key    string
	window time.Duration
}

// limitState holds the counts of the fixed window with the given index
// (windows are aligned on multiples of the window length since the Unix epoch)
// and of the one before it.
type limitState struct {
	index     int64
	prev, cur int64
}

// expired reports whether the state no longer matters at now: two windows after
// its own started, both of its counts have slid out.
func (st limitState) expired(window time.Duration, now time.Time) bool {
	w := int64(window)
	since := now.UnixNano() - st.index*w // written so as not to overflow for huge windows
	return since-w >= w
}

// Allow records one event for (key, window) if it fits limit, deciding with
// storage.SlidingWindow. Rejected events are not counted.
func (s *Store) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	if err := s.lock(ctx); err != nil {
		return false, 0, fmt.Errorf("memory: rate limit: %w", err)
	}
	defer s.mu.Unlock()
	if window <= 0 {
		return false, 0, fmt.Errorf("memory: rate limit: %w", errBadWindow)
	}
	allowed, retryAfter := s.allowLocked(key, limit, window)
	return allowed, retryAfter, nil
}

// allowLocked is Allow with the lock held and a valid window.
func (s *Store) allowLocked(key string, limit int, window time.Duration) (bool, time.Duration) {
	k := limitKey{key, window}
	st, ok, elapsed := s.limitNow(k)
	allowed, retryAfter := storage.SlidingWindow(st.prev, st.cur, elapsed, window, limit)
	if allowed {
		st.cur++
	}
	if ok || allowed {
		s.limits[k] = st
	}
	return allowed, retryAfter
}

// AllowEach runs Allow for every check under one lock.
func (s *Store) AllowEach(ctx context.Context, checks []storage.RateCheck) ([]storage.RateResult, error) {
	if err := s.lock(ctx); err != nil {
		return nil, fmt.Errorf("memory: rate limit: %w", err)
	}
	defer s.mu.Unlock()
	for _, c := range checks {
		if c.Window <= 0 {
			return nil, fmt.Errorf("memory: rate limit: %w", errBadWindow)
		}
	}
	out := make([]storage.RateResult, len(checks))
	for i, c := range checks {
		out[i].Allowed, out[i].RetryAfter = s.allowLocked(c.Key, c.Limit, c.Window)
	}
	return out, nil
}

// limitNow returns the counts of k as they stand now, moved into the current
// fixed window, whether k had any state, and how far into that window now is.
// The caller holds the lock.
func (s *Store) limitNow(k limitKey) (st limitState, ok bool, elapsed time.Duration) {
	now := s.now().UnixNano()
	w := int64(k.window)
	index := floorDiv(now, w)
	elapsed = time.Duration(now - index*w)

	st, ok = s.limits[k]
	switch {
	case !ok:
		st = limitState{index: index}
	case st.index == index:
	case st.index == index-1:
		st = limitState{index: index, prev: st.cur}
	case st.index > index:
		// The clock went back: keep counting in the newest window seen, as if
		// at its very start (the previous window then weighs fully).
		elapsed = 0
	default:
		st = limitState{index: index}
	}
	return st, ok, elapsed
}

var errBadWindow = errors.New("window must be positive")

// floorDiv divides rounding toward negative infinity, so that instants before
// the epoch fall into the right window too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
