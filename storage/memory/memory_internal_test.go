package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// clock is a settable time source for WithNow.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s := New(opts...)
	t.Cleanup(func() { s.Close() })
	return s
}

// sizes counts the records held in each map, expired or not.
func (s *Store) sizes() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]int{
		"clients":         len(s.clients),
		"tokens":          len(s.tokens),
		"tokensByRequest": len(s.tokensByRequest),
		"flows":           len(s.flows),
		"challenges":      len(s.challenges),
		"sessions":        len(s.sessions),
		"consents":        len(s.consents),
		"keys":            len(s.keys),
		"outbox":          len(s.outbox),
		"limits":          len(s.limits),
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fill creates one record of every kind living for ttl, plus a client and a
// key that never expire.
func fill(t *testing.T, s *Store, now time.Time, ttl time.Duration) {
	t.Helper()
	ctx := context.Background()
	exp := now.Add(ttl)
	must(t, s.CreateClient(ctx, storage.Client{ID: "client"}))
	must(t, s.CreateToken(ctx, storage.Token{Kind: storage.KindAccessToken, Signature: "sig", RequestID: "req", Active: true, ExpiresAt: exp}))
	must(t, s.CreateFlow(ctx, storage.Flow{ID: "flow", ExpiresAt: exp}))
	// The challenge record lives ChallengeGrace longer than its code.
	must(t, s.CreateChallenge(ctx, storage.Challenge{ID: "ch", CodeHash: []byte("h"), MaxAttempts: 5, ExpiresAt: exp.Add(-storage.ChallengeGrace)}))
	must(t, s.CreateBrowserSession(ctx, storage.BrowserSession{ID: "bs", ExpiresAt: exp}))
	must(t, s.SaveConsent(ctx, storage.Consent{Subject: "sub", ClientID: "client", ExpiresAt: exp}))
	must(t, s.CreateKey(ctx, storage.SigningKey{ID: "forever"}))
	must(t, s.CreateKey(ctx, storage.SigningKey{ID: "retired", ExpiresAt: exp}))
	must(t, s.AppendOutbox(ctx, storage.OutboxMessage{ID: "m"}, 10))
	if ok, _, err := s.Allow(ctx, "k", 1, ttl/2); err != nil || !ok {
		t.Fatalf("Allow = %v, %v", ok, err)
	}
}

func TestJanitorReclaimsExpiredRecords(t *testing.T) {
	c := newClock()
	s := newStore(t, WithNow(c.Now), WithSweepInterval(time.Millisecond))
	fill(t, s, c.Now(), time.Hour)
	// The outbox outlives everything else: push the clock past it.
	c.Advance(storage.OutboxTTL)

	want := map[string]int{"clients": 1, "keys": 1}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := s.sizes()
		if fmt.Sprint(got) == fmt.Sprint(withZeros(want, got)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after expiry the janitor left %v, want %v", got, withZeros(want, got))
		}
		time.Sleep(time.Millisecond)
	}
}

func withZeros(want, like map[string]int) map[string]int {
	out := make(map[string]int, len(like))
	for k := range like {
		out[k] = want[k]
	}
	return out
}

func TestJanitorKeepsLiveRecords(t *testing.T) {
	c := newClock()
	s := newStore(t, WithNow(c.Now), WithSweepInterval(time.Millisecond))
	fill(t, s, c.Now(), time.Hour)
	before := s.sizes()
	c.Advance(time.Hour - time.Nanosecond)
	time.Sleep(20 * time.Millisecond) // many sweeps
	if got := s.sizes(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("janitor removed live records: %v, had %v", got, before)
	}
}

