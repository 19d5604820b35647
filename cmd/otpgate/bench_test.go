package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/provider"
)

// TestBench runs the load generator against `serve --dev` (memory store, the
// dev outbox and the bench client it registers), as the docs tell users to.
func TestBench(t *testing.T) {
	cfg := cliConfig(t, true, nil)
	cliServe(t, cfg, true)

	var progress bytes.Buffer
	res, err := runBench(context.Background(), benchOptions{
		Issuer: cfg.Issuer, ClientID: provider.BenchClientID, RedirectURI: provider.BenchRedirectURI,
		Concurrency: 4, Duration: time.Minute, Logins: 40, PhonePrefix: "+3361", Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Completed != 40 || res.Errors != 0 || res.LoginsPerSecond <= 0 {
		t.Fatalf("completed %d, errors %d %v, %.1f/s; want 40 complete logins and no error", res.Completed, res.Errors, res.ErrorReasons, res.LoginsPerSecond)
	}
	if res.IDTokenAlg != "RS256" {
		t.Errorf("ID tokens %q, want RS256 (the default)", res.IDTokenAlg)
	}
	var names []string
	for _, s := range res.Steps {
		names = append(names, s.Name)
		if s.Count != 40 || s.P50 <= 0 || s.P50 > s.P95 || s.P95 > s.P99 || s.P99 > s.Max {
			t.Errorf("step %s: %+v", s.Name, s)
		}
	}
	if got := strings.Join(names, ","); got != "authorize,phone,code,token,outbox,login" {
		t.Errorf("steps %s", got)
	}

	// The same client with ES256 ID tokens, to measure what RS256 costs.
	res, err = runBench(context.Background(), benchOptions{
		Issuer: cfg.Issuer, ClientID: provider.BenchES256ClientID, RedirectURI: provider.BenchRedirectURI,
		Concurrency: 2, Duration: time.Minute, Logins: 4, PhonePrefix: "+3361",
	})
	if err != nil || res.Completed != 4 || res.Errors != 0 || res.IDTokenAlg != "ES256" {
		t.Errorf("ES256 client: %+v, %v; want 4 logins with ES256 ID tokens", res, err)
	}

	// --pending stops after the phone step: the SMS is sent, nothing redeemed.
	res, err = runBench(context.Background(), benchOptions{
		Issuer: cfg.Issuer, ClientID: provider.BenchClientID, RedirectURI: provider.BenchRedirectURI,
		Concurrency: 2, Duration: time.Minute, Logins: 6, Pending: true, PhonePrefix: "+3361",
	})
	if err != nil || res.Completed != 6 || res.Errors != 0 || len(res.Steps) != 2 {
		t.Errorf("pending: %+v, %v; want 6 logins stopped after the phone step", res, err)
	}

	// The command: JSON on stdout, progress on stderr.
	var out, errOut bytes.Buffer
	cmd := rootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"bench", "--issuer", cfg.Issuer, "-c", "2", "-n", "4", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("otpgate bench: %v\n%s", err, errOut.String())
	}
	var got benchResult
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Completed != 4 || got.ClientID != provider.BenchClientID {
		t.Errorf("--json printed %q (%v)", out.String(), err)
	}
	if !strings.HasPrefix(errOut.String(), "otpgate bench: "+cfg.Issuer) {
		t.Errorf("stderr %q", errOut.String())
	}

	// A client the server does not know: every login fails at authorize, the
	// table says why and the exit status is an error.
	out.Reset()
	cmd = rootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"bench", "--issuer", cfg.Issuer, "--client-id", "nobody", "-c", "1", "-n", "2"})
	err = cmd.Execute()
	if err == nil || err.Error() != "2 logins failed" {
		t.Errorf("unknown client: err %v, want 2 logins failed", err)
	}
	if !strings.Contains(out.String(), "2  authorize: status 400 (want 303)") {
		t.Errorf("the table does not give the reason:\n%s", out.String())
	}
}
