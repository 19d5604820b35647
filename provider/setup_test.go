package provider_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/provider/keys"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
	otpredis "github.com/otpgate/otpgate/storage/redis"
	"github.com/otpgate/otpgate/storage/redis/redistest"
	goredis "github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// The relying parties every test environment registers.
const (
	clientConfidential = "rp-confidential" // client_secret_basic, asks for consent
	clientPublic       = "rp-public"       // token_endpoint_auth_method none: PKCE required
	clientPost         = "rp-post"         // client_secret_post
	clientES256        = "rp-es256"        // ES256 ID tokens, skip_consent
	clientTrusted      = "rp-trusted"      // RS256, skip_consent (the benchmark's client)

	// redirectBase is never served: the test browser stops at it.
	redirectBase = "http://localhost:9999/cb/"
)

// clientSecrets are the static clients' secrets in clear (the store only sees
// their keyed hash).
var clientSecrets = map[string]string{
	clientConfidential: "confidential-secret-0123456789abcdef0123456789",
	clientPost:         "post-secret-0123456789abcdef0123456789abcdef",
	clientES256:        "es256-secret-0123456789abcdef0123456789abcdef",
	clientTrusted:      "trusted-secret-0123456789abcdef0123456789abcd",
}

var allScopes = []string{"openid", "phone", "offline_access"}

func redirectURI(clientID string) string { return redirectBase + clientID }

func staticClients() []provider.StaticClient {
	c := func(id, name, method, alg string, skip bool) provider.StaticClient {
		return provider.StaticClient{
			Client: storage.Client{
				ID:                       id,
				Name:                     name,
				RedirectURIs:             []string{redirectURI(id)},
				GrantTypes:               []string{"authorization_code", "refresh_token"},
				ResponseTypes:            []string{"code"},
				Scopes:                   allScopes,
				TokenEndpointAuthMethod:  method,
				IDTokenSignedResponseAlg: alg,
				SkipConsent:              skip,
			},
			Secret: clientSecrets[id],
		}
	}
	return []provider.StaticClient{
		c(clientConfidential, "Confidential RP", "client_secret_basic", "", false),
		c(clientPublic, "Public RP", "none", "", true),
		c(clientPost, "Post RP", "client_secret_post", "", true),
		c(clientES256, "ES256 RP", "client_secret_basic", "ES256", true),
		c(clientTrusted, "Trusted RP", "client_secret_basic", "RS256", true),
	}
}

// testSecret is the system secret of every environment: signing keys sealed
// with it can be shared between environments (see sharedKeys).
var testSecret = []byte("otpgate-provider-test-system-secret-0123456789")

// clock is the SMS factor's clock: real time plus an offset tests advance to
// expire codes and end resend cooldowns without sleeping.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// env is one complete otpgate: a store, keys, the SMS factor with the outbox
// sender and the provider, served over HTTP at Issuer.
type env struct {
	t      testing.TB
	kind   string
	Store  storage.Store
	P      *provider.Provider
	Srv    *httptest.Server
	Admin  *httptest.Server
	Issuer string
	Clock  *clock
	logs   *syncBuffer
}

type envConfig struct {
	sessionTTL time.Duration
	cooldown   time.Duration
	flowTTL    time.Duration
	// wrap puts something in front of the SMS factor (the abuse guard).
	wrap func(t testing.TB, f factors.Factor, s storage.Store, log *slog.Logger) factors.Factor
	// options adjusts the provider's options last.
	options func(*provider.Options)
	// store wraps the store before anything uses it (the observe decorator).
	store func(storage.Store) storage.Store
	// redisHook, on the Redis store's client, sees every command.
	redisHook goredis.Hook
}

type envOption func(*envConfig)

// withSessionTTL turns browser SSO sessions on.
func withSessionTTL(d time.Duration) envOption {
	return func(c *envConfig) { c.sessionTTL = d }
}

// withCooldown sets the resend cooldown (factor and pages) for tests that
// must see it end in real time.
func withCooldown(d time.Duration) envOption {
	return func(c *envConfig) { c.cooldown = d }
}

// withFlowTTL sets how long a pending login lives.
func withFlowTTL(d time.Duration) envOption {
	return func(c *envConfig) { c.flowTTL = d }
}

// withOptions adjusts the provider's options, after the options earlier
// envOptions set.
func withOptions(f func(o *provider.Options)) envOption {
	return func(c *envConfig) {
		prev := c.options
		c.options = func(o *provider.Options) {
			if prev != nil {
				prev(o)
			}
			f(o)
		}
	}
}