func TestLazyDeletionOnRead(t *testing.T) {
	c := newClock()
	s := newStore(t, WithNow(c.Now)) // the janitor will not run during the test
	ctx := context.Background()
	fill(t, s, c.Now(), time.Minute)
	c.Advance(time.Minute)

	reads := map[string]error{
		"token":     errOf(s.GetToken(ctx, storage.KindAccessToken, "sig")),
		"flow":      errOf(s.GetFlow(ctx, "flow")),
		"challenge": errOf(s.GetChallenge(ctx, "ch")),
		"session":   errOf(s.GetBrowserSession(ctx, "bs")),
		"consent":   errOf(s.GetConsent(ctx, "sub", "client")),
	}
	for name, err := range reads {
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: got %v, want ErrNotFound", name, err)
		}
	}
	keys, err := s.ListKeys(ctx)
	must(t, err)
	if len(keys) != 1 || keys[0].ID != "forever" {
		t.Errorf("ListKeys = %v, want only the key without expiry", keys)
	}
	got := s.sizes()
	for _, m := range []string{"tokens", "tokensByRequest", "flows", "challenges", "sessions", "consents"} {
		if got[m] != 0 {
			t.Errorf("%s: %d records left after reading them expired", m, got[m])
		}
	}
	if got["keys"] != 1 {
		t.Errorf("keys: %d left, want 1", got["keys"])
	}
}

func errOf[T any](_ T, err error) error { return err }

func errOf3[T, U any](_ T, _ U, err error) error { return err }

func TestExpiredIDCanBeReused(t *testing.T) {
	c := newClock()
	s := newStore(t, WithNow(c.Now))
	ctx := context.Background()
	tok := storage.Token{Kind: storage.KindRefreshToken, Signature: "s", RequestID: "r1", Active: true, ExpiresAt: c.Now().Add(time.Minute)}
	must(t, s.CreateToken(ctx, tok))
	if err := s.CreateToken(ctx, tok); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("second create: %v, want ErrAlreadyExists", err)
	}
	c.Advance(time.Minute)
	tok.RequestID = "r2"
	tok.ExpiresAt = c.Now().Add(time.Minute)
	must(t, s.CreateToken(ctx, tok))
	// The old request index must not reach the new token.
	must(t, s.DeleteTokensByRequest(ctx, storage.KindRefreshToken, "r1"))
	if _, err := s.GetToken(ctx, storage.KindRefreshToken, "s"); err != nil {
		t.Fatalf("token of r2 gone after deleting r1's: %v", err)
	}
}

func TestTokensByRequest(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	for _, tk := range []storage.Token{
		{Kind: storage.KindRefreshToken, Signature: "a", RequestID: "r", Active: true, ExpiresAt: exp},
		{Kind: storage.KindRefreshToken, Signature: "b", RequestID: "r", Active: true, ExpiresAt: exp},
		{Kind: storage.KindRefreshToken, Signature: "c", RequestID: "other", Active: true, ExpiresAt: exp},
		{Kind: storage.KindAccessToken, Signature: "a", RequestID: "r", Active: true, ExpiresAt: exp},
	} {
		must(t, s.CreateToken(ctx, tk))
	}
	must(t, s.DeactivateTokensByRequest(ctx, storage.KindRefreshToken, "r"))
	for sig, want := range map[string]bool{"a": false, "b": false, "c": true} {
		tk, err := s.GetToken(ctx, storage.KindRefreshToken, sig)
		must(t, err)
		if tk.Active != want {
			t.Errorf("refresh %s active = %v, want %v", sig, tk.Active, want)
		}
	}
	if err := s.DeactivateToken(ctx, storage.KindRefreshToken, "a"); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("deactivating an inactive token: %v, want ErrConflict", err)
	}
	must(t, s.DeleteTokensByRequest(ctx, storage.KindRefreshToken, "r"))
	for sig, want := range map[string]error{"a": storage.ErrNotFound, "b": storage.ErrNotFound, "c": nil} {
		if _, err := s.GetToken(ctx, storage.KindRefreshToken, sig); !errors.Is(err, want) {
			t.Errorf("refresh %s after delete by request: %v, want %v", sig, err, want)
		}
	}
	if tk, err := s.GetToken(ctx, storage.KindAccessToken, "a"); err != nil || !tk.Active {
		t.Errorf("access token of the same request touched: %+v, %v", tk, err)
	}
	if n := s.sizes()["tokensByRequest"]; n != 2 {
		t.Errorf("request index holds %d entries, want 2", n)
	}
}

