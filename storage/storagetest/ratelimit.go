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

	t.Run("AllowEachIsAllowForEveryCheck", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		a, b, c, d := newID("rl"), newID("rl"), newID("rl"), newID("rl")
		checks := []storage.RateCheck{
			{Key: c, Limit: 0, Window: time.Minute}, // refused, like Allow
			{Key: a, Limit: 2, Window: time.Minute},
			{Key: b, Limit: 5, Window: time.Minute},
			{Key: d, Limit: 1, Window: time.Hour},
		}
		want := [][]bool{{false, true, true, true}, {false, true, true, false}, {false, false, true, false}}
		for round, w := range want {
			res, err := s.AllowEach(ctx, checks)
			must(t, err)
			if len(res) != len(checks) {
				t.Fatalf("round %d: %d results for %d checks", round, len(res), len(checks))
			}
			for i, r := range res {
				if r.Allowed != w[i] {
					t.Fatalf("round %d check %d: allowed %v, want %v", round, i, r.Allowed, w[i])
				}
				if !r.Allowed && i > 0 && r.RetryAfter <= 0 {
					t.Fatalf("round %d check %d: refused with retry after %v, want > 0", round, i, r.RetryAfter)
				}
			}
		}
		// The batch recorded what it allowed, where Allow looks: b has had 3
		// events in its minute, so 2 more fit its limit of 5, and no more.
		if n, _ := allowN(t, s, b, 3, 5, time.Minute); n != 2 {
			t.Fatalf("after three batches, %d of 3 more events on b allowed, want 2", n)
		}
		res, err := s.AllowEach(ctx, nil)
		must(t, err)
		if len(res) != 0 {
			t.Fatalf("no checks: %d results", len(res))
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
