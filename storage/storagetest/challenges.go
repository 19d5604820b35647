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
		SealedCode:  sealed(rightCode),
		ProviderRef: newID("ref"),
		MaxAttempts: maxAttempts,
		Sends:       1,
		LastSentAt:  t0,
		ExpiresAt:   t0.Add(codeTTL),
		CreatedAt:   t0,
	}
}

// sealed stands for a code sealed by a factor: opaque bytes of the size
// AES-GCM gives (12-byte nonce, code, 16-byte tag), the store keeps them as
// they are. Not the code in clear: a nonce-like prefix and a tag-like suffix.
func sealed(code string) []byte {
	h := codeHash("seal" + code)
	return append(append(h[:12:12], []byte(code)...), h[12:28]...)
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
			r := storage.Resend{CodeHash: codeHash(newCode), SealedCode: sealed(newCode), Now: at, Cooldown: cooldown, MaxSends: 3, ExpiresAt: at.Add(codeTTL)}
			res, err := s.ResendChallenge(t.Context(), ch.ID, r)
			must(t, err)
			if res.Outcome != c.want || res.RetryAfter != c.retry {
				t.Fatalf("resend: got %v retry after %v, want %v retry after %v", res.Outcome, res.RetryAfter, c.want, c.retry)
			}
			if c.want == storage.ResendOK {
				got := res.Challenge
				// The attempts are not reset: the budget covers the challenge.
				if got.Sends != 2 || got.Attempts != c.wrong || !got.LastSentAt.Equal(at) || !got.ExpiresAt.Equal(r.ExpiresAt) ||
					string(got.SealedCode) != string(r.SealedCode) {
					t.Fatalf("after resend: sends %d attempts %d last sent %v expires %v sealed %x, want 2, %d, %v, %v, %x",
						got.Sends, got.Attempts, got.LastSentAt, got.ExpiresAt, got.SealedCode, c.wrong, at, r.ExpiresAt, r.SealedCode)
				}
				verify(t, s, ch.ID, rightCode, at, storage.VerifyWrongCode, maxAttempts-c.wrong-1) // the old code stopped working
			}
			if c.codeAfter != "" {
				verify(t, s, ch.ID, c.codeAfter, at, storage.VerifyOK, 0)
			}
		})
	}

	// A resend while the code is valid texts the same code again: the store
	// counts the send and keeps everything else.
	t.Run("ResendSameCodeKeepsAttemptsAndExpiry", func(t *testing.T) {
		t.Parallel()
		ch := createChallenge(t, s, t0, nil)
		verify(t, s, ch.ID, wrongCode, during, storage.VerifyWrongCode, maxAttempts-1)
		verify(t, s, ch.ID, wrongCode, during, storage.VerifyWrongCode, maxAttempts-2)
		at := t0.Add(cooldown + time.Second)
		// The code fields of the request are ignored when the code is kept.
		r := storage.Resend{KeepCode: true, CodeHash: codeHash(newCode), SealedCode: sealed(newCode), ProviderRef: "ignored",
			Now: at, Cooldown: cooldown, MaxSends: 3, ExpiresAt: at.Add(codeTTL)}
		res, err := s.ResendChallenge(t.Context(), ch.ID, r)
		must(t, err)
		if res.Outcome != storage.ResendOK {
			t.Fatalf("resend of the same code: %v", res.Outcome)
		}
		want := ch
		want.Attempts, want.Sends, want.LastSentAt = 2, 2, at
		equal(t, res.Challenge, want)
		got, err := s.GetChallenge(t.Context(), ch.ID)
		must(t, err)
		equal(t, got, want)
		// Refusals are the same as for a new code: too soon, then too many.
		res, err = s.ResendChallenge(t.Context(), ch.ID, storage.Resend{KeepCode: true, Now: at.Add(time.Second), Cooldown: cooldown, MaxSends: 3})
		must(t, err)
		if res.Outcome != storage.ResendTooSoon || res.RetryAfter != cooldown-time.Second {
			t.Fatalf("second resend within the cooldown: %v retry after %v", res.Outcome, res.RetryAfter)
		}
		res, err = s.ResendChallenge(t.Context(), ch.ID, storage.Resend{KeepCode: true, Now: at.Add(cooldown), Cooldown: cooldown, MaxSends: 2})
		must(t, err)
		if res.Outcome != storage.ResendTooMany {
			t.Fatalf("resend past the limit: %v", res.Outcome)
		}
		verify(t, s, ch.ID, wrongCode, at, storage.VerifyWrongCode, maxAttempts-3) // still counting down
		verify(t, s, ch.ID, newCode, at, storage.VerifyWrongCode, maxAttempts-4)   // the ignored hash was not stored
		verify(t, s, ch.ID, rightCode, at, storage.VerifyOK, 0)
	})

	// After the code expired a resend brings a new code and a new expiry, but
	// not a new budget of attempts.
	t.Run("ResendNewCodeAfterExpiryKeepsAttempts", func(t *testing.T) {
		t.Parallel()
		ch := createChallenge(t, s, t0, nil)
		for _, remaining := range []int{4, 3, 2} {
			verify(t, s, ch.ID, wrongCode, during, storage.VerifyWrongCode, remaining)
		}
		at := ch.ExpiresAt.Add(time.Second)
		verify(t, s, ch.ID, rightCode, at, storage.VerifyExpired, 0)
		r := storage.Resend{CodeHash: codeHash(newCode), SealedCode: sealed(newCode), Now: at, Cooldown: cooldown, MaxSends: 3, ExpiresAt: at.Add(codeTTL)}
		res, err := s.ResendChallenge(t.Context(), ch.ID, r)
		must(t, err)
		if res.Outcome != storage.ResendOK {
			t.Fatalf("resend after expiry: %v", res.Outcome)
		}
		want := ch
		want.CodeHash, want.SealedCode, want.ProviderRef = r.CodeHash, r.SealedCode, ""
		want.Attempts, want.Sends, want.LastSentAt, want.ExpiresAt = 3, 2, at, r.ExpiresAt
		equal(t, res.Challenge, want)
		verify(t, s, ch.ID, rightCode, at, storage.VerifyWrongCode, 1) // the old code stopped working
		verify(t, s, ch.ID, wrongCode, at, storage.VerifyLocked, 0)    // the budget ran out across both codes
		verify(t, s, ch.ID, newCode, at, storage.VerifyLocked, 0)
		res, err = s.ResendChallenge(t.Context(), ch.ID, storage.Resend{CodeHash: codeHash("222222"), Now: at.Add(time.Hour), Cooldown: cooldown, MaxSends: 3, ExpiresAt: at.Add(time.Hour + codeTTL)})
		must(t, err)
		if res.Outcome != storage.ResendLocked {
			t.Fatalf("resend of a locked challenge: %v", res.Outcome)
		}
	})
}