func TestDeactivateTokenRace(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	must(t, s.CreateToken(ctx, storage.Token{Kind: storage.KindRefreshToken, Signature: "s", Active: true, ExpiresAt: time.Now().Add(time.Hour)}))
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			switch err := s.DeactivateToken(ctx, storage.KindRefreshToken, "s"); {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, storage.ErrConflict):
				conflicts.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != 49 {
		t.Fatalf("%d wins, %d conflicts; want 1 and 49", wins.Load(), conflicts.Load())
	}
}

func TestVerifyChallenge(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	code, wrong := []byte("good-hash"), []byte("bad-hash")
	type step struct {
		answer    []byte
		at        time.Duration // after now
		outcome   storage.VerifyOutcome
		remaining int
		attempts  int
		notFound  bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"right first time", []step{
			{answer: code, outcome: storage.VerifyOK, remaining: 3},
			{answer: code, notFound: true},
		}},
		{"wrong then right", []step{
			{answer: wrong, outcome: storage.VerifyWrongCode, remaining: 2, attempts: 1},
			{answer: code, outcome: storage.VerifyOK, remaining: 2, attempts: 1},
		}},
		{"locked after max attempts, right code no longer compared", []step{
			{answer: wrong, outcome: storage.VerifyWrongCode, remaining: 2, attempts: 1},
			{answer: wrong, outcome: storage.VerifyWrongCode, remaining: 1, attempts: 2},
			{answer: wrong, outcome: storage.VerifyLocked, remaining: 0, attempts: 3},
			{answer: code, outcome: storage.VerifyLocked, remaining: 0, attempts: 3},
		}},
		{"empty answer never matches", []step{
			{answer: nil, outcome: storage.VerifyWrongCode, remaining: 2, attempts: 1},
		}},
		{"expired at the instant", []step{
			{answer: code, at: 5 * time.Minute, outcome: storage.VerifyExpired, remaining: 3},
		}},
		{"valid just before", []step{
			{answer: code, at: 5*time.Minute - time.Nanosecond, outcome: storage.VerifyOK, remaining: 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, WithNow(func() time.Time { return now }))
			must(t, s.CreateChallenge(ctx, storage.Challenge{ID: "c", CodeHash: code, MaxAttempts: 3, Sends: 1, ExpiresAt: now.Add(5 * time.Minute)}))
			for i, st := range tt.steps {
				r, err := s.VerifyChallenge(ctx, "c", st.answer, now.Add(st.at))
				if st.notFound {
					if !errors.Is(err, storage.ErrNotFound) {
						t.Fatalf("step %d: %v, want ErrNotFound", i, err)
					}
					continue
				}
				must(t, err)
				if r.Outcome != st.outcome || r.Remaining != st.remaining || r.Challenge.Attempts != st.attempts {
					t.Fatalf("step %d: %v remaining %d attempts %d; want %v, %d, %d",
						i, r.Outcome, r.Remaining, r.Challenge.Attempts, st.outcome, st.remaining, st.attempts)
				}
			}
		})
	}
}

