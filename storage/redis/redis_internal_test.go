package redis

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/redis/redistest"
)

// These tests check what the conformance suite (storagetest) cannot see from
// outside: TTLs on the keys themselves, round trips, the Lua rate limiter's
// arithmetic against storage.SlidingWindow, key escaping, Open/Close ownership,
// memory per challenge. They also repeat the few atomicity checks that matter
// most, so that a failure points here directly.

// newTestStore returns a Store under a fresh prefix, its client and a round-trip
// counter installed on that client.
func newTestStore(t testing.TB) (*Store, goredis.UniversalClient, *redistest.RoundTrips) {
	client, prefix := redistest.New(t)
	rt := &redistest.RoundTrips{}
	client.AddHook(rt)
	return New(client, WithPrefix(prefix)), client, rt
}

func hash(code string) []byte {
	h := sha256.Sum256([]byte(code))
	return h[:]
}

// id returns a random id shaped like otpgate's (128 bits in base64url, 22
// characters) behind a readable kind.
func id(kind string) string {
	b := make([]byte, 16)
	_, _ = cryptorand.Read(b)
	return kind + "-" + base64.RawURLEncoding.EncodeToString(b)
}

func challenge(t0 time.Time) storage.Challenge {
	return storage.Challenge{
		ID:          id("ch"),
		FlowID:      id("flow"),
		Phone:       "+33612345678",
		CodeHash:    hash("123456"),
		MaxAttempts: 5,
		Sends:       1,
		LastSentAt:  t0,
		ExpiresAt:   t0.Add(5 * time.Minute),
		CreatedAt:   t0,
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRaceExactlyOneWins(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	t0 := time.Now()
	c := challenge(t0)
	must(t, s.CreateChallenge(ctx, c))

	const n = 50
	var ok, notFound, other atomic.Int64
	race(n, func(int) {
		res, err := s.VerifyChallenge(ctx, c.ID, hash("123456"), t0.Add(time.Second))
		switch {
		case err == nil && res.Outcome == storage.VerifyOK:
			ok.Add(1)
		case errors.Is(err, storage.ErrNotFound):
			notFound.Add(1)
		default:
			other.Add(1)
			t.Errorf("verify: %v %v", res.Outcome, err)
		}
	})
	if ok.Load() != 1 || notFound.Load() != n-1 {
		t.Fatalf("%d goroutines: %d VerifyOK, %d ErrNotFound, %d other; want 1, %d, 0", n, ok.Load(), notFound.Load(), other.Load(), n-1)
	}
}

func TestAllowRaceExactlyLimit(t *testing.T) {
	s, _, _ := newTestStore(t)
	const n, limit = 50, 10
	var allowed atomic.Int64
	race(n, func(int) {
		ok, retry, err := s.Allow(t.Context(), "race", limit, time.Hour)
		if err != nil {
			t.Error(err)
		}
		if ok {
			allowed.Add(1)
		} else if retry <= 0 {
			t.Errorf("refused with retry after %v", retry)
		}
	})
	if allowed.Load() != limit {
		t.Fatalf("%d racing events allowed, want %d", allowed.Load(), limit)
	}
}

func TestWrongCodeUntilLocked(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	t0 := time.Now()
	c := challenge(t0)
	must(t, s.CreateChallenge(ctx, c))
	during := t0.Add(time.Second)

	// A hash of another length is a wrong answer like any other.
	for i, answer := range [][]byte{hash("000000"), hash("111111")[:8], nil, hash("222222")} {
		res, err := s.VerifyChallenge(ctx, c.ID, answer, during)
		must(t, err)
		if res.Outcome != storage.VerifyWrongCode || res.Remaining != 4-i || res.Challenge.Attempts != i+1 {
			t.Fatalf("wrong answer %d: %v, %d remaining, %d attempts", i+1, res.Outcome, res.Remaining, res.Challenge.Attempts)
		}
	}
	res, err := s.VerifyChallenge(ctx, c.ID, hash("333333"), during)
	must(t, err)
	if res.Outcome != storage.VerifyLocked || res.Remaining != 0 {
		t.Fatalf("fifth wrong answer: %v, %d remaining; want locked, 0", res.Outcome, res.Remaining)
	}
	res, err = s.VerifyChallenge(ctx, c.ID, hash("123456"), during)
	must(t, err)
	if res.Outcome != storage.VerifyLocked || res.Challenge.Attempts != 5 {
		t.Fatalf("right answer after lock: %v with %d attempts; want locked, 5", res.Outcome, res.Challenge.Attempts)
	}
	rr, err := s.ResendChallenge(ctx, c.ID, storage.Resend{CodeHash: hash("444444"), Now: t0.Add(time.Hour), Cooldown: time.Second, MaxSends: 3, ExpiresAt: t0.Add(2 * time.Hour)})
	must(t, err)
	if rr.Outcome != storage.ResendLocked {
		t.Fatalf("resend after lock: %v", rr.Outcome)
	}
}

// TestEveryKeyHasTTL writes every kind of record, through every kind of write,
// and checks the TTL of each key: only clients, keys without ExpiresAt and
// their indexes may live forever.
func TestEveryKeyHasTTL(t *testing.T) {
	s, client, _ := newTestStore(t)
	ctx := t.Context()
	now := time.Now()
	hour := now.Add(time.Hour)

	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := client.PTTL(ctx, key).Result()
		must(t, err)
		return d
	}
	expiring := func(what, key string) {
		t.Helper()
		if d := pttl(key); d <= 0 {
			t.Errorf("%s: key %s has PTTL %v, want > 0", what, key, d)
		}
	}

	c := challenge(now)
	must(t, s.CreateChallenge(ctx, c))
	expiring("CreateChallenge", s.challengeKey(c.ID))
	_, err := s.VerifyChallenge(ctx, c.ID, hash("000000"), now)
	must(t, err)
	expiring("VerifyChallenge (wrong)", s.challengeKey(c.ID))
	_, err = s.CountAttempt(ctx, c.ID, now)
	must(t, err)
	expiring("CountAttempt", s.challengeKey(c.ID))
	must(t, s.SetProviderRef(ctx, c.ID, 1, "ref"))
	expiring("SetProviderRef", s.challengeKey(c.ID))
	rr, err := s.ResendChallenge(ctx, c.ID, storage.Resend{CodeHash: hash("1"), Now: now.Add(time.Minute), Cooldown: time.Second, MaxSends: 3, ExpiresAt: hour})
	must(t, err)
	if rr.Outcome != storage.ResendOK {
		t.Fatalf("resend: %v", rr.Outcome)
	}
	if d := pttl(s.challengeKey(c.ID)); d < time.Hour+storage.ChallengeGrace-time.Minute {
		t.Errorf("after resend the challenge lives %v, want about 1h+grace", d)
	}

	tok := storage.Token{Kind: storage.KindRefreshToken, Signature: id("sig"), RequestID: id("req"), Active: true, ExpiresAt: hour}
	must(t, s.CreateToken(ctx, tok))
	expiring("CreateToken", s.tokenKey(tok.Kind, tok.Signature))
	expiring("CreateToken index", s.requestKey(tok.Kind, tok.RequestID))
	must(t, s.DeactivateToken(ctx, tok.Kind, tok.Signature))
	expiring("DeactivateToken", s.tokenKey(tok.Kind, tok.Signature))
	// The request index lives as long as its longest-lived token.
	tok2 := tok
	tok2.Signature, tok2.ExpiresAt = id("sig"), now.Add(3*time.Hour)
	must(t, s.CreateToken(ctx, tok2))
	tok3 := tok
	tok3.Signature, tok3.ExpiresAt = id("sig"), now.Add(2*time.Hour)
	must(t, s.CreateToken(ctx, tok3))
	if d := pttl(s.requestKey(tok.Kind, tok.RequestID)); d < 3*time.Hour-time.Minute {
		t.Errorf("request index lives %v, want about 3h (its longest token)", d)
	}
	must(t, s.DeactivateTokensByRequest(ctx, tok.Kind, tok.RequestID))
	expiring("DeactivateTokensByRequest", s.tokenKey(tok2.Kind, tok2.Signature))

	f := storage.Flow{ID: id("flow"), Step: "phone", ExpiresAt: hour}
	must(t, s.CreateFlow(ctx, f))
	expiring("CreateFlow", s.flowKey(f.ID))
	_, err = s.UpdateFlow(ctx, f.ID, func(f storage.Flow) (storage.Flow, error) { f.Step = "code"; return f, nil })
	must(t, err)
	expiring("UpdateFlow", s.flowKey(f.ID))

	bs := storage.BrowserSession{ID: id("sess"), Subject: "sub", ExpiresAt: hour}
	must(t, s.CreateBrowserSession(ctx, bs))
	expiring("CreateBrowserSession", s.sessionKey(bs.ID))
	must(t, s.SaveConsent(ctx, storage.Consent{Subject: "sub", ClientID: "rp", ExpiresAt: hour}))
	expiring("SaveConsent", s.consentKey("sub", "rp"))
	must(t, s.AppendOutbox(ctx, storage.OutboxMessage{ID: "m1", To: "+33612345678", Body: "hi", SentAt: now}, 10))
	expiring("AppendOutbox", s.outboxKey())
	_, _, err = s.Allow(ctx, "k", 5, time.Minute)
	must(t, err)
	expiring("Allow", s.limiterKey("k"))
	if d := pttl(s.limiterKey("k")); d > 2*time.Minute {
		t.Errorf("rate-limit counters live %v, want at most two windows", d)
	}

	k := storage.SigningKey{ID: id("kid"), State: storage.KeyCurrent, CreatedAt: now}
	must(t, s.CreateKey(ctx, k))
	_, err = s.UpdateKey(ctx, k.ID, func(k storage.SigningKey) (storage.SigningKey, error) {
		k.State, k.ExpiresAt = storage.KeyRetired, hour
		return k, nil
	})
	must(t, err)
	expiring("UpdateKey (retired)", s.signingKey(k.ID))

	// Every key under the prefix: a TTL unless it is a client, a key kept
	// until deleted, or one of their indexes.
	must(t, s.CreateClient(ctx, storage.Client{ID: "rp"}))
	k2 := storage.SigningKey{ID: id("kid"), State: storage.KeyCurrent, CreatedAt: now}
	must(t, s.CreateKey(ctx, k2))
	forever := map[string]bool{s.clientKey("rp"): true, s.clientIndexKey(): true, s.signingKey(k2.ID): true, s.keyIndexKey(): true}
	keys, err := redistest.Keys(ctx, client, s.prefix)
	must(t, err)
	if len(keys) < 14 {
		t.Fatalf("only %d keys under the prefix: %v", len(keys), keys)
	}
	for _, key := range keys {
		d := pttl(key)
		if forever[key] {
			if d != -1 {
				t.Errorf("%s has PTTL %v, want none", key, d)
			}
			continue
		}
		if d <= 0 {
			t.Errorf("%s has PTTL %v, want > 0", key, d)
		}
	}
}

// TestRoundTrips pins the number of requests each hot operation sends once its
// scripts are cached.
func TestRoundTrips(t *testing.T) {
	s, client, rt := newTestStore(t)
	ctx := t.Context()
	// Every node must know every script first: on a cluster the steady state
	// below may land on a node the warm-up call did not touch.
	for _, sc := range []*goredis.Script{createJSON, createIndexed, deleteIndexed, pruneIndex, compareAndSet,
		createChallenge, verifyChallenge, countAttempt, consumeChallenge, resendChallenge, setProviderRef, createToken, indexToken, deactivateToken,
		deactivateForRequest, deleteForRequest, slidingWindow} {
		must(t, sc.Load(ctx, client).Err())
	}
	now := time.Now()
	req := id("req")
	f := storage.Flow{ID: id("flow"), ExpiresAt: now.Add(time.Hour)}
	for _, c := range []struct {
		name string
		want int64
		op   func() error
	}{
		{"CreateChallenge", 1, func() error { return s.CreateChallenge(ctx, challenge(now)) }},
		{"VerifyChallenge", 1, func() error {
			c := challenge(now)
			must(t, s.CreateChallenge(ctx, c))
			rt.Reset()
			_, err := s.VerifyChallenge(ctx, c.ID, hash("123456"), now)
			return err
		}},
		{"CountAttempt", 1, func() error {
			c := challenge(now)
			must(t, s.CreateChallenge(ctx, c))
			rt.Reset()
			_, err := s.CountAttempt(ctx, c.ID, now)
			return err
		}},
		{"ConsumeChallenge", 1, func() error {
			c := challenge(now)
			must(t, s.CreateChallenge(ctx, c))
			rt.Reset()
			_, err := s.ConsumeChallenge(ctx, c.ID)
			return err
		}},
		{"SetProviderRef", 1, func() error {
			c := challenge(now)
			must(t, s.CreateChallenge(ctx, c))
			rt.Reset()
			return s.SetProviderRef(ctx, c.ID, 1, "ref")
		}},
		{"ResendChallenge", 1, func() error {
			c := challenge(now)
			must(t, s.CreateChallenge(ctx, c))
			rt.Reset()
			_, err := s.ResendChallenge(ctx, c.ID, storage.Resend{CodeHash: hash("1"), Now: now.Add(time.Minute), MaxSends: 3, ExpiresAt: now.Add(time.Hour)})
			return err
		}},
		{"ResendChallengeSameCode", 1, func() error {
			c := challenge(now)
			must(t, s.CreateChallenge(ctx, c))
			rt.Reset()
			_, err := s.ResendChallenge(ctx, c.ID, storage.Resend{KeepCode: true, Now: now.Add(time.Minute), MaxSends: 3})
			return err
		}},
		{"Allow", 1, func() error { _, _, err := s.Allow(ctx, "rt", 100, time.Minute); return err }},
		{"AddCounts", 1, func() error {
			_, err := s.AddCounts(ctx, []storage.CountChange{{Key: "rt1", Delta: 1, Window: time.Minute}, {Key: "rt2", Delta: -1, Window: time.Hour}})
			return err
		}},
		{"AllowEach", 1, func() error {
			_, err := s.AllowEach(ctx, []storage.RateCheck{{Key: "rt1", Limit: 100, Window: time.Minute}, {Key: "rt2", Limit: 100, Window: time.Hour}, {Key: "rt3", Limit: 100, Window: time.Second}})
			return err
		}},
		{"CreateToken", 1, func() error {
			return s.CreateToken(ctx, storage.Token{Kind: storage.KindAccessToken, Signature: id("sig"), RequestID: req, Active: true, ExpiresAt: now.Add(time.Hour)})
		}},
		{"DeactivateToken", 1, func() error {
			tok := storage.Token{Kind: storage.KindRefreshToken, Signature: id("sig"), RequestID: req, Active: true, ExpiresAt: now.Add(time.Hour)}
			must(t, s.CreateToken(ctx, tok))
			rt.Reset()
			return s.DeactivateToken(ctx, tok.Kind, tok.Signature)
		}},
		{"DeactivateTokensByRequest", 2, func() error { return s.DeactivateTokensByRequest(ctx, storage.KindAccessToken, req) }},
		{"DeleteTokensByRequest", 3, func() error { return s.DeleteTokensByRequest(ctx, storage.KindAccessToken, req) }},
		{"CreateFlow", 1, func() error { f.ID = id("flow"); return s.CreateFlow(ctx, f) }},
		{"UpdateFlow", 2, func() error {
			_, err := s.UpdateFlow(ctx, f.ID, func(f storage.Flow) (storage.Flow, error) { f.Step = "x"; return f, nil })
			return err
		}},
		{"AppendOutbox", 1, func() error { return s.AppendOutbox(ctx, storage.OutboxMessage{ID: "m"}, 5) }},
	} {
		// The first call may load the scripts it uses (EVALSHA, then EVAL);
		// the second is the steady state.
		for run := range 2 {
			if c.name == "DeactivateTokensByRequest" || c.name == "DeleteTokensByRequest" {
				for range 2 {
					must(t, s.CreateToken(ctx, storage.Token{Kind: storage.KindAccessToken, Signature: id("sig"), RequestID: req, Active: true, ExpiresAt: now.Add(time.Hour)}))
				}
			}
			rt.Reset()
			if err := c.op(); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := rt.Count(); run == 1 && got != c.want {
				t.Errorf("%s: %d round trips, want %d", c.name, got, c.want)
			}
		}
	}
}

// TestSlidingWindowMatchesGo feeds the Lua limiter and storage.SlidingWindow the
// same events at the same (injected) instants and wants the same decisions.
func TestSlidingWindowMatchesGo(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2)) // fixed: the same cases every run
	var refused, weighted int          // refusals; refusals with a previous window still weighing
	for _, window := range []time.Duration{time.Second, 600 * time.Millisecond, 7 * time.Second, time.Minute, 24 * time.Hour} {
		for _, limit := range []int{1, 3, 10} {
			key := "parity-" + window.String() + "-" + itoa(int64(limit))
			counts := map[int64]int64{} // fixed window index → events allowed
			at := time.UnixMicro(1_750_000_000_000_000 + rng.Int64N(int64(window/time.Microsecond)))
			w := window.Microseconds()
			for i := range 300 {
				at = at.Add(time.Duration(rng.Int64N(int64(window) / int64(limit) * 2 / 1000 * 1000)))
				now := at.UnixMicro()
				idx := now / w
				elapsed := time.Duration(now-idx*w) * time.Microsecond
				wantOK, wantRetry := storage.SlidingWindow(counts[idx-1], counts[idx], elapsed, window, limit)
				gotOK, gotRetry, err := s.allow(ctx, key, limit, window, &at)
				must(t, err)
				if gotOK != wantOK || gotRetry != wantRetry {
					t.Fatalf("window %v limit %d event %d (prev %d cur %d elapsed %v): Lua says %v %v, Go says %v %v",
						window, limit, i, counts[idx-1], counts[idx], elapsed, gotOK, gotRetry, wantOK, wantRetry)
				}
				if wantOK {
					counts[idx]++
				} else {
					refused++
					if counts[idx-1] > 0 && counts[idx]+1 <= int64(limit) {
						weighted++
					}
				}
			}
		}
	}
	t.Logf("%d refusals, %d of them while the previous window still weighed", refused, weighted)
	if refused < 100 || weighted < 20 {
		t.Fatalf("the cases exercise too little: %d refusals, %d weighted", refused, weighted)
	}
}