// issuerHost is the host of o.Issuer: the origin SMS texts are bound to.
func issuerHost(t testing.TB, o *provider.Options) string {
	t.Helper()
	iss, err := url.Parse(o.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	return iss.Host
}

// stores lists the backends every end-to-end test runs against.
var stores = []string{"memory", "redis"}

// forEachStore runs f as a parallel sub-test per storage backend.
func forEachStore(t *testing.T, f func(t *testing.T, kind string)) {
	t.Helper()
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f(t, kind)
		})
	}
}

func newStore(t testing.TB, kind string) storage.Store {
	t.Helper()
	switch kind {
	case "memory":
		s := memory.New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	case "redis":
		client, prefix := redistest.New(t)
		return otpredis.New(client, otpredis.WithPrefix(prefix))
	}
	t.Fatalf("unknown store kind %q", kind)
	return nil
}

// sharedKeys generates the RS256 and ES256 signing keys once per test binary
// (RSA generation is slow, more so under -race); every environment copies the
// sealed records into its own store.
var sharedKeys = sync.OnceValues(func() ([]storage.SigningKey, error) {
	s := memory.New()
	defer s.Close()
	m, err := keys.NewManager(s, testSecret)
	if err != nil {
		return nil, err
	}
	if err := m.Ensure(context.Background()); err != nil {
		return nil, err
	}
	return s.ListKeys(context.Background())
})

func newEnv(t testing.TB, kind string, opts ...envOption) *env {
	t.Helper()
	var cfg envConfig
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()
	var store storage.Store
	if cfg.redisHook != nil && kind == "redis" {
		client, prefix := redistest.New(t)
		client.AddHook(cfg.redisHook)
		store = otpredis.New(client, otpredis.WithPrefix(prefix))
	} else {
		store = newStore(t, kind)
	}
	if cfg.store != nil {
		store = cfg.store(store)
	}

	recs, err := sharedKeys()
	if err != nil {
		t.Fatalf("generate keys: %v", err)
	}
	for _, k := range recs {
		if err := store.CreateKey(ctx, k); err != nil {
			t.Fatalf("copy signing key: %v", err)
		}
	}
	km, err := keys.NewManager(store, testSecret)
	if err != nil {
		t.Fatalf("keys.NewManager: %v", err)
	}
	if err := km.Ensure(ctx); err != nil {
		t.Fatalf("keys.Ensure: %v", err)
	}

	// The server comes first: its URL is the issuer the provider is built with.
	var handler atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	issuer := srv.URL
	host := strings.TrimPrefix(issuer, "http://")

	clk := &clock{}
	factor, err := smsotp.New(store, sms.NewOutbox(store, 100, time.Now), smsotp.Options{
		HashKey:        provider.CodeHashKey(testSecret),
		Origin:         host,
		Now:            clk.Now,
		ResendCooldown: cfg.cooldown,
	})
	if err != nil {
		t.Fatalf("smsotp.New: %v", err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var f factors.Factor = factor
	if cfg.wrap != nil {
		f = cfg.wrap(t, factor, store, logger)
	}
	popts := provider.Options{
		Issuer:        issuer,
		Secret:        testSecret,
		Store:         store,
		Keys:          km,
		Factor:        f,
		DefaultRegion: "FR",
		SessionTTL:    cfg.sessionTTL,
		ResendAfter:   cfg.cooldown,
		FlowTTL:       cfg.flowTTL,
		StaticClients: staticClients(),
		Logger:        logger,
	}
	if cfg.options != nil {
		cfg.options(&popts)
	}
	p, err := provider.New(ctx, popts)
	if err != nil {
		t.Fatalf("provider.New: %v", err)
	}
	h := p.Handler()
	handler.Store(&h)
	admin := httptest.NewServer(p.AdminHandler())
	t.Cleanup(admin.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provider log (%s):\n%s", kind, logs.String())
		}
	})
	return &env{t: t, kind: kind, Store: store, P: p, Srv: srv, Admin: admin, Issuer: issuer, Clock: clk, logs: logs}
}

