package main

// The binary's own commands, run in-process through rootCommand with the
// process environment (config check and serve read os.Getenv): version,
// config check, and serve's refusal to start without a system secret.

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exampleConfig is the documented configuration at the repository root.
const exampleConfig = "../../otpgate.example.yaml"

// cmdResult is one in-process run of `otpgate args…`.
type cmdResult struct {
	err            error
	stdout, stderr string
}

// runCmd runs the real root command until it returns or ctx ends.
func runCmd(ctx context.Context, args ...string) cmdResult {
	root := rootCommand()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(""))
	err := root.ExecuteContext(ctx)
	return cmdResult{err: err, stdout: out.String(), stderr: errOut.String()}
}

// clearOTPGATEEnv unsets, for this test, every OTPGATE_ variable of the
// process (a CI job may export OTPGATE_REDIS_URL for the Redis tests): the
// commands must see only what the test sets. An empty variable counts as
// unset for config.Load.
func clearOTPGATEEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTPGATE_") {
			t.Setenv(k, "")
		}
	}
}

func TestVersionCommand(t *testing.T) {
	old := version
	version = "v9.8.7-test" // what -ldflags "-X main.version=…" sets
	t.Cleanup(func() { version = old })

	r := runCmd(context.Background(), "version")
	if r.err != nil || r.stdout != "otpgate v9.8.7-test\n" || r.stderr != "" {
		t.Errorf("otpgate version: %v, stdout %q, stderr %q; want \"otpgate v9.8.7-test\\n\"", r.err, r.stdout, r.stderr)
	}
	if r := runCmd(context.Background(), "version", "extra"); r.err == nil {
		t.Error("otpgate version extra: want an error for the unexpected argument")
	}
}

