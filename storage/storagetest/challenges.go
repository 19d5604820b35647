package storagetest

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

const (
	rightCode   = "123456"
	wrongCode   = "654321"
	maxAttempts = 5
	codeTTL     = 5 * time.Minute
	cooldown    = 30 * time.Second
)

// newChallenge returns a challenge whose code (rightCode) was sent at t0.
func newChallenge(t0 time.Time) storage.Challenge {
	return storage.Challenge{
		ID:          newID("challenge"),
		FlowID:      newID("flow"),
		Phone:       "+33612345678",
		CodeHash:    codeHash(rightCode),
		ProviderRef: newID("ref"),
		MaxAttempts: maxAttempts,
		Sends:       1,
		LastSentAt:  t0,
		ExpiresAt:   t0.Add(codeTTL),
		CreatedAt:   t0,
	}
}

// createChallenge stores a challenge sent at t0 after applying edit (may be nil).
func createChallenge(t *testing.T, s storage.Store, t0 time.Time, edit func(*storage.Challenge)) storage.Challenge {
	t.Helper()
	c := newChallenge(t0)
	if edit != nil {
		edit(&c)
	}
	must(t, s.CreateChallenge(t.Context(), c))
	return c
}

// verify answers code at time at and checks the outcome and, for wrong and
// locked outcomes (the ones that promise it), the attempts remaining.
func verify(t *testing.T, s storage.Store, id, code string, at time.Time, want storage.VerifyOutcome, remaining int) storage.VerifyResult {
	t.Helper()
	res, err := s.VerifyChallenge(t.Context(), id, codeHash(code), at)
	must(t, err)
	counted := want == storage.VerifyWrongCode || want == storage.VerifyLocked
	if res.Outcome != want || counted && res.Remaining != remaining {
		t.Fatalf("verify %s: got %v with %d remaining, want %v with %d", code, res.Outcome, res.Remaining, want, remaining)
	}
	return res
}

func testChallenges(t *testing.T, s storage.Store) {
	t0 := now()
	during := t0.Add(time.Second) // while the code is valid

	t.Run("CRUD", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		c := createChallenge(t, s, t0, nil)
		wantErr(t, s.CreateChallenge(ctx, c), storage.ErrAlreadyExists)
		got, err := s.GetChallenge(ctx, c.ID)
		must(t, err)
		equal(t, got, c)

		must(t, s.DeleteChallenge(ctx, c.ID))
		_, err = s.GetChallenge(ctx, c.ID)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.VerifyChallenge(ctx, newID("challenge"), codeHash(rightCode), during)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("WrongCodeCountsDownThenLocks", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		for _, remaining := range []int{4, 3, 2, 1} {
			res := verify(t, s, c.ID, wrongCode, during, storage.VerifyWrongCode, remaining)
			if res.Challenge.Attempts != maxAttempts-remaining {
				t.Fatalf("result shows %d attempts, want %d", res.Challenge.Attempts, maxAttempts-remaining)
			}
		}
		verify(t, s, c.ID, wrongCode, during, storage.VerifyLocked, 0)
		verify(t, s, c.ID, rightCode, during, storage.VerifyLocked, 0) // not even compared
		got, err := s.GetChallenge(t.Context(), c.ID)
		must(t, err)
		if got.Attempts != maxAttempts {
			t.Fatalf("stored attempts %d, want %d", got.Attempts, maxAttempts)
		}
	})

	t.Run("Expired", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		verify(t, s, c.ID, rightCode, c.ExpiresAt.Add(time.Second), storage.VerifyExpired, 0)
		verify(t, s, c.ID, wrongCode, c.ExpiresAt.Add(time.Second), storage.VerifyExpired, 0)
	})

	t.Run("RightCodeIsSingleUse", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		verify(t, s, c.ID, wrongCode, during, storage.VerifyWrongCode, 4)
		res := verify(t, s, c.ID, rightCode, during, storage.VerifyOK, 0)
		if res.Challenge.ID != c.ID || res.Challenge.FlowID != c.FlowID {
			t.Fatalf("VerifyOK result carries challenge %q of flow %q, want %q of %q", res.Challenge.ID, res.Challenge.FlowID, c.ID, c.FlowID)
		}
		_, err := s.VerifyChallenge(t.Context(), c.ID, codeHash(rightCode), during)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.GetChallenge(t.Context(), c.ID)
		wantErr(t, err, storage.ErrNotFound)
	})

	newCode := "111111"
	for _, c := range []struct {
		name      string
		edit      func(*storage.Challenge)
		wrong     int           // wrong answers before the resend
		after     time.Duration // resend at t0+after
		want      storage.ResendOutcome
		retry     time.Duration // with ResendTooSoon
		codeAfter string        // the code that works after the call
	}{
		{name: "TooSoon", wrong: 1, after: 10 * time.Second, want: storage.ResendTooSoon, retry: 20 * time.Second, codeAfter: rightCode},
		{name: "OK", wrong: 2, after: cooldown + time.Second, want: storage.ResendOK, codeAfter: newCode},
		{name: "TooMany", edit: func(c *storage.Challenge) { c.Sends = 3 }, after: time.Minute, want: storage.ResendTooMany, codeAfter: rightCode},
		{name: "Locked", wrong: maxAttempts, after: time.Minute, want: storage.ResendLocked},
	} {
		t.Run("Resend"+c.name, func(t *testing.T) {
			t.Parallel()
			ch := createChallenge(t, s, t0, c.edit)
			for range c.wrong {
				_, err := s.VerifyChallenge(t.Context(), ch.ID, codeHash(wrongCode), during)
				must(t, err)
			}
			at := t0.Add(c.after)
			r := storage.Resend{CodeHash: codeHash(newCode), Now: at, Cooldown: cooldown, MaxSends: 3, ExpiresAt: at.Add(codeTTL)}
			res, err := s.ResendChallenge(t.Context(), ch.ID, r)
			must(t, err)
			if res.Outcome != c.want || res.RetryAfter != c.retry {
				t.Fatalf("resend: got %v retry after %v, want %v retry after %v", res.Outcome, res.RetryAfter, c.want, c.retry)
			}
			if c.want == storage.ResendOK {
				got := res.Challenge
				if got.Sends != 2 || got.Attempts != 0 || !got.LastSentAt.Equal(at) || !got.ExpiresAt.Equal(r.ExpiresAt) {
					t.Fatalf("after resend: sends %d attempts %d last sent %v expires %v, want 2, 0, %v, %v",
						got.Sends, got.Attempts, got.LastSentAt, got.ExpiresAt, at, r.ExpiresAt)
				}
				verify(t, s, ch.ID, rightCode, at, storage.VerifyWrongCode, maxAttempts-1) // the old code stopped working
			}
			if c.codeAfter != "" {
				verify(t, s, ch.ID, c.codeAfter, at, storage.VerifyOK, 0)
			}
		})
	}
}
