package storagetest

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// allowN calls Allow n times and returns how many were allowed and the last
// retryAfter.
func allowN(t *testing.T, s storage.Store, key string, n, limit int, window time.Duration) (allowed int, retryAfter time.Duration) {
	t.Helper()
	for range n {
		ok, retry, err := s.Allow(t.Context(), key, limit, window)
		must(t, err)
		if ok {
			allowed++
		}
		retryAfter = retry
	}
	return allowed, retryAfter
}

func testRateLimit(t *testing.T, s storage.Store) {
	const (
		limit  = 3
		window = 600 * time.Millisecond
	)

	t.Run("LimitThenRetryAfter", func(t *testing.T) {
		t.Parallel()
		key := newID("rl")
		if n, _ := allowN(t, s, key, limit, limit, window); n != limit {
			t.Fatalf("%d of the first %d events allowed, want all", n, limit)
		}
		ok, retry, err := s.Allow(t.Context(), key, limit, window)
		must(t, err)
		// The previous fixed window still weighs on the next one, so the wait
		// can exceed the window, by at most window/limit.
		if ok || retry <= 0 || retry > window+window/limit+time.Millisecond {
			t.Fatalf("event %d: allowed %v retry after %v, want refused with 0 < retry after <= %v", limit+1, ok, retry, window+window/limit)
		}

		time.Sleep(retry + 50*time.Millisecond)
		ok, _, err = s.Allow(t.Context(), key, limit, window)
		must(t, err)
		if !ok {
			t.Fatalf("refused again after waiting the %v it asked for", retry)
		}
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		t.Parallel()
		a, b := newID("rl"), newID("rl")
		if n, _ := allowN(t, s, a, limit+2, limit, time.Minute); n != limit {
			t.Fatalf("key a: %d of %d allowed, want %d", n, limit+2, limit)
		}
		if n, _ := allowN(t, s, b, limit, limit, time.Minute); n != limit {
			t.Fatalf("key b after key a was exhausted: %d of %d allowed", n, limit)
		}
	})

	t.Run("FullLimitAfterTwoWindows", func(t *testing.T) {
		t.Parallel()
		key := newID("rl")
		allowN(t, s, key, limit+1, limit, window)
		time.Sleep(2*window + 50*time.Millisecond) // both counted windows are over
		if n, _ := allowN(t, s, key, limit+1, limit, window); n != limit {
			t.Fatalf("after two idle windows %d of %d allowed, want %d", n, limit+1, limit)
		}
	})
}