func TestConfigCheck(t *testing.T) {
	clearOTPGATEEnv(t)
	ctx := context.Background()

	// The example documents a production setup; its one required value left
	// out is the secret, which belongs in the environment or a file.
	r := runCmd(ctx, "config", "check", exampleConfig)
	if r.err == nil || !strings.Contains(r.stderr, "system_secret") {
		t.Errorf("the example without OTPGATE_SYSTEM_SECRET: %v\n%s", r.err, r.stderr)
	}
	t.Setenv("OTPGATE_SYSTEM_SECRET", "cli-test-system-secret-0123456789abcdef")
	// With the secret, what is left are the provider secret files the example
	// points at, which only exist on a real deployment.
	r = runCmd(ctx, "config", "check", exampleConfig)
	if r.err == nil || !strings.Contains(r.stderr, "names a file that cannot be read") || strings.Contains(r.stderr, "system_secret") {
		t.Errorf("the example with OTPGATE_SYSTEM_SECRET: %v\nstdout: %s\nstderr: %s", r.err, r.stdout, r.stderr)
	}
	good := filepath.Join(t.TempDir(), "good.yaml")
	if err := os.WriteFile(good, []byte("issuer: https://id.example.com\nsms:\n  sender: outbox\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCmd(ctx, "config", "check", good)
	if r.err != nil || r.stdout != good+": ok\n" {
		t.Fatalf("a valid file: %v\nstdout: %s\nstderr: %s", r.err, r.stdout, r.stderr)
	}

	// A broken file: every problem at once, each naming its key.
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte(strings.Join([]string{
		`listen: ":8080"`,
		`sms:`,
		`  sender: outbox`,
		`  code_ttl: five minutes`,
		`  cod_length: 6`,
		``,
	}, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCmd(ctx, "config", "check", broken)
	if r.err == nil {
		t.Fatalf("config check on a broken file passed:\n%s", r.stdout)
	}
	if r.stdout != "" {
		t.Errorf("a failed check printed on stdout: %q", r.stdout)
	}
	for _, want := range []string{
		"option 'issuer' is required",                  // missing
		"sms: option 'code_ttl' must be a duration",    // bad value
		"got 'five minutes'",                           // … quoted
		"sms: option 'cod_length' is unknown (line 5)", // unknown key, with its line
		"code_length", // … and the likely intent
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("config check does not report %q:\n%s", want, r.stderr)
		}
	}
	if n := strings.Count(r.stderr, "\n  - "); n < 2 {
		t.Errorf("want one indented line per problem, got:\n%s", r.stderr)
	}

	// Options inside a provider's config block are checked too, by the registry.
	badProvider := filepath.Join(t.TempDir(), "provider.yaml")
	if err := os.WriteFile(badProvider, []byte(strings.Join([]string{
		`issuer: https://id.example.com`,
		`sms:`,
		`  providers:`,
		`    - name: primary`,
		`      type: twilio`,
		`      config:`,
		`        account_sid: AC123`,
		`        timout: 5s`,
		``,
	}, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCmd(ctx, "config", "check", badProvider)
	if r.err == nil || !strings.Contains(r.stderr, "sms.providers[0].config: option 'timout' is unknown") {
		t.Errorf("config check missed a bad provider option: %v\n%s", r.err, r.stderr)
	}

	if r := runCmd(ctx, "config", "check", filepath.Join(t.TempDir(), "missing.yaml")); r.err == nil {
		t.Error("config check on a missing file passed")
	}
}

func TestServeRefusesWithoutSystemSecret(t *testing.T) {
	for _, tt := range []struct {
		name, secret, want string
	}{
		{"missing", "", "option 'system_secret' is required outside --dev"},
		{"too short", "short-secret", "option 'system_secret' must be at least 32 bytes long"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearOTPGATEEnv(t)
			listen, admin := cliFreeAddr(t), cliFreeAddr(t)
			t.Setenv("OTPGATE_ISSUER", "http://"+listen)
			t.Setenv("OTPGATE_LISTEN", listen)
			t.Setenv("OTPGATE_ADMIN_LISTEN", admin)
			t.Setenv("OTPGATE_SMS_SENDER", "outbox") // valid outside --dev too
			t.Setenv("OTPGATE_SYSTEM_SECRET", tt.secret)

			// Were it to start, serve would run until ctx ends.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r := runCmd(ctx, "serve")
			if r.err == nil {
				t.Fatalf("serve without a valid system secret returned nil\nstderr: %s", r.stderr)
			}
			if ctx.Err() != nil {
				t.Fatalf("serve ran until its context ended instead of refusing")
			}
			if !strings.Contains(r.err.Error(), "cannot start") || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("serve: %v\nstderr: %s\nwant %q", r.err, r.stderr, tt.want)
			}
			for _, addr := range []string{listen, admin} {
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
					t.Errorf("something listens on %s after serve refused to start", addr)
				}
			}
		})
	}

	// The same environment with a good secret starts: the refusals above are
	// about the secret and nothing else.
	t.Run("valid", func(t *testing.T) {
		clearOTPGATEEnv(t)
		listen, admin := cliFreeAddr(t), cliFreeAddr(t)
		t.Setenv("OTPGATE_ISSUER", "http://"+listen)
		t.Setenv("OTPGATE_LISTEN", listen)
		t.Setenv("OTPGATE_ADMIN_LISTEN", admin)
		t.Setenv("OTPGATE_SMS_SENDER", "outbox") // valid outside --dev too
		t.Setenv("OTPGATE_LOG_LEVEL", "error")
		t.Setenv("OTPGATE_SYSTEM_SECRET", "cli-test-system-secret-0123456789abcdef")

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan cmdResult, 1)
		go func() { done <- runCmd(ctx, "serve") }()
		client := &http.Client{Timeout: time.Second}
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := client.Get("http://" + listen + "/healthz")
			if err == nil {
				resp.Body.Close()
				break
			}
			select {
			case r := <-done:
				t.Fatalf("serve with a valid secret ended: %v\nstderr: %s", r.err, r.stderr)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve with a valid secret never answered: %v", err)
			}
			time.Sleep(25 * time.Millisecond)
		}
		cancel()
		select {
		case r := <-done:
			if r.err != nil {
				t.Errorf("serve after cancel: %v", r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not stop when its context was cancelled")
		}
	})
}