func TestKeyParts(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	hour := time.Now().Add(time.Hour)
	// Separators inside ids cannot make two records share a key.
	a := storage.Consent{Subject: "a:b", ClientID: "c", Scopes: []string{"a"}, ExpiresAt: hour}
	b := storage.Consent{Subject: "a", ClientID: "b:c", Scopes: []string{"b"}, ExpiresAt: hour}
	must(t, s.SaveConsent(ctx, a))
	must(t, s.SaveConsent(ctx, b))
	got, err := s.GetConsent(ctx, "a:b", "c")
	must(t, err)
	if got.Scopes[0] != "a" {
		t.Fatalf("consent (a:b, c) was overwritten by (a, b:c)")
	}
	// Braces cannot end the hash tag early: the whole id stays inside it.
	for _, id := range []string{"x}y", "{x}", "100%", "index"} {
		key := s.challengeKey(id)
		open, close := strings.IndexByte(key, '{'), strings.IndexByte(key, '}')
		if close != len(key)-1 || strings.Count(key, "{") != 1 {
			t.Errorf("challenge %q: key %q has hash tag %q", id, key, key[open:close+1])
		}
	}
	// A client called "index" is not the index.
	must(t, s.CreateClient(ctx, storage.Client{ID: "index"}))
	must(t, s.CreateClient(ctx, storage.Client{ID: "other"}))
	cs, err := s.ListClients(ctx, "", 10)
	must(t, err)
	if len(cs) != 2 || cs[0].ID != "index" || cs[1].ID != "other" {
		t.Fatalf("clients: %+v", cs)
	}
}

