package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// racers is how many goroutines race for one record.
const racers = 50

// errLost marks the expected outcome of a losing attempt that is a result
// rather than an error (for example ResendTooSoon).
var errLost = errors.New("lost the race")

func testConcurrency(t *testing.T, s storage.Store) {
	t0 := now()

	// Races with exactly one winner: setup returns the attempt to race, which
	// returns nil for a win; every loss must match loser.
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, ctx context.Context) (attempt func(i int) error)
		loser error
	}{
		{name: "ConcurrentVerifyExactlyOneWins", loser: storage.ErrNotFound, setup: func(t *testing.T, ctx context.Context) func(int) error {
			c := createChallenge(t, s, t0, nil)
			return func(int) error {
				res, err := s.VerifyChallenge(ctx, c.ID, codeHash(rightCode), t0.Add(time.Second))
				if err == nil && res.Outcome != storage.VerifyOK {
					return fmt.Errorf("correct answer: %v", res.Outcome)
				}
				return err
			}
		}},
		{name: "ConcurrentResendExactlyOne", loser: errLost, setup: func(t *testing.T, ctx context.Context) func(int) error {
			c := createChallenge(t, s, t0, nil)
			at := t0.Add(cooldown + time.Second)
			return func(i int) error {
				res, err := s.ResendChallenge(ctx, c.ID, storage.Resend{CodeHash: codeHash(fmt.Sprint(i)), Now: at,
					Cooldown: cooldown, MaxSends: racers, ExpiresAt: at.Add(codeTTL)})
				switch {
				case err != nil:
					return err
				case res.Outcome == storage.ResendTooSoon:
					return errLost
				case res.Outcome != storage.ResendOK:
					return fmt.Errorf("resend: %v", res.Outcome)
				}
				return nil
			}
		}},
		{name: "ConcurrentConsumeExactlyOne", loser: storage.ErrNotFound, setup: func(t *testing.T, ctx context.Context) func(int) error {
			c := createChallenge(t, s, t0, nil)
			return func(int) error {
				got, err := s.ConsumeChallenge(ctx, c.ID)
				if err == nil && (got.ID != c.ID || got.ProviderRef != c.ProviderRef) {
					return fmt.Errorf("consumed %s (ref %s), want %s (ref %s)", got.ID, got.ProviderRef, c.ID, c.ProviderRef)
				}
				return err
			}
		}},
		{name: "ConcurrentDeactivateExactlyOne", loser: storage.ErrConflict, setup: func(t *testing.T, ctx context.Context) func(int) error {
			tok := newToken(storage.KindAuthorizeCode, newID("req"))
			must(t, s.CreateToken(ctx, tok))
			return func(int) error { return s.DeactivateToken(ctx, tok.Kind, tok.Signature) }
		}},
		{name: "ConcurrentCreateTokenExactlyOne", loser: storage.ErrAlreadyExists, setup: func(t *testing.T, ctx context.Context) func(int) error {
			tok := newToken(storage.KindJTI, newID("req"))
			return func(int) error { return s.CreateToken(ctx, tok) }
		}},
		{name: "ConcurrentCreateChallengeExactlyOne", loser: storage.ErrAlreadyExists, setup: func(t *testing.T, ctx context.Context) func(int) error {
			c := newChallenge(t0)
			return func(int) error { return s.CreateChallenge(ctx, c) }
		}},
		{name: "ConcurrentCreateFlowExactlyOne", loser: storage.ErrAlreadyExists, setup: func(t *testing.T, ctx context.Context) func(int) error {
			f := newFlow(newID("flow"))
			return func(int) error { return s.CreateFlow(ctx, f) }
		}},
		{name: "ConcurrentCreateClientExactlyOne", loser: storage.ErrAlreadyExists, setup: func(t *testing.T, ctx context.Context) func(int) error {
			c := newClient(newID("client"))
			return func(int) error { return s.CreateClient(ctx, c) }
		}},
		{name: "ConcurrentCreateKeyExactlyOne", loser: storage.ErrAlreadyExists, setup: func(t *testing.T, ctx context.Context) func(int) error {
			k := newKey(newID("kid"), now())
			return func(int) error { return s.CreateKey(ctx, k) }
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			exactlyOne(t, racers, c.setup(t, t.Context()), c.loser)
		})
	}

	t.Run("ConcurrentWrongAnswersCountedOnce", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		results := make([]storage.VerifyResult, racers)
		errs := make([]error, racers)
		race(racers, func(i int) {
			results[i], errs[i] = s.VerifyChallenge(t.Context(), c.ID, codeHash(wrongCode), t0.Add(time.Second))
		})
		must(t, errors.Join(errs...))
		seen := map[int]bool{}
		for _, r := range results {
			switch r.Outcome {
			case storage.VerifyWrongCode:
				if seen[r.Remaining] {
					t.Errorf("two answers were told %d attempts remain", r.Remaining)
				}
				seen[r.Remaining] = true
			case storage.VerifyLocked:
			default:
				t.Errorf("wrong answer: %v", r.Outcome)
			}
		}
		if len(seen) != maxAttempts-1 {
			t.Errorf("%d distinct wrong-code results, want %d (remaining 4, 3, 2, 1)", len(seen), maxAttempts-1)
		}
		got, err := s.GetChallenge(t.Context(), c.ID)
		must(t, err)
		if got.Attempts != maxAttempts {
			t.Errorf("stored attempts %d after %d parallel wrong answers, want %d", got.Attempts, racers, maxAttempts)
		}
	})

	t.Run("ConcurrentCountAttemptExactlyMax", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		results := make([]storage.VerifyResult, racers)
		errs := make([]error, racers)
		race(racers, func(i int) {
			results[i], errs[i] = s.CountAttempt(t.Context(), c.ID, t0.Add(time.Second))
		})
		must(t, errors.Join(errs...))
		seen := map[int]bool{}
		for _, r := range results {
			switch r.Outcome {
			case storage.VerifyCounted:
				if seen[r.Remaining] {
					t.Errorf("two attempts were told %d attempts remain", r.Remaining)
				}
				seen[r.Remaining] = true
			case storage.VerifyLocked:
			default:
				t.Errorf("attempt: %v", r.Outcome)
			}
		}
		if len(seen) != maxAttempts {
			t.Errorf("%d of %d racing attempts counted, want exactly %d (remaining 4, 3, 2, 1, 0)", len(seen), racers, maxAttempts)
		}
		got, err := s.GetChallenge(t.Context(), c.ID)
		must(t, err)
		if got.Attempts != maxAttempts {
			t.Errorf("stored attempts %d after %d racing attempts, want %d", got.Attempts, racers, maxAttempts)
		}
	})

	// Each racer reserves a send, then records its provider ref for it: the
	// ref that stays is the one of the newest send, whatever order the
	// recordings land in.
	t.Run("ConcurrentResendsKeepTheNewestRef", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		at := t0.Add(time.Second)
		sends := make([]int, racers)
		errs := make([]error, racers)
		race(racers, func(i int) {
			res, err := s.ResendChallenge(t.Context(), c.ID, storage.Resend{CodeHash: codeHash(fmt.Sprint(i)), Now: at,
				MaxSends: racers + 1, ExpiresAt: at.Add(codeTTL)})
			switch {
			case err != nil:
				errs[i] = err
				return
			case res.Outcome != storage.ResendOK:
				errs[i] = fmt.Errorf("resend without cooldown: %v", res.Outcome)
				return
			}
			sends[i] = res.Challenge.Sends
			if err := s.SetProviderRef(t.Context(), c.ID, sends[i], fmt.Sprint("ref-", i)); err != nil && !errors.Is(err, storage.ErrConflict) {
				errs[i] = err
			}
		})
		must(t, errors.Join(errs...))
		got, err := s.GetChallenge(t.Context(), c.ID)
		must(t, err)
		if got.Sends != racers+1 {
			t.Fatalf("stored sends %d, want %d", got.Sends, racers+1)
		}
		newest := -1
		for i, n := range sends {
			if n == got.Sends {
				newest = i
			}
		}
		if want := fmt.Sprint("ref-", newest); got.ProviderRef != want {
			t.Errorf("stored ref %q at send %d, want %q (the racer that reserved it)", got.ProviderRef, got.Sends, want)
		}
	})

	t.Run("ConcurrentRateLimitExactlyLimit", func(t *testing.T) {
		t.Parallel()
		const limit = 10
		key := newID("rl")
		allowed := make([]bool, racers)
		errs := make([]error, racers)
		race(racers, func(i int) {
			allowed[i], _, errs[i] = s.Allow(t.Context(), key, limit, time.Minute)
		})
		must(t, errors.Join(errs...))
		n := 0
		for _, ok := range allowed {
			if ok {
				n++
			}
		}
		if n != limit {
			t.Fatalf("%d of %d racing events allowed, want exactly %d", n, racers, limit)
		}
	})

	t.Run("ConcurrentAllowEachExactlyLimit", func(t *testing.T) {
		t.Parallel()
		const limit = 10
		shared := newID("rl")
		results := make([][]storage.RateResult, racers)
		errs := make([]error, racers)
		race(racers, func(i int) {
			results[i], errs[i] = s.AllowEach(t.Context(), []storage.RateCheck{
				{Key: newID("rl"), Limit: 1, Window: time.Minute}, // each racer's own
				{Key: shared, Limit: limit, Window: time.Minute},
			})
		})
		must(t, errors.Join(errs...))
		n := 0
		for i, r := range results {
			if len(r) != 2 || !r[0].Allowed {
				t.Fatalf("racer %d: %+v, want two results and its own key allowed", i, r)
			}
			if r[1].Allowed {
				n++
			}
		}
		if n != limit {
			t.Fatalf("%d of %d racing events allowed on the shared key, want exactly %d", n, racers, limit)
		}
	})
}
