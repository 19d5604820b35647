package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// AddCount adds delta to the sliding-window counter (key, window), the one
// Allow limits, and returns its estimate; see storage.Counters.
func (s *Store) AddCount(ctx context.Context, key string, delta int64, window time.Duration) (float64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, fmt.Errorf("memory: add count: %w", err)
	}
	defer s.mu.Unlock()
	if window <= 0 {
		return 0, fmt.Errorf("memory: add count: %w", errBadWindow)
	}
	return s.addCountLocked(key, delta, window), nil
}

// addCountLocked is AddCount with the lock held and a valid window.
func (s *Store) addCountLocked(key string, delta int64, window time.Duration) float64 {
	k := limitKey{key, window}
	st, ok, elapsed := s.limitNow(k)
	st.prev, st.cur = storage.AddToWindow(st.prev, st.cur, delta)
	if ok || delta != 0 {
		s.limits[k] = st
	}
	return storage.WindowEstimate(st.prev, st.cur, elapsed, window)
}

// AddCounts runs AddCount for every change under one lock.
func (s *Store) AddCounts(ctx context.Context, changes []storage.CountChange) ([]float64, error) {
	if err := s.lock(ctx); err != nil {
		return nil, fmt.Errorf("memory: add count: %w", err)
	}
	defer s.mu.Unlock()
	for _, c := range changes {
		if c.Window <= 0 {
			return nil, fmt.Errorf("memory: add count: %w", errBadWindow)
		}
	}
	out := make([]float64, len(changes))
	for i, c := range changes {
		out[i] = s.addCountLocked(c.Key, c.Delta, c.Window)
	}
	return out, nil
}

// SetLatch holds key until d from now; see storage.Counters.
func (s *Store) SetLatch(ctx context.Context, key string, d time.Duration) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: set latch: %w", err)
	}
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.latches, key)
		return nil
	}
	s.latches[key] = s.now().Add(d)
	return nil
}

// Latch returns how much longer key is held, 0 when it is not.
func (s *Store) Latch(ctx context.Context, key string) (time.Duration, error) {
	if err := s.lock(ctx); err != nil {
		return 0, fmt.Errorf("memory: latch: %w", err)
	}
	defer s.mu.Unlock()
	until, ok := s.latches[key]
	if !ok {
		return 0, nil
	}
	left := until.Sub(s.now())
	if left <= 0 {
		delete(s.latches, key)
		return 0, nil
	}
	return left, nil
}

var _ storage.Counters = (*Store)(nil)