func TestVerifyChallengeExactlyOneWinner(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	code := []byte("hash")
	must(t, s.CreateChallenge(ctx, storage.Challenge{ID: "c", CodeHash: code, MaxAttempts: 5, ExpiresAt: time.Now().Add(time.Minute)}))
	var ok, gone atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			r, err := s.VerifyChallenge(ctx, "c", code, time.Now())
			switch {
			case errors.Is(err, storage.ErrNotFound):
				gone.Add(1)
			case err != nil:
				t.Error(err)
			case r.Outcome == storage.VerifyOK:
				ok.Add(1)
			default:
				t.Errorf("outcome %v", r.Outcome)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || gone.Load() != 63 {
		t.Fatalf("%d OK, %d not found; want 1 and 63", ok.Load(), gone.Load())
	}
}

func TestResendChallenge(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	base := storage.Challenge{ID: "c", CodeHash: []byte("old"), MaxAttempts: 3, Attempts: 1, Sends: 1, LastSentAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
	resend := storage.Resend{CodeHash: []byte("new"), Now: t0.Add(30 * time.Second), Cooldown: 30 * time.Second, MaxSends: 3, ExpiresAt: t0.Add(30*time.Second + 5*time.Minute)}
	tests := []struct {
		name    string
		edit    func(*storage.Challenge, *storage.Resend)
		outcome storage.ResendOutcome
		retry   time.Duration
	}{
		{"ok", func(*storage.Challenge, *storage.Resend) {}, storage.ResendOK, 0},
		{"too soon", func(_ *storage.Challenge, r *storage.Resend) { r.Now = t0.Add(10 * time.Second) }, storage.ResendTooSoon, 20 * time.Second},
		{"too many", func(c *storage.Challenge, _ *storage.Resend) { c.Sends = 3 }, storage.ResendTooMany, 0},
		{"locked wins over too many and too soon", func(c *storage.Challenge, r *storage.Resend) { c.Attempts, c.Sends, r.Now = 3, 3, t0 }, storage.ResendLocked, 0},
		{"after the code expired, within grace", func(_ *storage.Challenge, r *storage.Resend) {
			r.Now = t0.Add(10 * time.Minute)
			r.ExpiresAt = r.Now.Add(5 * time.Minute)
		}, storage.ResendOK, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, r := base, resend
			tt.edit(&c, &r)
			s := newStore(t, WithNow(func() time.Time { return r.Now }))
			must(t, s.CreateChallenge(ctx, c))
			res, err := s.ResendChallenge(ctx, "c", r)
			must(t, err)
			if res.Outcome != tt.outcome || res.RetryAfter != tt.retry {
				t.Fatalf("got %v retry %v, want %v retry %v", res.Outcome, res.RetryAfter, tt.outcome, tt.retry)
			}
			stored, err := s.GetChallenge(ctx, "c")
			must(t, err)
			if tt.outcome != storage.ResendOK {
				if !bytes.Equal(stored.CodeHash, c.CodeHash) || stored.Sends != c.Sends {
					t.Fatalf("refused resend changed the record: %+v", stored)
				}
				return
			}
			if !bytes.Equal(stored.CodeHash, r.CodeHash) || stored.Sends != c.Sends+1 || stored.Attempts != c.Attempts ||
				!stored.LastSentAt.Equal(r.Now) || !stored.ExpiresAt.Equal(r.ExpiresAt) {
				t.Fatalf("after resend: %+v", stored)
			}
			if vr, err := s.VerifyChallenge(ctx, "c", []byte("old"), r.Now); err != nil || vr.Outcome != storage.VerifyWrongCode {
				t.Fatalf("old code after resend: %v, %v", vr.Outcome, err)
			}
			if vr, err := s.VerifyChallenge(ctx, "c", []byte("new"), r.Now); err != nil || vr.Outcome != storage.VerifyOK {
				t.Fatalf("new code after resend: %v, %v", vr.Outcome, err)
			}
		})
	}
}

func TestUpdates(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	must(t, s.CreateFlow(ctx, storage.Flow{ID: "f", Step: "phone", ExpiresAt: exp}))
	for want := int64(1); want <= 3; want++ {
		f, err := s.UpdateFlow(ctx, "f", func(f storage.Flow) (storage.Flow, error) {
			f.Step = "code"
			f.Version = 100 // ignored: the backend owns it
			return f, nil
		})
		must(t, err)
		if f.Version != want {
			t.Fatalf("version %d, want %d", f.Version, want)
		}
	}
	if f, _ := s.GetFlow(ctx, "f"); f.Version != 3 || f.Step != "code" {
		t.Fatalf("stored flow %+v", f)
	}
	sentinel := errors.New("refused")
	if _, err := s.UpdateFlow(ctx, "f", func(f storage.Flow) (storage.Flow, error) { return f, sentinel }); err != sentinel {
		t.Fatalf("update error %v, want it returned as is", err)
	}
	if _, err := s.UpdateFlow(ctx, "f", func(f storage.Flow) (storage.Flow, error) { f.ID = "g"; return f, nil }); err == nil {
		t.Fatal("changing a flow id succeeded")
	}
	must(t, s.CreateClient(ctx, storage.Client{ID: "c"}))
	if _, err := s.UpdateClient(ctx, "c", func(c storage.Client) (storage.Client, error) { c.ID = "d"; return c, nil }); err == nil {
		t.Fatal("changing a client id succeeded")
	}
	must(t, s.CreateKey(ctx, storage.SigningKey{ID: "k"}))
	if _, err := s.UpdateKey(ctx, "k", func(k storage.SigningKey) (storage.SigningKey, error) { k.ID = ""; return k, nil }); err == nil {
		t.Fatal("changing a key id succeeded")
	}
	if _, err := s.UpdateClient(ctx, "missing", func(c storage.Client) (storage.Client, error) { return c, nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("update of a missing client: %v", err)
	}
}

func TestCopies(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := storage.Client{ID: "c", RedirectURIs: []string{"https://a/cb"}, SecretHash: []byte{1}}
	must(t, s.CreateClient(ctx, c))
	c.RedirectURIs[0] = "https://evil/cb"
	c.SecretHash[0] = 9
	got, err := s.GetClient(ctx, "c")
	must(t, err)
	if got.RedirectURIs[0] != "https://a/cb" || got.SecretHash[0] != 1 {
		t.Fatalf("caller's slices alias the stored client: %+v", got)
	}
	got.RedirectURIs[0] = "https://evil/cb"
	_, err = s.UpdateClient(ctx, "c", func(c storage.Client) (storage.Client, error) {
		c.Scopes = append(c.Scopes, "openid")
		c.RedirectURIs[0] = "https://b/cb"
		return c, nil
	})
	must(t, err)
	list, err := s.ListClients(ctx, "", 10)
	must(t, err)
	list[0].Scopes[0] = "admin"
	again, _ := s.GetClient(ctx, "c")
	if again.RedirectURIs[0] != "https://b/cb" || again.Scopes[0] != "openid" {
		t.Fatalf("stored client %+v", again)
	}
}

func TestListing(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, id := range []string{"d", "b", "a", "c", "e"} {
		must(t, s.CreateClient(ctx, storage.Client{ID: id}))
	}
	var pages [][]string
	for after := ""; ; {
		page, err := s.ListClients(ctx, after, 2)
		must(t, err)
		if len(page) == 0 {
			break
		}
		var ids []string
		for _, c := range page {
			ids = append(ids, c.ID)
		}
		pages = append(pages, ids)
		after = page[len(page)-1].ID
	}
	if got := fmt.Sprint(pages); got != "[[a b] [c d] [e]]" {
		t.Fatalf("pages %s", got)
	}

	t0 := time.Now()
	for _, k := range []storage.SigningKey{
		{ID: "old", CreatedAt: t0.Add(-2 * time.Hour)},
		{ID: "new-b", CreatedAt: t0},
		{ID: "new-a", CreatedAt: t0},
		{ID: "mid", CreatedAt: t0.Add(-time.Hour), ExpiresAt: t0.Add(time.Hour)},
	} {
		must(t, s.CreateKey(ctx, k))
	}
	keys, err := s.ListKeys(ctx)
	must(t, err)
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	if got := fmt.Sprint(ids); got != "[new-a new-b mid old]" {
		t.Fatalf("keys %s", got)
	}
}

func TestOutbox(t *testing.T) {
	c := newClock()
	s := newStore(t, WithNow(c.Now))
	ctx := context.Background()
	for i := range 5 {
		must(t, s.AppendOutbox(ctx, storage.OutboxMessage{ID: fmt.Sprint(i)}, 3))
		c.Advance(time.Hour)
	}
	ids := func(limit int) string {
		msgs, err := s.ListOutbox(ctx, limit)
		must(t, err)
		var out []string
		for _, m := range msgs {
			out = append(out, m.ID)
		}
		return fmt.Sprint(out)
	}
	if got := ids(10); got != "[4 3 2]" {
		t.Fatalf("outbox %s, want [4 3 2]", got)
	}
	if got := ids(2); got != "[4 3]" {
		t.Fatalf("outbox limit 2: %s", got)
	}
	if got := ids(0); got != "[]" {
		t.Fatalf("outbox limit 0: %s, want none", got)
	}
	// Expiry counts from the last append, one hour ago.
	c.Advance(storage.OutboxTTL - 2*time.Hour)
	if got := ids(10); got != "[4 3 2]" {
		t.Fatalf("outbox before expiry %s", got)
	}
	c.Advance(time.Hour)
	if got := ids(10); got != "[]" {
		t.Fatalf("outbox after expiry %s", got)
	}
	if err := s.AppendOutbox(ctx, storage.OutboxMessage{}, 0); err == nil {
		t.Fatal("max 0 accepted")
	}
}

func TestAllow(t *testing.T) {
	c := newClock() // 12:00:00 UTC: aligned on a minute
	s := newStore(t, WithNow(c.Now))
	ctx := context.Background()
	allow := func() (bool, time.Duration) {
		t.Helper()
		ok, retry, err := s.Allow(ctx, "k", 3, time.Minute)
		must(t, err)
		return ok, retry
	}
	for i := range 3 {
		if ok, _ := allow(); !ok {
			t.Fatalf("event %d refused", i)
		}
	}
	// In the next window the three weigh 3*(1-t/60s): below 2 from t = 20s.
	ok, retry := allow()
	if ok || retry != 80*time.Second {
		t.Fatalf("4th event: %v retry %v, want refused, retry 1m20s", ok, retry)
	}
	// Half way into the next minute the previous three weigh 1.5: one more fits.
	c.Advance(90 * time.Second)
	if ok, _ := allow(); !ok {
		t.Fatal("refused at 1m30s")
	}
	if ok, retry := allow(); ok || retry <= 0 {
		t.Fatalf("second event at 1m30s: %v retry %v", ok, retry)
	}
	// Other windows of the same key count apart.
	if ok, _, err := s.Allow(ctx, "k", 1, time.Hour); err != nil || !ok {
		t.Fatalf("hourly limit on the same key: %v, %v", ok, err)
	}
	// Two whole windows later everything has slid out.
	c.Advance(2 * time.Minute)
	for i := range 3 {
		if ok, _ := allow(); !ok {
			t.Fatalf("event %d after two windows refused", i)
		}
	}
	if _, _, err := s.Allow(ctx, "k", 1, 0); err == nil {
		t.Fatal("zero window accepted")
	}
	if ok, _, err := s.Allow(ctx, "zero", 0, time.Minute); err != nil || ok {
		t.Fatalf("limit 0: %v, %v", ok, err)
	}
}

func TestAllowConcurrent(t *testing.T) {
	s := newStore(t)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			ok, _, err := s.Allow(context.Background(), "k", 10, time.Hour)
			if err != nil {
				t.Error(err)
			}
			if ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	// The hour may roll over during the test, letting a few more through.
	if n := allowed.Load(); n < 10 || n > 20 {
		t.Fatalf("%d events allowed, want 10", n)
	}
}

func TestCancelledContextAndClose(t *testing.T) {
	s := New()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := func(ctx context.Context) map[string]error {
		return map[string]error{
			"Ping":            s.Ping(ctx),
			"GetClient":       errOf(s.GetClient(ctx, "c")),
			"CreateToken":     s.CreateToken(ctx, storage.Token{Signature: "s", ExpiresAt: time.Now().Add(time.Hour)}),
			"VerifyChallenge": errOf(s.VerifyChallenge(ctx, "c", nil, time.Now())),
			"Allow":           errOf3(s.Allow(ctx, "k", 1, time.Minute)),
			"ListOutbox":      errOf(s.ListOutbox(ctx, 1)),
			"ListKeys":        errOf(s.ListKeys(ctx)),
		}
	}
	for name, err := range calls(ctx) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v", name, err)
		}
	}
	must(t, s.Ping(context.Background()))
	must(t, s.Close())
	must(t, s.Close())
	for name, err := range calls(context.Background()) {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

func TestRecordsNeedExpiry(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for name, err := range map[string]error{
		"token":     s.CreateToken(ctx, storage.Token{Signature: "s"}),
		"flow":      s.CreateFlow(ctx, storage.Flow{ID: "f"}),
		"challenge": s.CreateChallenge(ctx, storage.Challenge{ID: "c"}),
		"session":   s.CreateBrowserSession(ctx, storage.BrowserSession{ID: "b"}),
		"consent":   s.SaveConsent(ctx, storage.Consent{Subject: "s", ClientID: "c"}),
	} {
		if !errors.Is(err, errMissingExpiry) {
			t.Errorf("%s without expiry: %v", name, err)
		}
	}
}

func BenchmarkVerifyChallenge(b *testing.B) {
	ctx := context.Background()
	code := bytes.Repeat([]byte{7}, 32) // an HMAC-SHA256
	wrong := bytes.Repeat([]byte{8}, 32)
	exp := time.Now().Add(time.Hour)

	b.Run("wrong", func(b *testing.B) {
		s := newStore(b)
		must(b, s.CreateChallenge(ctx, storage.Challenge{ID: "c", CodeHash: code, MaxAttempts: math.MaxInt, ExpiresAt: exp}))
		b.ReportAllocs()
		for b.Loop() {
			if r, err := s.VerifyChallenge(ctx, "c", wrong, time.Now()); err != nil || r.Outcome != storage.VerifyWrongCode {
				b.Fatal(r.Outcome, err)
			}
		}
	})
	// One challenge created and consumed per op.
	b.Run("create+ok", func(b *testing.B) {
		s := newStore(b)
		c := storage.Challenge{ID: "c", CodeHash: code, MaxAttempts: 5, ExpiresAt: exp}
		b.ReportAllocs()
		for b.Loop() {
			must(b, s.CreateChallenge(ctx, c))
			if r, err := s.VerifyChallenge(ctx, "c", code, time.Now()); err != nil || r.Outcome != storage.VerifyOK {
				b.Fatal(r.Outcome, err)
			}
		}
	})
	b.Run("wrong-parallel", func(b *testing.B) {
		s := newStore(b)
		must(b, s.CreateChallenge(ctx, storage.Challenge{ID: "c", CodeHash: code, MaxAttempts: math.MaxInt, ExpiresAt: exp}))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.VerifyChallenge(ctx, "c", wrong, time.Now()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkAllow(b *testing.B) {
	ctx := context.Background()
	b.Run("one-key", func(b *testing.B) {
		s := newStore(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.Allow(ctx, "k", 1_000_000, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("many-keys", func(b *testing.B) {
		s := newStore(b)
		keys := make([]string, 10_000)
		for i := range keys {
			keys[i] = fmt.Sprintf("phone:%064x", i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, _, err := s.Allow(ctx, keys[i%len(keys)], 5, time.Minute); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