// count counts an attempt at time at and checks the outcome and the attempts
// remaining.
func count(t *testing.T, s storage.Store, id string, at time.Time, want storage.VerifyOutcome, remaining int) storage.VerifyResult {
	t.Helper()
	res, err := s.CountAttempt(t.Context(), id, at)
	must(t, err)
	if res.Outcome != want || res.Remaining != remaining {
		t.Fatalf("count attempt: got %v with %d remaining, want %v with %d", res.Outcome, res.Remaining, want, remaining)
	}
	return res
}

// testDelegatedChallenges covers the operations of a factor whose provider
// judges the code (CountAttempt, ConsumeChallenge, provider refs on resend).
func testDelegatedChallenges(t *testing.T, s storage.Store) {
	t0 := now()
	during := t0.Add(time.Second)

	t.Run("CountAttemptCountsDownThenLocks", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		for _, remaining := range []int{4, 3, 2, 1, 0} {
			res := count(t, s, c.ID, during, storage.VerifyCounted, remaining)
			if res.Challenge.Attempts != maxAttempts-remaining || res.Challenge.ID != c.ID || res.Challenge.ProviderRef != c.ProviderRef {
				t.Fatalf("result shows %d attempts of %s (ref %q), want %d of %s (ref %q)",
					res.Challenge.Attempts, res.Challenge.ID, res.Challenge.ProviderRef, maxAttempts-remaining, c.ID, c.ProviderRef)
			}
		}
		count(t, s, c.ID, during, storage.VerifyLocked, 0)
		// The counter is the one VerifyChallenge uses: locked for it too.
		verify(t, s, c.ID, rightCode, during, storage.VerifyLocked, 0)
		got, err := s.GetChallenge(t.Context(), c.ID)
		must(t, err)
		if got.Attempts != maxAttempts {
			t.Fatalf("stored attempts %d, want %d", got.Attempts, maxAttempts)
		}
	})

	t.Run("CountAttemptNeverComparesTheHash", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		count(t, s, c.ID, during, storage.VerifyCounted, 4)
		verify(t, s, c.ID, wrongCode, during, storage.VerifyWrongCode, 3) // one counter for both
		count(t, s, c.ID, during, storage.VerifyCounted, 2)
		_, err := s.GetChallenge(t.Context(), c.ID) // still there: counting never consumes
		must(t, err)
	})

	t.Run("CountAttemptExpired", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		count(t, s, c.ID, c.ExpiresAt, storage.VerifyExpired, maxAttempts)
		got, err := s.GetChallenge(t.Context(), c.ID)
		must(t, err)
		if got.Attempts != 0 {
			t.Fatalf("an answer to an expired code was counted: %d attempts", got.Attempts)
		}
	})

	t.Run("CountAttemptMissing", func(t *testing.T) {
		t.Parallel()
		_, err := s.CountAttempt(t.Context(), newID("challenge"), during)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("ConsumeIsSingleUse", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		count(t, s, c.ID, during, storage.VerifyCounted, 4)
		got, err := s.ConsumeChallenge(t.Context(), c.ID)
		must(t, err)
		want := c
		want.Attempts = 1
		equal(t, got, want)
		_, err = s.ConsumeChallenge(t.Context(), c.ID)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.GetChallenge(t.Context(), c.ID)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.CountAttempt(t.Context(), c.ID, during)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.ConsumeChallenge(t.Context(), newID("challenge"))
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("ConsumeIgnoresTheCodeExpiry", func(t *testing.T) {
		t.Parallel()
		// Judged while valid, consumed a moment after the code expired (the
		// record lives ChallengeGrace longer).
		c := createChallenge(t, s, now().Add(-codeTTL), nil)
		got, err := s.ConsumeChallenge(t.Context(), c.ID)
		must(t, err)
		equal(t, got, c)
	})

	newCode := "111111"
	resend := func(at time.Time, ref string) storage.Resend {
		return storage.Resend{CodeHash: codeHash(newCode), Now: at, Cooldown: cooldown, MaxSends: 3, ExpiresAt: at.Add(codeTTL), ProviderRef: ref}
	}
	after := t0.Add(cooldown + time.Second)

	t.Run("ResendReplacesProviderRef", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		res, err := s.ResendChallenge(t.Context(), c.ID, resend(after, "ref-second"))
		must(t, err)
		if res.Outcome != storage.ResendOK || res.Challenge.ProviderRef != "ref-second" {
			t.Fatalf("resend: %v with ref %q, want ok with ref-second", res.Outcome, res.Challenge.ProviderRef)
		}
		got, err := s.GetChallenge(t.Context(), c.ID)
		must(t, err)
		if got.ProviderRef != "ref-second" || got.Sends != 2 {
			t.Fatalf("stored ref %q at send %d, want ref-second at send 2", got.ProviderRef, got.Sends)
		}
	})

	t.Run("ResendWithoutRefDropsTheOldOne", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		res, err := s.ResendChallenge(t.Context(), c.ID, resend(after, ""))
		must(t, err)
		if res.Outcome != storage.ResendOK || res.Challenge.ProviderRef != "" {
			t.Fatalf("resend: %v with ref %q, want ok without ref", res.Outcome, res.Challenge.ProviderRef)
		}
		got, err := s.GetChallenge(t.Context(), c.ID)
		must(t, err)
		if got.ProviderRef != "" {
			t.Fatalf("the old code's ref %q outlived it", got.ProviderRef)
		}
	})

	t.Run("RefusedResendKeepsProviderRef", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		res, err := s.ResendChallenge(t.Context(), c.ID, resend(t0.Add(time.Second), "ref-refused"))
		must(t, err)
		if res.Outcome != storage.ResendTooSoon {
			t.Fatalf("resend within the cooldown: %v", res.Outcome)
		}
		got, err := s.GetChallenge(t.Context(), c.ID)
		must(t, err)
		equal(t, got, c)
	})

	t.Run("SetProviderRefForTheCurrentSend", func(t *testing.T) {
		t.Parallel()
		c := createChallenge(t, s, t0, nil)
		res, err := s.ResendChallenge(t.Context(), c.ID, resend(after, ""))
		must(t, err)
		if res.Outcome != storage.ResendOK {
			t.Fatalf("resend: %v", res.Outcome)
		}
		must(t, s.SetProviderRef(t.Context(), c.ID, 2, "ref-second"))
		wantErr(t, s.SetProviderRef(t.Context(), c.ID, 1, "ref-late"), storage.ErrConflict)
		wantErr(t, s.SetProviderRef(t.Context(), c.ID, 3, "ref-ahead"), storage.ErrConflict)
		got, err := s.GetChallenge(t.Context(), c.ID)
		must(t, err)
		want := res.Challenge
		want.ProviderRef = "ref-second"
		equal(t, got, want)
		wantErr(t, s.SetProviderRef(t.Context(), newID("challenge"), 1, "ref"), storage.ErrNotFound)
	})
}