func TestZeroExpiryRefused(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	for name, err := range map[string]error{
		"flow":      s.CreateFlow(ctx, storage.Flow{ID: id("flow")}),
		"token":     s.CreateToken(ctx, storage.Token{Kind: storage.KindAccessToken, Signature: id("sig")}),
		"challenge": s.CreateChallenge(ctx, storage.Challenge{ID: id("ch")}),
		"session":   s.CreateBrowserSession(ctx, storage.BrowserSession{ID: id("sess")}),
		"consent":   s.SaveConsent(ctx, storage.Consent{Subject: "s", ClientID: "c"}),
	} {
		if err == nil || !strings.Contains(err.Error(), "expires_at is not set") {
			t.Errorf("%s without ExpiresAt: %v, want refused", name, err)
		}
	}
}

func TestOpenOwnsItsClient(t *testing.T) {
	client, prefix := redistest.New(t)
	single, ok := client.(*goredis.Client)
	if !ok {
		t.Skip("Open dials one server; the test Redis is a cluster")
	}
	url := "redis://" + single.Options().Addr + "/0"
	ctx := t.Context()

	s, err := Open(ctx, url, WithPrefix(prefix))
	must(t, err)
	must(t, s.Ping(ctx))
	must(t, s.Close())
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping after Close of an opened store: no error")
	}

	borrowed := New(client, WithPrefix(prefix))
	must(t, borrowed.Close())
	must(t, client.Ping(ctx).Err()) // still the caller's

	if _, err := Open(ctx, "http://nope"); err == nil {
		t.Fatal("Open accepted an http URL")
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := Open(short, "redis://127.0.0.1:1/0"); err == nil {
		t.Fatal("Open succeeded without a server")
	}
}

