package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

const (
	ttl      = time.Second // lifetime of the short-lived records
	ttlSlack = time.Second // waited beyond the expiry before checking
)

// testTTL creates short-lived records and waits for real: Redis expires keys on
// its own clock, so a fake clock would prove nothing. All records share one
// wait. The outbox is left out: its lifetime is the fixed storage.OutboxTTL.
func testTTL(t *testing.T, s storage.Store) {
	ctx := t.Context()
	exp := now().Add(ttl)
	type check struct {
		name string
		kept bool
		get  func() error
	}
	var checks []check

	// Each case creates a record that should be gone at exp (or, when kept,
	// still be there) and returns how to look it up.
	for _, c := range []struct {
		name   string
		kept   bool
		create func(t *testing.T, ctx context.Context, exp time.Time) (get func() error)
	}{
		{name: "Flow", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			f := newFlow(newID("flow"))
			f.ExpiresAt = exp
			must(t, s.CreateFlow(ctx, f))
			return func() error { _, err := s.GetFlow(ctx, f.ID); return err }
		}},
		{name: "FlowShortenedByUpdate", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			f := newFlow(newID("flow"))
			must(t, s.CreateFlow(ctx, f))
			_, err := s.UpdateFlow(ctx, f.ID, func(f storage.Flow) (storage.Flow, error) { f.ExpiresAt = exp; return f, nil })
			must(t, err)
			return func() error { _, err := s.GetFlow(ctx, f.ID); return err }
		}},
		{name: "FlowExtendedByUpdate", kept: true, create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			f := newFlow(newID("flow"))
			f.ExpiresAt = exp
			must(t, s.CreateFlow(ctx, f))
			_, err := s.UpdateFlow(ctx, f.ID, func(f storage.Flow) (storage.Flow, error) { f.ExpiresAt = now().Add(time.Hour); return f, nil })
			must(t, err)
			return func() error { _, err := s.GetFlow(ctx, f.ID); return err }
		}},
		// A challenge record lives ChallengeGrace past its code; a code that
		// expired that long ago leaves a record with a short life.
		{name: "Challenge", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			c := createChallenge(t, s, exp.Add(-storage.ChallengeGrace-codeTTL), nil)
			return func() error { _, err := s.GetChallenge(ctx, c.ID); return err }
		}},
		// A counted wrong answer rewrites the record: its expiry must survive.
		// (The answer is given at the caller's clock, when the code was valid.)
		{name: "ChallengeAfterWrongAnswer", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			sent := exp.Add(-storage.ChallengeGrace - codeTTL)
			c := createChallenge(t, s, sent, nil)
			verify(t, s, c.ID, wrongCode, sent.Add(time.Second), storage.VerifyWrongCode, maxAttempts-1)
			return func() error { _, err := s.GetChallenge(ctx, c.ID); return err }
		}},
		{name: "ChallengeAfterCountAttempt", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			sent := exp.Add(-storage.ChallengeGrace - codeTTL)
			c := createChallenge(t, s, sent, nil)
			count(t, s, c.ID, sent.Add(time.Second), storage.VerifyCounted, maxAttempts-1)
			return func() error { _, err := s.GetChallenge(ctx, c.ID); return err }
		}},
		{name: "ChallengeAfterSetProviderRef", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			c := createChallenge(t, s, exp.Add(-storage.ChallengeGrace-codeTTL), nil)
			must(t, s.SetProviderRef(ctx, c.ID, 1, "ref-set"))
			return func() error { _, err := s.GetChallenge(ctx, c.ID); return err }
		}},
		{name: "ChallengeAfterResend", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			c := createChallenge(t, s, now(), nil)
			at := exp.Add(-storage.ChallengeGrace - codeTTL)
			res, err := s.ResendChallenge(ctx, c.ID, storage.Resend{CodeHash: codeHash("111111"), Now: c.LastSentAt.Add(time.Hour),
				Cooldown: cooldown, MaxSends: 3, ExpiresAt: at.Add(codeTTL)})
			must(t, err)
			if res.Outcome != storage.ResendOK {
				t.Fatalf("resend: %v", res.Outcome)
			}
			return func() error { _, err := s.GetChallenge(ctx, c.ID); return err }
		}},
		{name: "ChallengeAfterSameCodeResend", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			// Re-sending the same code extends neither the code nor the record.
			c := createChallenge(t, s, exp.Add(-storage.ChallengeGrace-codeTTL), nil)
			res, err := s.ResendChallenge(ctx, c.ID, storage.Resend{KeepCode: true, Now: c.LastSentAt.Add(cooldown),
				Cooldown: cooldown, MaxSends: 3})
			must(t, err)
			if res.Outcome != storage.ResendOK || !res.Challenge.ExpiresAt.Equal(c.ExpiresAt) {
				t.Fatalf("resend of the same code: %v, expires %v, want ok, %v", res.Outcome, res.Challenge.ExpiresAt, c.ExpiresAt)
			}
			return func() error { _, err := s.GetChallenge(ctx, c.ID); return err }
		}},
		{name: "Token", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			tok := newToken(storage.KindAccessToken, newID("req"))
			tok.ExpiresAt = exp
			must(t, s.CreateToken(ctx, tok))
			return func() error { _, err := s.GetToken(ctx, tok.Kind, tok.Signature); return err }
		}},
		{name: "TokenAfterDeactivate", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			tok := newToken(storage.KindAuthorizeCode, newID("req"))
			tok.ExpiresAt = exp
			must(t, s.CreateToken(ctx, tok))
			must(t, s.DeactivateToken(ctx, tok.Kind, tok.Signature))
			return func() error { _, err := s.GetToken(ctx, tok.Kind, tok.Signature); return err }
		}},
		{name: "TokenAfterDeactivateByRequest", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			tok := newToken(storage.KindRefreshToken, newID("req"))
			tok.ExpiresAt = exp
			must(t, s.CreateToken(ctx, tok))
			must(t, s.DeactivateTokensByRequest(ctx, tok.Kind, tok.RequestID))
			return func() error { _, err := s.GetToken(ctx, tok.Kind, tok.Signature); return err }
		}},
		{name: "BrowserSession", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			b := newBrowserSession()
			b.ExpiresAt = exp
			must(t, s.CreateBrowserSession(ctx, b))
			return func() error { _, err := s.GetBrowserSession(ctx, b.ID); return err }
		}},
		{name: "Consent", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			c := newConsent()
			c.ExpiresAt = exp
			must(t, s.SaveConsent(ctx, c))
			return func() error { _, err := s.GetConsent(ctx, c.Subject, c.ClientID); return err }
		}},
		{name: "Key", create: func(t *testing.T, ctx context.Context, exp time.Time) func() error {
			k := newKey(newID("kid"), now())
			k.State, k.ExpiresAt = storage.KeyRetired, exp
			must(t, s.CreateKey(ctx, k))
			return func() error {
				keys, err := s.ListKeys(ctx)
				for _, got := range keys {
					if got.ID == k.ID {
						return nil
					}
				}
				if err != nil {
					return err
				}
				return storage.ErrNotFound
			}
		}},
	} {
		get := c.create(t, ctx, exp)
		if err := get(); err != nil {
			t.Fatalf("%s: missing before it expired: %v", c.name, err)
		}
		checks = append(checks, check{c.name, c.kept, get})
	}

	sleepUntil(exp.Add(ttlSlack))
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if err := c.get(); c.kept {
				must(t, err)
			} else {
				wantErr(t, err, storage.ErrNotFound)
			}
		})
	}
}
