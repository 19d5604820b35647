package provider

// The admin tests are internal (package provider) so that their helpers,
// all named admin…, cannot collide with the end-to-end helpers of package
// provider_test, and so that the rotation scheduler can be driven by hand.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider/keys"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
)

const (
	adminTestToken  = "admin-token-for-tests-0123456789abcdefghijklmnop"
	adminStaticID   = "static-app"
	adminStaticPass = "static-secret-0123456789abcdef0123456789abcdef"
)

var adminTestSecret = []byte("otpgate-admin-test-system-secret-0123456789")

// adminClock is the clock of the provider and its keys manager.
type adminClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *adminClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *adminClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// adminLog collects the provider's JSON log lines.
type adminLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *adminLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *adminLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// events returns the audit events logged so far, decoded.
func (l *adminLog) events(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["audit"] == true {
			out = append(out, m)
		}
	}
	return out
}

// adminSeedKeys are signing keys generated once per test binary (RSA is slow
// under -race) and copied into each environment's store.
var adminSeedKeys = sync.OnceValues(func() ([]storage.SigningKey, error) {
	s := memory.New()
	defer s.Close()
	m, err := keys.NewManager(s, adminTestSecret)
	if err != nil {
		return nil, err
	}
	if err := m.Ensure(context.Background()); err != nil {
		return nil, err
	}
	return s.ListKeys(context.Background())
})

// adminEnv is a provider with its public and admin listeners over HTTP.
type adminEnv struct {
	t      testing.TB
	P      *Provider
	Store  storage.Store
	Keys   *keys.Manager
	Clock  *adminClock
	Log    *adminLog
	Public *httptest.Server
	Admin  *httptest.Server
	Token  string
}

type adminEnvOption func(*Options)

func newAdminEnv(t testing.TB, opts ...adminEnvOption) *adminEnv {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	t.Cleanup(func() { _ = store.Close() })
	recs, err := adminSeedKeys()
	if err != nil {
		t.Fatalf("generate keys: %v", err)
	}
	for _, k := range recs {
		if err := store.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	clk := &adminClock{t: time.Now()}
	logs := &adminLog{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	km, err := keys.NewManager(store, adminTestSecret, keys.WithNow(clk.Now), keys.WithCacheTTL(0), keys.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Ensure(ctx); err != nil {
		t.Fatal(err)
	}

	var handler http.Handler
	var mu sync.RWMutex
	public := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		h := handler
		mu.RUnlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(public.Close)

	factor, err := smsotp.New(store, sms.NewOutbox(store, 100, time.Now), smsotp.Options{
		HashKey: CodeHashKey(adminTestSecret),
		Origin:  strings.TrimPrefix(public.URL, "http://"),
	})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Issuer:        public.URL,
		Secret:        adminTestSecret,
		Store:         store,
		Keys:          km,
		Factor:        factor,
		DefaultRegion: "FR",
		AdminToken:    adminTestToken,
		StaticClients: []StaticClient{{
			Client: storage.Client{
				ID:           adminStaticID,
				Name:         "Static app",
				RedirectURIs: []string{"https://static.example.com/cb"},
				Scopes:       []string{"openid", "phone"},
			},
			Secret: adminStaticPass,
		}},
		Logger: logger,
		Now:    clk.Now,
	}
	for _, opt := range opts {
		opt(&o)
	}
	p, err := New(ctx, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mu.Lock()
	handler = p.Handler()
	mu.Unlock()
	admin := httptest.NewServer(p.AdminHandler())
	t.Cleanup(admin.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provider log:\n%s", logs.String())
		}
	})
	return &adminEnv{t: t, P: p, Store: store, Keys: km, Clock: clk, Log: logs, Public: public, Admin: admin, Token: o.AdminToken}
}

// call sends a request to the admin API with the environment's token and
// returns the status and the decoded JSON body (nil when there is none).
func (e *adminEnv) call(method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	return e.callWith("Bearer "+e.Token, method, path, body)
}

// callWith is call with an explicit Authorization header ("" sends none).
func (e *adminEnv) callWith(authorization, method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.Admin.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		e.t.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, raw)
	}
	if len(raw) == 0 {
		return resp.StatusCode, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		e.t.Fatalf("%s %s: status %d, body is not a JSON object: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

// mustCall is call that fails the test unless the status is want.
func (e *adminEnv) mustCall(want int, method, path string, body any) map[string]any {
	e.t.Helper()
	status, m := e.call(method, path, body)
	if status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %v", method, path, status, want, m)
	}
	return m
}

// createClient registers a client through the API and returns the response.
func (e *adminEnv) createClient(meta map[string]any) map[string]any {
	e.t.Helper()
	return e.mustCall(http.StatusCreated, http.MethodPost, "/admin/clients", meta)
}

func (e *adminEnv) storedClient(id string) storage.Client {
	e.t.Helper()
	c, err := e.Store.GetClient(context.Background(), id)
	if err != nil {
		e.t.Fatalf("GetClient(%s): %v", id, err)
	}
	return c
}

// adminStrings converts a decoded JSON array of strings.
func adminStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, s := range list {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}