// TestChallengeMemory measures one pending challenge with MEMORY USAGE.
func TestChallengeMemory(t *testing.T) {
	s, client, _ := newTestStore(t)
	ctx := t.Context()
	c := challenge(time.Now())
	c.ID = "Vx3kq9ZyW1mQf7tR2bN8cA" // 128 bits in base64url, like otpgate's ids
	c.FlowID = "p0L4sD8fG2hJ6kZ1xC5vBn"
	c.ProviderRef = "orange-3f9a2c71"
	c.SealedCode = bytes.Repeat([]byte{0xa5}, 12+10+16) // AES-GCM nonce, a 10-digit code (the longest), tag
	must(t, s.CreateChallenge(ctx, c))
	n, err := client.MemoryUsage(ctx, s.challengeKey(c.ID), 0).Result()
	must(t, err)
	t.Logf("MEMORY USAGE of one pending challenge (%s): %d bytes", s.challengeKey(c.ID), n)
	if n >= 512 {
		t.Fatalf("a pending challenge uses %d bytes, want < 512", n)
	}
	enc, err := client.ObjectEncoding(ctx, s.challengeKey(c.ID)).Result()
	must(t, err)
	if enc != "listpack" && enc != "ziplist" {
		t.Errorf("challenge encoding %q, want the compact listpack", enc)
	}
}

