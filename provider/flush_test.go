package provider_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/provider/keys"
	otpredis "github.com/otpgate/otpgate/storage/redis"
	"github.com/otpgate/otpgate/storage/redis/redistest"
)

const flushAdminToken = "flush-test-admin-token-0123456789abcdefghijkl"

// newFlushEnv is one otpgate on a Redis of its own (no persistence, as
// redistest starts it), so that the test may FLUSHALL it. The keys manager
// runs on the environment's clock, so the test can let its cache expire.
func newFlushEnv(t *testing.T) (*env, *redistest.Server) {
	t.Helper()
	ctx := context.Background()
	srv := redistest.StartServer(t)
	store, err := otpredis.OpenUniversal(ctx, otpredis.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	recs, err := sharedKeys()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range recs {
		if err := store.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	clk := &clock{}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	km, err := keys.NewManager(store, testSecret, keys.WithNow(clk.Now), keys.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	var handler atomic.Pointer[http.Handler]
	public := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(public.Close)
	factor, err := smsotp.New(store, sms.NewOutbox(store, 100, time.Now), smsotp.Options{
		HashKey: provider.CodeHashKey(testSecret), Origin: strings.TrimPrefix(public.URL, "http://"), Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := provider.New(ctx, provider.Options{
		Issuer: public.URL, Secret: testSecret,
		Store: store, Keys: km, Factor: factor,
		DefaultRegion: "FR", StaticClients: staticClients(),
		AdminToken: flushAdminToken,
		Logger:     logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Handler()
	handler.Store(&h)
	admin := httptest.NewServer(p.AdminHandler())
	t.Cleanup(admin.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provider log:\n%s", logs.String())
		}
	})
	return &env{t: t, kind: "redis", Store: store, P: p, Srv: public, Admin: admin, Issuer: public.URL, Clock: clk, logs: logs}, srv
}

// TestRedisFlushKeepsStaticClientsAndKeys empties the Redis under a running
// provider (FLUSHALL: what a restart without persistence, or a failover to
// an empty replica, leaves) and logs in again with the same static client.
// Nobody restarts otpgate: the client is served from the configuration, the
// signing key from the instance's memory, written back to Redis retired, so
// the ID token from before the flush still verifies, and a new key signs.
// The admin API still lists the static clients.
func TestRedisFlushKeepsStaticClientsAndKeys(t *testing.T) {
	ctx := context.Background()
	e, srv := newFlushEnv(t)
	r := e.newRP(clientTrusted)
	before := e.jwks()
	first := e.newBrowser().loginTokens(r, phoneATyped, phoneA)
	kid, _ := jwtHeader(t, first.RawID)["kid"].(string)
	if len(before.Key(kid)) != 1 {
		t.Fatalf("the first ID token's kid %q is not in the JWKS %v", kid, before.Keys)
	}

	direct := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer direct.Close()
	if err := direct.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := direct.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("after FLUSHALL: %d keys (%v)", n, err)
	}
	// Past the keys cache: the next signature reads the store again.
	e.Clock.Advance(time.Minute)

	second := e.newBrowser().loginTokens(r, phoneATyped, phoneA)
	if got := jwtHeader(t, second.RawID)["kid"]; got == kid {
		t.Errorf("ID token after the flush signed by %v, the key from before it: want a new key", got)
	}
	after := e.jwks()
	if err := verifyWith(after, second.RawID); err != nil {
		t.Errorf("ID token after the flush against the JWKS fetched after it: %v", err)
	}
	if err := verifyWith(after, first.RawID); err != nil {
		t.Errorf("ID token from before the flush against the JWKS fetched after it: %v", err)
	}
	if *second.Claims.PhoneNumber != phoneA || second.Claims.Sub != first.Claims.Sub {
		t.Errorf("second login: phone %v sub %s, want %s and the first login's sub", *second.Claims.PhoneNumber, second.Claims.Sub, phoneA)
	}
	stored, err := e.Store.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range stored {
		found = found || k.ID == kid
	}
	if !found {
		t.Errorf("the signing key %s is not back in Redis (%d keys there)", kid, len(stored))
	}
	if !strings.Contains(e.logs.String(), "signing keys missing from the store") {
		t.Error("the restore was not logged")
	}

	// The admin API lists every static client once, the flushed store
	// notwithstanding.
	req, _ := http.NewRequest(http.MethodGet, e.Admin.URL+"/admin/clients", nil)
	req.Header.Set("Authorization", "Bearer "+flushAdminToken)
	status, body := doJSON(t, http.DefaultClient, req)
	if status != http.StatusOK {
		t.Fatalf("admin list: %d %v", status, body)
	}
	seen := map[string]int{}
	for _, it := range body["clients"].([]any) {
		c := it.(map[string]any)
		if c["static"] == true {
			seen[c["client_id"].(string)]++
		}
	}
	for _, c := range staticClients() {
		if seen[c.ID] != 1 {
			t.Errorf("admin list shows static client %s %d times, want once (%v)", c.ID, seen[c.ID], seen)
		}
	}
}

// verifyWith checks a JWT's signature with the key its kid names in set.
func verifyWith(set *jose.JSONWebKeySet, raw string) error {
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return err
	}
	found := set.Key(tok.Headers[0].KeyID)
	if len(found) != 1 {
		return fmt.Errorf("kid %q: %d keys in the set", tok.Headers[0].KeyID, len(found))
	}
	var claims josejwt.Claims
	return tok.Claims(found[0].Key, &claims)
}