// with returns a copy of e whose helpers report to t (a sub-test's).
func (e *env) with(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

// syncBuffer collects the provider's log, shown when a test fails.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---------------------------------------------------------------------------
// SMS outbox

// smsLine is the origin-bound last line of every SMS: "@host #123456".
var smsLine = regexp.MustCompile(`(?m)^@(\S+) #(\d{4,10})\s*$`)

// lastSMS returns the newest outbox message, failing when there is none.
func (e *env) lastSMS() storage.OutboxMessage {
	e.t.Helper()
	msgs, err := e.Store.ListOutbox(context.Background(), 1)
	if err != nil {
		e.t.Fatalf("ListOutbox: %v", err)
	}
	if len(msgs) == 0 {
		e.t.Fatal("no SMS in the outbox")
	}
	return msgs[0]
}

// lastSMSID is the id of the newest outbox message, "" when there is none.
func (e *env) lastSMSID() string {
	e.t.Helper()
	msgs, err := e.Store.ListOutbox(context.Background(), 1)
	if err != nil {
		e.t.Fatalf("ListOutbox: %v", err)
	}
	if len(msgs) == 0 {
		return ""
	}
	return msgs[0].ID
}

// codeFor returns the code of the newest SMS, checking that it went to phone
// and that its last line is bound to the issuer's host.
func (e *env) codeFor(phone string) string {
	e.t.Helper()
	m := e.lastSMS()
	if m.To != phone {
		e.t.Fatalf("newest SMS went to %s, want %s", m.To, phone)
	}
	return e.smsCode(m)
}

func (e *env) smsCode(m storage.OutboxMessage) string {
	e.t.Helper()
	sub := smsLine.FindStringSubmatch(m.Body)
	if sub == nil {
		e.t.Fatalf("SMS %q has no origin-bound line @host #code", m.Body)
	}
	if want := strings.TrimPrefix(e.Issuer, "http://"); sub[1] != want {
		e.t.Fatalf("SMS origin is %q, want the issuer host %q", sub[1], want)
	}
	return sub[2]
}

// stepSig computes a step signature the way the provider does. Tests use it
// only to prove that even a correctly signed URL cannot move a flow backwards
// where the rules forbid it.
func stepSig(flowID, step string) string {
	h := hmac.New(sha256.New, provider.DeriveKey(testSecret, "otpgate flow step v1"))
	h.Write([]byte(flowID))
	h.Write([]byte{0})
	h.Write([]byte(step))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func randomString() string { return rand.Text() }

// ---------------------------------------------------------------------------
// HTTP clients

// checkedTransport fails the test on any 5xx answer: no refusal may be a
// server error. It also records every response, so tests can inspect the
// headers of redirects the client followed.
type checkedTransport struct {
	t       testing.TB
	base    http.RoundTripper
	mu      sync.Mutex
	history []*http.Response
	allow5x bool
}

func (c *checkedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 500 && !c.allow5x {
		c.t.Errorf("%s %s: status %d (no refusal may be a server error)", r.Method, r.URL.Path, resp.StatusCode)
	}
	c.mu.Lock()
	c.history = append(c.history, resp)
	c.mu.Unlock()
	return resp, nil
}

// responses returns the responses recorded so far and forgets them.
func (c *checkedTransport) responses() []*http.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.history
	c.history = nil
	return h
}

func newCheckedTransport(t testing.TB) *checkedTransport {
	return &checkedTransport{t: t, base: http.DefaultTransport.(*http.Transport).Clone()}
}

// browser is a user agent with a cookie jar. It follows redirects inside
// otpgate and stops at a relying party's redirect URI, returning that redirect.
type browser struct {
	t  testing.TB
	e  *env
	c  *http.Client
	tr *checkedTransport
}

func (e *env) newBrowser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	tr := newCheckedTransport(e.t)
	b := &browser{t: e.t, e: e, tr: tr}
	b.c = &http.Client{
		Jar:       jar,
		Transport: tr,
		Timeout:   30 * time.Second,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if strings.HasPrefix(r.URL.String(), redirectBase) {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return fmt.Errorf("too many redirects")
			}
			return nil
		},
	}
	return b
}

// get loads a URL (absolute, or a path on the issuer).
func (b *browser) get(target string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.abs(target), nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post submits a form to a URL (absolute, or a path on the issuer).
func (b *browser) post(target string, form url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.abs(target), strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) abs(target string) string { return b.e.abs(target) }

// abs makes a path on the issuer absolute and leaves absolute URLs alone.
func (e *env) abs(target string) string {
	if strings.HasPrefix(target, "/") {
		return e.Issuer + target
	}
	return target
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("read %s: %v", req.URL, err)
	}
	return newPage(b.t, resp, body)
}

// submit posts form f of page p with its fields, overridden by set (an empty
// value in set removes the field).
func (b *browser) submit(f form, set map[string]string) *page {
	b.t.Helper()
	vals := url.Values{}
	for k, v := range f.fields {
		vals[k] = append([]string(nil), v...)
	}
	for k, v := range set {
		if v == "" {
			vals.Del(k)
		} else {
			vals.Set(k, v)
		}
	}
	return b.post(f.action, vals)
}

// cookie returns this browser's cookie for the issuer.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.Issuer)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}