// race runs fn in n goroutines released at the same instant and waits for all.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// TestScriptCacheFlushed: after a restart or a failover Redis has forgotten the
// scripts; every call must fall back to EVAL, pipelined ones included.
func TestScriptCacheFlushed(t *testing.T) {
	s, client, _ := newTestStore(t)
	ctx := t.Context()
	now := time.Now()
	req := id("req")
	var toks []storage.Token
	for range 3 {
		tok := storage.Token{Kind: storage.KindRefreshToken, Signature: id("sig"), RequestID: req, Active: true, ExpiresAt: now.Add(time.Hour)}
		must(t, s.CreateToken(ctx, tok))
		toks = append(toks, tok)
	}

	must(t, client.ScriptFlush(ctx).Err())
	must(t, s.DeactivateTokensByRequest(ctx, storage.KindRefreshToken, req))
	for _, tok := range toks {
		got, err := s.GetToken(ctx, tok.Kind, tok.Signature)
		must(t, err)
		if got.Active {
			t.Fatalf("token still active after DeactivateTokensByRequest with a flushed script cache")
		}
	}
	must(t, client.ScriptFlush(ctx).Err())
	must(t, s.DeleteTokensByRequest(ctx, storage.KindRefreshToken, req))
	for _, tok := range toks {
		if _, err := s.GetToken(ctx, tok.Kind, tok.Signature); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("token after DeleteTokensByRequest with a flushed script cache: %v", err)
		}
	}

	must(t, client.ScriptFlush(ctx).Err())
	c := challenge(now)
	must(t, s.CreateChallenge(ctx, c))
	must(t, client.ScriptFlush(ctx).Err())
	res, err := s.VerifyChallenge(ctx, c.ID, hash("123456"), now)
	must(t, err)
	if res.Outcome != storage.VerifyOK {
		t.Fatalf("verify after flush: %v", res.Outcome)
	}
	must(t, client.ScriptFlush(ctx).Err())
	if ok, _, err := s.Allow(ctx, "flushed", 1, time.Minute); err != nil || !ok {
		t.Fatalf("allow after flush: %v %v", ok, err)
	}
}

