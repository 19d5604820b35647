package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// testCancelledContext calls every method with a cancelled context. Each call
// would succeed with a live one (the records exist, the new ids are free), so
// an error can only come from the cancellation. Afterwards the records must be
// as they were: a cancelled call changes nothing.
func testCancelledContext(t *testing.T, s storage.Store) {
	live := t.Context()
	client := newClient(newID("client"))
	must(t, s.CreateClient(live, client))
	tok := newToken(storage.KindRefreshToken, newID("req"))
	must(t, s.CreateToken(live, tok))
	flow := newFlow(newID("flow"))
	must(t, s.CreateFlow(live, flow))
	t0 := now()
	challenge := createChallenge(t, s, t0, nil)
	session := newBrowserSession()
	must(t, s.CreateBrowserSession(live, session))
	consent := newConsent()
	must(t, s.SaveConsent(live, consent))
	key := newKey(newID("kid"), now())
	must(t, s.CreateKey(live, key))

	keepClient := func(c storage.Client) (storage.Client, error) { return c, nil }
	keepFlow := func(f storage.Flow) (storage.Flow, error) { return f, nil }
	keepKey := func(k storage.SigningKey) (storage.SigningKey, error) { return k, nil }
	resend := storage.Resend{CodeHash: codeHash("111111"), Now: t0.Add(time.Hour), Cooldown: cooldown, MaxSends: 3, ExpiresAt: t0.Add(2 * time.Hour)}
	calls := map[string]func(ctx context.Context) error{
		"Ping":         s.Ping,
		"CreateClient": func(ctx context.Context) error { return s.CreateClient(ctx, newClient(newID("client"))) },
		"GetClient":    func(ctx context.Context) error { _, err := s.GetClient(ctx, client.ID); return err },
		"ListClients":  func(ctx context.Context) error { _, err := s.ListClients(ctx, "", 10); return err },
		"UpdateClient": func(ctx context.Context) error { _, err := s.UpdateClient(ctx, client.ID, keepClient); return err },
		"DeleteClient": func(ctx context.Context) error { return s.DeleteClient(ctx, client.ID) },
		"CreateToken": func(ctx context.Context) error {
			return s.CreateToken(ctx, newToken(storage.KindAccessToken, newID("req")))
		},
		"GetToken":                  func(ctx context.Context) error { _, err := s.GetToken(ctx, tok.Kind, tok.Signature); return err },
		"DeleteToken":               func(ctx context.Context) error { return s.DeleteToken(ctx, tok.Kind, tok.Signature) },
		"DeactivateToken":           func(ctx context.Context) error { return s.DeactivateToken(ctx, tok.Kind, tok.Signature) },
		"DeactivateTokensByRequest": func(ctx context.Context) error { return s.DeactivateTokensByRequest(ctx, tok.Kind, tok.RequestID) },
		"DeleteTokensByRequest":     func(ctx context.Context) error { return s.DeleteTokensByRequest(ctx, tok.Kind, tok.RequestID) },
		"CreateFlow":                func(ctx context.Context) error { return s.CreateFlow(ctx, newFlow(newID("flow"))) },
		"GetFlow":                   func(ctx context.Context) error { _, err := s.GetFlow(ctx, flow.ID); return err },
		"UpdateFlow":                func(ctx context.Context) error { _, err := s.UpdateFlow(ctx, flow.ID, keepFlow); return err },
		"ReplaceFlow":               func(ctx context.Context) error { _, err := s.ReplaceFlow(ctx, flow); return err },
		"DeleteFlow":                func(ctx context.Context) error { return s.DeleteFlow(ctx, flow.ID) },
		"CreateChallenge":           func(ctx context.Context) error { return s.CreateChallenge(ctx, newChallenge(t0)) },
		"GetChallenge":              func(ctx context.Context) error { _, err := s.GetChallenge(ctx, challenge.ID); return err },
		"VerifyChallenge": func(ctx context.Context) error {
			_, err := s.VerifyChallenge(ctx, challenge.ID, codeHash(rightCode), t0)
			return err
		},
		"CountAttempt": func(ctx context.Context) error {
			_, err := s.CountAttempt(ctx, challenge.ID, t0)
			return err
		},
		"ConsumeChallenge":     func(ctx context.Context) error { _, err := s.ConsumeChallenge(ctx, challenge.ID); return err },
		"SetProviderRef":       func(ctx context.Context) error { return s.SetProviderRef(ctx, challenge.ID, 1, "cancelled") },
		"ResendChallenge":      func(ctx context.Context) error { _, err := s.ResendChallenge(ctx, challenge.ID, resend); return err },
		"DeleteChallenge":      func(ctx context.Context) error { return s.DeleteChallenge(ctx, challenge.ID) },
		"CreateBrowserSession": func(ctx context.Context) error { return s.CreateBrowserSession(ctx, newBrowserSession()) },
		"GetBrowserSession":    func(ctx context.Context) error { _, err := s.GetBrowserSession(ctx, session.ID); return err },
		"DeleteBrowserSession": func(ctx context.Context) error { return s.DeleteBrowserSession(ctx, session.ID) },
		"SaveConsent":          func(ctx context.Context) error { return s.SaveConsent(ctx, newConsent()) },
		"GetConsent": func(ctx context.Context) error {
			_, err := s.GetConsent(ctx, consent.Subject, consent.ClientID)
			return err
		},
		"DeleteConsent": func(ctx context.Context) error { return s.DeleteConsent(ctx, consent.Subject, consent.ClientID) },
		"CreateKey":     func(ctx context.Context) error { return s.CreateKey(ctx, newKey(newID("kid"), now())) },
		"ListKeys":      func(ctx context.Context) error { _, err := s.ListKeys(ctx); return err },
		"UpdateKey":     func(ctx context.Context) error { _, err := s.UpdateKey(ctx, key.ID, keepKey); return err },
		"DeleteKey":     func(ctx context.Context) error { return s.DeleteKey(ctx, key.ID) },
		"AppendOutbox": func(ctx context.Context) error {
			return s.AppendOutbox(ctx, storage.OutboxMessage{ID: newID("sms"), To: "+33612345678", Body: "cancelled", SentAt: now()}, 10)
		},
		"ListOutbox": func(ctx context.Context) error { _, err := s.ListOutbox(ctx, 10); return err },
		"Allow":      func(ctx context.Context) error { _, _, err := s.Allow(ctx, newID("rl"), 10, time.Minute); return err },
		"AllowEach": func(ctx context.Context) error {
			_, err := s.AllowEach(ctx, []storage.RateCheck{{Key: newID("rl"), Limit: 10, Window: time.Minute}})
			return err
		},
		"AddCount": func(ctx context.Context) error { _, err := s.AddCount(ctx, newID("cnt"), 1, time.Minute); return err },
		"AddCounts": func(ctx context.Context) error {
			_, err := s.AddCounts(ctx, []storage.CountChange{{Key: newID("cnt"), Delta: 1, Window: time.Minute}})
			return err
		},
	}
	for name, call := range calls {
		if err := call(cancelled(t)); err == nil {
			t.Errorf("%s with a cancelled context: no error", name)
		}
	}

	// Nothing was deleted, deactivated or consumed.
	for name, get := range map[string]func() error{
		"client":    func() error { _, err := s.GetClient(live, client.ID); return err },
		"flow":      func() error { _, err := s.GetFlow(live, flow.ID); return err },
		"challenge": func() error { _, err := s.GetChallenge(live, challenge.ID); return err },
		"session":   func() error { _, err := s.GetBrowserSession(live, session.ID); return err },
		"consent":   func() error { _, err := s.GetConsent(live, consent.Subject, consent.ClientID); return err },
	} {
		if err := get(); err != nil {
			t.Errorf("%s after cancelled calls: %v", name, err)
		}
	}
	got, err := s.GetToken(live, tok.Kind, tok.Signature)
	must(t, err)
	equal(t, got, tok)
	c, err := s.GetChallenge(live, challenge.ID)
	must(t, err)
	equal(t, c, challenge)
	if len(myKeys(t, s, key.ID)) != 1 {
		t.Errorf("key %s gone after cancelled calls", key.ID)
	}
}
