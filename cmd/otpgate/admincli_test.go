package main

// Tests of `otpgate clients` and `otpgate keys` against a real admin API:
// provider.AdminHandler over a memory store, a keys manager and the SMS
// factor with the outbox sender. Helpers are named cli… so that they cannot
// collide with the other tests of this package.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/provider/keys"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
)

const cliToken = "cli-test-admin-token-0123456789abcdefghij"

var cliSecret = []byte("otpgate-cli-test-system-secret-0123456789")

// cliSeedKeys are generated once: RSA is slow under -race.
var cliSeedKeys = sync.OnceValues(func() ([]storage.SigningKey, error) {
	s := memory.New()
	defer s.Close()
	m, err := keys.NewManager(s, cliSecret)
	if err != nil {
		return nil, err
	}
	if err := m.Ensure(context.Background()); err != nil {
		return nil, err
	}
	return s.ListKeys(context.Background())
})

// cliServer is a running admin API.
type cliServer struct {
	URL   string
	Store storage.Store
	P     *provider.Provider
}

func newCLIServer(t *testing.T) *cliServer {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	t.Cleanup(func() { _ = store.Close() })
	recs, err := cliSeedKeys()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range recs {
		if err := store.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	km, err := keys.NewManager(store, cliSecret, keys.WithCacheTTL(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	factor, err := smsotp.New(store, sms.NewOutbox(store, 10, time.Now), smsotp.Options{
		HashKey: provider.CodeHashKey(cliSecret), Origin: "localhost:8080",
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := provider.New(ctx, provider.Options{
		Issuer: "http://localhost:8080", Secret: cliSecret,
		Store: store, Keys: km, Factor: factor,
		AdminToken: cliToken,
		StaticClients: []provider.StaticClient{{Client: storage.Client{
			ID: "from-config", Name: "From config", RedirectURIs: []string{"https://config.example.com/cb"},
			Scopes: []string{"openid"}, TokenEndpointAuthMethod: "none",
		}}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.AdminHandler())
	t.Cleanup(srv.Close)
	return &cliServer{URL: srv.URL, Store: store, P: p}
}

// cliResult is one run of the binary's root command.
type cliResult struct {
	err            error
	stdout, stderr string
}

// run executes `otpgate args…` with the server's URL and token in the
// environment the commands read (getenv is not the process environment, so
// tests stay independent).
func (s *cliServer) run(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	return cliRun(t, map[string]string{envAdminURL: s.URL, envAdminToken: cliToken}, stdin, args...)
}

func cliRun(t *testing.T, env map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	// The real root, with the admin command groups reading env instead of
	// the process environment.
	root := rootCommand()
	for _, c := range root.Commands() {
		if c.Name() == "clients" || c.Name() == "keys" {
			root.RemoveCommand(c)
		}
	}
	getenv := func(k string) string { return env[k] }
	root.AddCommand(newClientsCommand(getenv), newKeysCommand(getenv))
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	err := root.ExecuteContext(context.Background())
	return cliResult{err: err, stdout: out.String(), stderr: errOut.String()}
}

func (r cliResult) ok(t *testing.T) cliResult {
	t.Helper()
	if r.err != nil {
		t.Fatalf("command failed: %v\nstderr: %s", r.err, r.stderr)
	}
	return r
}

func (r cliResult) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("--json output is not a JSON object: %v\n%s", err, r.stdout)
	}
	return m
}

func TestCLIClientsLifecycle(t *testing.T) {
	s := newCLIServer(t)

	// create, as a table: the secret is shown once, with a reminder.
	r := s.run(t, "", "clients", "create", "--client-id", "shop", "--name", "Shop",
		"--redirect-uri", "https://shop.example.com/cb", "--redirect-uri", "https://shop.example.com/cb2").ok(t)
	var secret string
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "client_secret" {
			secret = f[1]
		}
	}
	if len(secret) != 43 {
		t.Fatalf("create printed no 43-character secret:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "cannot show it again") {
		t.Errorf("no reminder to store the secret: %q", r.stderr)
	}
	c, err := s.Store.GetClient(context.Background(), "shop")
	if err != nil || !bytes.Equal(c.SecretHash, s.P.HashClientSecret(secret)) || len(c.RedirectURIs) != 2 {
		t.Fatalf("stored client %+v (%v)", c, err)
	}

	// create --json from a file, flags on top.
	file := filepath.Join(t.TempDir(), "spa.json")
	if err := os.WriteFile(file, []byte(`{"client_name":"SPA","redirect_uris":["http://localhost:3000/cb"],"token_endpoint_auth_method":"none"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got := s.run(t, "", "clients", "create", "-f", file, "--client-id", "spa", "--skip-consent", "--json").ok(t).json(t)
	if got["client_id"] != "spa" || got["skip_consent"] != true || got["client_name"] != "SPA" || got["client_secret"] != nil {
		t.Errorf("create -f --json: %v", got)
	}
	// ... and from standard input.
	got = s.run(t, `{"redirect_uris":["https://std.example.com/cb"],"scope":"openid"}`, "clients", "create", "-f", "-", "--json").ok(t).json(t)
	if got["scope"] != "openid" || got["client_secret"] == nil {
		t.Errorf("create -f -: %v", got)
	}

	// list: a table with every client, static ones marked.
	r = s.run(t, "", "clients", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "CLIENT_ID") {
		t.Fatalf("list: want a header and 4 clients:\n%s", r.stdout)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "from-config") && !strings.HasSuffix(strings.TrimSpace(l), "yes") {
			t.Errorf("static client not marked: %q", l)
		}
	}
	// list follows pages; --limit shows one page with its cursor.
	all := s.run(t, "", "clients", "list", "--json", "--limit", "200").ok(t).json(t)
	if n := len(all["clients"].([]any)); n != 4 {
		t.Errorf("list --json: %d clients, want 4", n)
	}
	paged := s.run(t, "", "clients", "list", "--json").ok(t).json(t)
	if n := len(paged["clients"].([]any)); n != 4 || paged["next"] != nil {
		t.Errorf("list --json (every page): %d clients, next %v", n, paged["next"])
	}
	one := s.run(t, "", "clients", "list", "--json", "--limit", "2").ok(t).json(t)
	if n := len(one["clients"].([]any)); n != 2 || one["next"] == nil {
		t.Errorf("list --limit 2: %d clients, next %v", n, one["next"])
	}
	r = s.run(t, "", "clients", "list", "--limit", "2").ok(t)
	if !strings.Contains(r.stdout, "More clients: --after ") {
		t.Errorf("one page does not say how to get the next:\n%s", r.stdout)
	}
	rest := s.run(t, "", "clients", "list", "--json", "--limit", "2", "--after", one["next"].(string)).ok(t).json(t)
	if n := len(rest["clients"].([]any)); n != 2 {
		t.Errorf("second page: %d clients, want 2", n)
	}

	// get
	got = s.run(t, "", "clients", "get", "shop", "--json").ok(t).json(t)
	if got["client_name"] != "Shop" || got["client_secret"] != nil {
		t.Errorf("get: %v", got)
	}
	if r := s.run(t, "", "clients", "get", "shop").ok(t); !strings.Contains(r.stdout, "client_name                   Shop") {
		t.Errorf("get as a table:\n%s", r.stdout)
	}

	// update changes only the flags given.
	got = s.run(t, "", "clients", "update", "shop", "--name", "Shop 2", "--skip-consent", "--json").ok(t).json(t)
	if got["client_name"] != "Shop 2" || got["skip_consent"] != true || len(got["redirect_uris"].([]any)) != 2 {
		t.Errorf("update: %v", got)
	}
	if c, _ := s.Store.GetClient(context.Background(), "shop"); !bytes.Equal(c.SecretHash, s.P.HashClientSecret(secret)) {
		t.Error("update changed the secret")
	}
	got = s.run(t, "", "clients", "update", "shop", "--skip-consent=false", "--redirect-uri", "https://shop.example.com/new", "--json").ok(t).json(t)
	if got["skip_consent"] != false || len(got["redirect_uris"].([]any)) != 1 || got["client_name"] != "Shop 2" {
		t.Errorf("update 2: %v", got)
	}

	// rotate-secret
	got = s.run(t, "", "clients", "rotate-secret", "shop", "--json").ok(t).json(t)
	newSecret, _ := got["client_secret"].(string)
	if len(newSecret) != 43 || newSecret == secret {
		t.Fatalf("rotate-secret: %v", got)
	}
	if c, _ := s.Store.GetClient(context.Background(), "shop"); !bytes.Equal(c.SecretHash, s.P.HashClientSecret(newSecret)) {
		t.Error("the store does not hold the rotated secret")
	}

	// delete
	r = s.run(t, "", "clients", "delete", "shop").ok(t)
	if !strings.Contains(r.stdout, "Deleted client shop") {
		t.Errorf("delete: %q", r.stdout)
	}
	if _, err := s.Store.GetClient(context.Background(), "shop"); err == nil {
		t.Error("the client is still stored")
	}
}

func TestCLIKeys(t *testing.T) {
	s := newCLIServer(t)
	r := s.run(t, "", "keys", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "KID") || !strings.Contains(r.stdout, "RS256") || !strings.Contains(r.stdout, "ES256") {
		t.Fatalf("keys list:\n%s", r.stdout)
	}

	r = s.run(t, "", "keys", "rotate", "--alg", "RS256").ok(t)
	if !strings.Contains(r.stdout, "RS256: new signing key ") || !strings.Contains(r.stdout, "retired") || strings.Contains(r.stdout, "ES256: new") {
		t.Errorf("keys rotate --alg RS256:\n%s", r.stdout)
	}
	got := s.run(t, "", "keys", "rotate", "--json").ok(t).json(t)
	if n := len(got["rotated"].([]any)); n != 2 {
		t.Errorf("keys rotate: %d algorithms rotated, want 2", n)
	}
	list := s.run(t, "", "keys", "list", "--json").ok(t).json(t)
	if n := len(list["keys"].([]any)); n != 5 {
		t.Errorf("after two rotations: %d keys, want 5", n)
	}
	for _, field := range []string{`"d"`, "encrypted", "PRIVATE"} {
		if strings.Contains(s.run(t, "", "keys", "list", "--json").stdout, field) {
			t.Errorf("keys list shows %s", field)
		}
	}
}

// TestCLIErrors: every failure exits non-zero (Execute returns an error, which
// main prints and turns into exit status 1) with the API's error_description.
func TestCLIErrors(t *testing.T) {
	s := newCLIServer(t)
	down := httptest.NewServer(nil)
	down.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(cliToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		says []string
	}{
		{"invalid redirect", nil, []string{"clients", "create", "--redirect-uri", "http://shop.example.com/cb"},
			[]string{"redirect_uris[0] must use https", "invalid_redirect_uri", "HTTP 400"}},
		{"invalid metadata", nil, []string{"clients", "create", "--redirect-uri", "https://a.example.com/cb", "--scope", "phone"},
			[]string{"scope must contain \"openid\"", "invalid_client_metadata"}},
		{"missing", nil, []string{"clients", "get", "nope"}, []string{"no client with client_id \"nope\"", "HTTP 404"}},
		{"update missing", nil, []string{"clients", "update", "nope", "--name", "x"}, []string{"no client", "HTTP 404"}},
		{"delete static", nil, []string{"clients", "delete", "from-config"}, []string{"read-only", "static_client", "HTTP 409"}},
		{"update static", nil, []string{"clients", "update", "from-config", "--name", "x"}, []string{"read-only"}},
		{"rotate static", nil, []string{"clients", "rotate-secret", "from-config"}, []string{"read-only"}},
		{"bad alg", nil, []string{"keys", "rotate", "--alg", "HS256"}, []string{"alg must be", "HTTP 400"}},
		{"bad file", nil, []string{"clients", "create", "-f", "/nonexistent/x.json"}, []string{"no such file"}},
		{"wrong token", map[string]string{envAdminToken: "wrong"}, []string{"keys", "list"}, []string{"the admin token is wrong", "HTTP 401", envAdminToken}},
		{"no token", map[string]string{envAdminToken: ""}, []string{"clients", "list"}, []string{"no admin token", envAdminToken}},
		{"server down", map[string]string{envAdminURL: down.URL}, []string{"keys", "list"}, []string{"cannot reach the admin API at " + down.URL, envAdminURL}},
		{"bad url", map[string]string{envAdminURL: "127.0.0.1:8081"}, []string{"keys", "list"}, []string{"must be an http(s) URL"}},
		{"missing argument", nil, []string{"clients", "get"}, []string{"accepts 1 arg"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{envAdminURL: s.URL, envAdminToken: cliToken}
			for k, v := range tc.env {
				env[k] = v
			}
			r := cliRun(t, env, "", tc.args...)
			if r.err == nil {
				t.Fatalf("succeeded:\n%s", r.stdout)
			}
			for _, want := range tc.says {
				if !strings.Contains(r.err.Error(), want) {
					t.Errorf("error %q does not say %q", r.err, want)
				}
			}
		})
	}

	// Flags beat the environment; a token file works.
	r := cliRun(t, map[string]string{envAdminURL: down.URL, envAdminToken: "wrong"}, "", "keys", "list", "--admin-url", s.URL, "--admin-token", cliToken)
	if r.err != nil {
		t.Errorf("--admin-url/--admin-token over the environment: %v", r.err)
	}
	r = cliRun(t, map[string]string{envAdminURL: s.URL, envAdminTokenFile: tokenFile}, "", "keys", "list")
	if r.err != nil {
		t.Errorf("%s: %v", envAdminTokenFile, r.err)
	}
	// The token never shows in help.
	r = cliRun(t, map[string]string{envAdminToken: cliToken}, "", "clients", "--help")
	if strings.Contains(r.stdout, cliToken) {
		t.Error("--help shows the admin token")
	}
}