func TestEmptyIDAndEmptyAnswerRefused(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	hour := time.Now().Add(time.Hour)
	for name, err := range map[string]error{
		"flow":      s.CreateFlow(ctx, storage.Flow{ExpiresAt: hour}),
		"token":     s.CreateToken(ctx, storage.Token{Kind: storage.KindAccessToken, ExpiresAt: hour}),
		"challenge": s.CreateChallenge(ctx, storage.Challenge{ExpiresAt: hour}),
		"session":   s.CreateBrowserSession(ctx, storage.BrowserSession{ExpiresAt: hour}),
		"consent":   s.SaveConsent(ctx, storage.Consent{ClientID: "c", ExpiresAt: hour}),
		"client":    s.CreateClient(ctx, storage.Client{}),
		"key":       s.CreateKey(ctx, storage.SigningKey{}),
	} {
		if !errors.Is(err, errEmptyID) {
			t.Errorf("%s without id: %v, want refused", name, err)
		}
	}

	// A challenge stored without a hash cannot be passed with an empty answer.
	c := challenge(time.Now())
	c.CodeHash = nil
	must(t, s.CreateChallenge(ctx, c))
	res, err := s.VerifyChallenge(ctx, c.ID, nil, time.Now())
	must(t, err)
	if res.Outcome != storage.VerifyWrongCode {
		t.Fatalf("empty answer to an empty hash: %v, want wrong code", res.Outcome)
	}
}

