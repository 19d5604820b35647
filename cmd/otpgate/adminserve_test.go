package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/config"
)

// cliBuffer is an io.Writer the test can read while serve writes to it.
type cliBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *cliBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *cliBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cliFreeAddr returns a loopback address with a port free a moment ago.
func cliFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cliServe runs serve with cfg until the test ends, and waits for the admin
// listener to answer.
func cliServe(t *testing.T, cfg config.Config, dev bool) *cliBuffer {
	t.Helper()
	out := &cliBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, dev, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop with its context")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + cfg.AdminListen + "/healthz")
		if err == nil {
			resp.Body.Close()
			return out
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admin listener %s never answered: %v", cfg.AdminListen, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cliConfig(t *testing.T, dev bool, env map[string]string) config.Config {
	t.Helper()
	listen, admin := cliFreeAddr(t), cliFreeAddr(t)
	vars := map[string]string{
		"OTPGATE_ISSUER":       "http://" + listen,
		"OTPGATE_LISTEN":       listen,
		"OTPGATE_ADMIN_LISTEN": admin,
		"OTPGATE_LOG_LEVEL":    "error",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load("", dev, func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestServeDevGeneratesAndPrintsAnAdminToken(t *testing.T) {
	cfg := cliConfig(t, true, nil)
	out := cliServe(t, cfg, true)
	m := regexp.MustCompile(`Admin API: +http://(\S+)/admin .*OTPGATE_ADMIN_TOKEN=(\S+)\)`).FindStringSubmatch(out.String())
	if m == nil || m[1] != cfg.AdminListen || len(m[2]) < 32 {
		t.Fatalf("the dev banner shows no admin URL and token:\n%s", out)
	}
	token := m[2]
	env := map[string]string{envAdminURL: "http://" + cfg.AdminListen, envAdminToken: token}
	if r := cliRun(t, env, "", "clients", "list"); r.err != nil || !strings.Contains(r.stdout, "otpgate-demo") {
		t.Errorf("clients list with the printed token: %v\n%s", r.err, r.stdout)
	}
	env[envAdminToken] = token + "x"
	if r := cliRun(t, env, "", "keys", "list"); r.err == nil || !strings.Contains(r.err.Error(), "HTTP 401") {
		t.Errorf("a wrong token: %v, want HTTP 401", r.err)
	}
}

func TestServeWithoutAdminTokenRefusesAdminCalls(t *testing.T) {
	cfg := cliConfig(t, false, map[string]string{
		"OTPGATE_SYSTEM_SECRET": "serve-test-system-secret-0123456789abcdef",
		"OTPGATE_SMS_SENDER":    "outbox",
	})
	out := cliServe(t, cfg, false)
	env := map[string]string{envAdminURL: "http://" + cfg.AdminListen, envAdminToken: "any-token-0123456789abcdef0123456789"}
	r := cliRun(t, env, "", "keys", "list")
	if r.err == nil || !strings.Contains(r.err.Error(), "no admin token is configured") || !strings.Contains(r.err.Error(), "HTTP 403") {
		t.Errorf("keys list against a server without a token: %v, want 403 saying no token is configured", r.err)
	}
	if strings.Contains(out.String(), "OTPGATE_ADMIN_TOKEN=") {
		t.Errorf("a token was generated outside dev mode:\n%s", out)
	}
}

func TestServeWithConfiguredAdminTokenAndRotation(t *testing.T) {
	const token = "configured-admin-token-0123456789abcdef"
	cfg := cliConfig(t, true, map[string]string{
		"OTPGATE_ADMIN_TOKEN":                 token,
		"OTPGATE_ADMIN_KEY_ROTATION_INTERVAL": "24h",
	})
	out := cliServe(t, cfg, true)
	if strings.Contains(out.String(), token) || !strings.Contains(out.String(), "token from the configuration") {
		t.Errorf("the banner must not print a configured token:\n%s", out)
	}
	env := map[string]string{envAdminURL: "http://" + cfg.AdminListen, envAdminToken: token}
	if r := cliRun(t, env, "", "keys", "list"); r.err != nil {
		t.Errorf("keys list with the configured token: %v", r.err)
	}
}

func TestAdminTokenChoice(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dev := config.Defaults(true)
	if tok, gen := adminToken(dev, true, log); !gen || len(tok) < 32 {
		t.Errorf("dev without a token: %q generated=%v, want a generated token", tok, gen)
	}
	a, _ := adminToken(dev, true, log)
	b, _ := adminToken(dev, true, log)
	if a == b {
		t.Error("two generated tokens are equal")
	}
	noAdmin := dev
	noAdmin.AdminListen = ""
	if tok, _ := adminToken(noAdmin, true, log); tok != "" {
		t.Error("a token was generated without an admin listener")
	}
	if tok, gen := adminToken(config.Defaults(false), false, log); tok != "" || gen {
		t.Errorf("production without a token: %q, want none", tok)
	}
	set := config.Defaults(false)
	set.Admin.Token = "configured"
	if tok, gen := adminToken(set, true, log); tok != "configured" || gen {
		t.Errorf("configured token: %q generated=%v", tok, gen)
	}
}
