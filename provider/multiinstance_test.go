package provider_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/provider/keys"
	"github.com/otpgate/otpgate/storage"
	otpredis "github.com/otpgate/otpgate/storage/redis"
	"github.com/otpgate/otpgate/storage/redis/redistest"
)

// instance is one otpgate of a deployment: its own Redis client, key manager,
// SMS factor and provider. Instances of one deployment share the system
// secret and the Redis key prefix, as replicas behind a load balancer do.
type instance struct {
	name  string
	store storage.Store
	p     *provider.Provider
	h     http.Handler

	mu     sync.Mutex
	served []string // "METHOD /path" of every request this instance answered
}

func (in *instance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in.mu.Lock()
	in.served = append(in.served, r.Method+" "+r.URL.Path)
	in.mu.Unlock()
	in.h.ServeHTTP(w, r)
}

// takeServed returns what the instance answered since the last call.
func (in *instance) takeServed() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.served
	in.served = nil
	return s
}

// deployment is several instances behind one issuer URL. Its router sends
// every request to the instance chosen with on, so a test decides which
// replica serves each step, as a load balancer without affinity might.
type deployment struct {
	*env // Issuer is the router's URL; Store is the first instance's
	inst []*instance
	to   atomic.Int32
}

// on routes the following requests to instance i.
func (d *deployment) on(i int) { d.to.Store(int32(i)) }

// newDeployment starts n instances on the test Redis under one prefix, each
// with a Redis client of its own.
func newDeployment(t *testing.T, n int) *deployment {
	t.Helper()
	first, prefix := redistest.New(t)
	stores := []storage.Store{otpredis.New(first, otpredis.WithPrefix(prefix))}
	for range n - 1 {
		client, _ := redistest.New(t) // its own prefix stays unused
		stores = append(stores, otpredis.New(client, otpredis.WithPrefix(prefix)))
	}
	return deploy(t, stores)
}

// deploy starts one instance per store; the stores must share their data.
func deploy(t *testing.T, stores []storage.Store) *deployment {
	t.Helper()
	ctx := context.Background()
	d := &deployment{}
	router := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.inst[d.to.Load()].ServeHTTP(w, r)
	}))
	t.Cleanup(router.Close)
	issuer := router.URL
	host := strings.TrimPrefix(issuer, "http://")

	recs, err := sharedKeys()
	if err != nil {
		t.Fatalf("generate keys: %v", err)
	}
	clk := &clock{}
	logs := &syncBuffer{}
	for i, store := range stores {
		if i == 0 {
			for _, k := range recs {
				if err := store.CreateKey(ctx, k); err != nil {
					t.Fatalf("copy signing key: %v", err)
				}
			}
		}
		km, err := keys.NewManager(store, testSecret)
		if err != nil {
			t.Fatal(err)
		}
		if err := km.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		factor, err := smsotp.New(store, sms.NewOutbox(store, 100, time.Now), smsotp.Options{
			HashKey: provider.CodeHashKey(testSecret), Origin: host, Now: clk.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		name := string(rune('A' + i))
		p, err := provider.New(ctx, provider.Options{
			Issuer: issuer, Secret: testSecret,
			Store: store, Keys: km, Factor: factor,
			DefaultRegion: "FR", StaticClients: staticClients(),
			Dev:    true, // the outbox at /dev/outbox.json, as in `serve --dev` on Redis
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("instance", name),
		})
		if err != nil {
			t.Fatalf("provider.New %s: %v", name, err)
		}
		d.inst = append(d.inst, &instance{name: name, store: store, p: p, h: p.Handler()})
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provider logs:\n%s", logs.String())
		}
	})
	d.env = &env{t: t, kind: "redis", Store: d.inst[0].store, P: d.inst[0].p, Srv: router, Issuer: issuer, Clock: clk, logs: logs}
	return d
}

// TestTwoInstancesOneRedis proves that otpgate keeps no login state in the
// process: a login started on instance A is finished on instance B and
// redeemed on A again, a resend cooldown set by one holds on the other, and
// so does a rate limit.
func TestTwoInstancesOneRedis(t *testing.T) {
	const A, B = 0, 1
	d := newDeployment(t, 2)
	a, b := d.inst[A], d.inst[B]
	r := d.newRP(clientTrusted)
	br := d.newBrowser()
	wantServed := func(in *instance, want ...string) {
		t.Helper()
		got := in.takeServed()
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				t.Errorf("instance %s did not serve %q; it served %q", in.name, w, got)
			}
		}
	}
	a.takeServed()
	b.takeServed() // discovery

	// Authorize on A: the flow is created there and bound to the browser.
	d.on(A)
	ar := r.authorize()
	p := br.get(ar.URL)
	p.expect(http.StatusOK, "/login/phone")
	wantServed(a, "GET /oauth2/auth", "GET /login/phone")

	// Phone on B: B reads A's flow, sends the code and moves the flow on.
	d.on(B)
	p = br.submit(p.form("/login/phone"), map[string]string{"phone": phoneATyped})
	p.expect(http.StatusOK, "/login/code")
	wantServed(b, "POST /login/phone", "GET /login/code")

	// The cooldown B's SMS started holds on A: no second SMS.
	d.on(A)
	last := d.lastSMSID()
	got := br.submit(p.form("/login/resend"), nil)
	got.expect(http.StatusTooManyRequests, "/login/resend")
	if d.lastSMSID() != last {
		t.Error("instance A sent an SMS during the cooldown instance B started")
	}
	wantServed(a, "POST /login/resend")

	// Code on B, then the redirect to the relying party with a code.
	d.on(B)
	p = br.submit(p.form("/login/code"), map[string]string{"code": d.codeFor(phoneA)})
	code := r.callback(p, ar)
	wantServed(b, "POST /login/code")

	// Token on A: the authorization code B issued is redeemed on A, and the
	// ID token it signs verifies against the JWKS B publishes.
	d.on(A)
	tok := r.exchange(code, ar)
	if tok.Claims.PhoneNumber == nil || *tok.Claims.PhoneNumber != phoneA {
		t.Errorf("phone_number %v, want %s", tok.Claims.PhoneNumber, phoneA)
	}
	wantServed(a, "POST /oauth2/token")
	d.on(B)
	if status, ui := r.userinfo(http.MethodGet, tok.AccessToken); status != http.StatusOK || ui["sub"] != tok.Claims.Sub {
		t.Errorf("userinfo on B with A's access token: %d %v", status, ui)
	}
	if _, err := r.verifier.Verify(r.ctx, tok.RawID); err != nil {
		t.Errorf("ID token signed on A does not verify against B's JWKS: %v", err)
	}
	wantServed(b, "GET /userinfo")

	// The authorization code is single use across instances too.
	d.on(B)
	if _, err := r.conf.Exchange(r.ctx, code); oauthError(err) != "invalid_grant" {
		t.Errorf("the code redeemed on A, again on B: %v, want invalid_grant", err)
	}

	// A rate limit consumed on A holds on B.
	ctx := context.Background()
	key := "test:" + randomString()
	for i := range 3 {
		if ok, _, err := a.store.Allow(ctx, key, 3, time.Minute); err != nil || !ok {
			t.Fatalf("Allow #%d on A = %v, %v; want allowed", i+1, ok, err)
		}
	}
	ok, retry, err := b.store.Allow(ctx, key, 3, time.Minute)
	// (A sliding window may ask to wait up to two windows: see storage.SlidingWindow.)
	if err != nil || ok || retry <= 0 || retry > 2*time.Minute {
		t.Errorf("Allow on B after 3 of 3 on A = %v, retry after %v, %v; want refused with a retry", ok, retry, err)
	}
}