// A check whose call fails does not hide the checks that counted: their
// results come back with the error, so that the caller can take them back.
func TestAllowEachPartialFailure(t *testing.T) {
	s, client, _ := newTestStore(t)
	ctx := t.Context()
	// A key of the wrong type makes its script fail (WRONGTYPE), the others run.
	if err := client.Set(ctx, s.limiterKey("broken"), "not a hash", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := s.AllowEach(ctx, []storage.RateCheck{
		{Key: "counted", Limit: 5, Window: time.Minute},
		{Key: "broken", Limit: 5, Window: time.Minute},
		{Key: "refused", Limit: 0, Window: time.Minute},
	})
	if err == nil {
		t.Fatal("no error for a check that failed")
	}
	if len(res) != 3 || !res[0].Allowed || res[1].Allowed || res[2].Allowed {
		t.Fatalf("results %+v, want the first check allowed and the others not", res)
	}
	if n, err := s.AddCount(ctx, "counted", 0, time.Minute); err != nil || n != 1 {
		t.Fatalf("the check that answered counted %v (%v), want 1", n, err)
	}
}

// Likewise for AddCounts: a change whose call failed is NaN, the others
// come back with their estimates.
func TestAddCountsPartialFailure(t *testing.T) {
	s, client, _ := newTestStore(t)
	ctx := t.Context()
	if err := client.Set(ctx, s.limiterKey("broken"), "not a hash", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.AddCounts(ctx, []storage.CountChange{
		{Key: "counted", Delta: 1, Window: time.Minute},
		{Key: "broken", Delta: 1, Window: time.Minute},
	})
	if err == nil {
		t.Fatal("no error for a change that failed")
	}
	if len(got) != 2 || got[0] != 1 || !math.IsNaN(got[1]) {
		t.Fatalf("estimates %v, want [1 NaN]", got)
	}
}

// A Redis that does not answer is storage.ErrUnavailable; an answer ("no such
// key") and the caller's own cancelled context are not.
func TestUnavailableIsMarked(t *testing.T) {
	s, _, _ := newTestStore(t)
	_, err := s.GetFlow(t.Context(), "absent")
	if !errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("absent flow: %v, want ErrNotFound only", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.GetFlow(ctx, "absent"); errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("cancelled context: %v, want no ErrUnavailable", err)
	}

	// Nothing listens on port 1 of loopback.
	down := New(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond}))
	t.Cleanup(func() { _ = down.c.Close() })
	for name, call := range map[string]func() error{
		"GetFlow": func() error { _, err := down.GetFlow(t.Context(), "f"); return err },
		"CreateToken": func() error {
			return down.CreateToken(t.Context(), storage.Token{Kind: storage.KindAccessToken, Signature: "s", RequestID: "r", ExpiresAt: time.Now().Add(time.Hour)})
		},
		"AllowEach": func() error {
			_, err := down.AllowEach(t.Context(), []storage.RateCheck{{Key: "k", Limit: 1, Window: time.Minute}})
			return err
		},
		"Ping": func() error { return down.Ping(t.Context()) },
	} {
		if err := call(); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s on a Redis that does not answer: %v, want ErrUnavailable", name, err)
		}
	}
}
