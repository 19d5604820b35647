package main

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/otpgate/otpgate/config"
)

// serve --dev with tracing on exports the spans of a request, its store
// calls and its SMS to the configured collector, flushed when serve stops;
// a header from tracing.headers_file goes with every export.
func TestServeExportsTraces(t *testing.T) {
	var (
		mu    sync.Mutex
		names []string
		raw   []byte
		keys  []string
	)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		raw = append(raw, body...)
		keys = append(keys, r.Header.Get("X-Api-Key"))
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					names = append(names, sp.Name)
				}
			}
		}
	}))
	defer collector.Close()

	headers := filepath.Join(t.TempDir(), "headers")
	if err := os.WriteFile(headers, []byte("x-api-key: key-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := cliConfig(t, true, map[string]string{
		"OTPGATE_TRACING_ENABLED":      "true",
		"OTPGATE_TRACING_ENDPOINT":     collector.URL,
		"OTPGATE_TRACING_HEADERS_FILE": headers,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, true, &cliBuffer{}) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not stop with its context")
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(25 * time.Millisecond) {
		if resp, err := http.Get(cfg.Issuer + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("serve never answered /healthz")
		}
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Timeout: 10 * time.Second, Jar: jar}
	status, _, body := devGet(t, browser, cfg.Issuer+"/dev/demo/login")
	if status != http.StatusOK || !strings.Contains(body, `name="phone"`) {
		t.Fatalf("/dev/demo/login: %d", status)
	}
	form := formAction.FindStringSubmatch(body)
	csrf := csrfInput.FindStringSubmatch(body)
	if form == nil || csrf == nil {
		t.Fatalf("no phone form:\n%s", body)
	}
	resp, err := browser.PostForm(cfg.Issuer+html.UnescapeString(form[1]), map[string][]string{"phone": {devPhone}, "csrf_token": {html.UnescapeString(csrf[1])}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	stop() // flushes the spans

	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"GET /dev/demo/login", "GET /oauth2/auth", "POST /login/phone", "store.CreateFlow", "store.CreateChallenge", "sms.send"} {
		if !slices.Contains(names, want) {
			t.Errorf("no span %q exported; got %q", want, names)
		}
	}
	if bytes.Contains(raw, []byte("612345678")) {
		t.Error("the exported spans contain the phone number")
	}
	if len(keys) == 0 || slices.ContainsFunc(keys, func(k string) bool { return k != "key-from-file" }) {
		t.Errorf("X-Api-Key headers %q, want key-from-file on every export", keys)
	}
}

// The start-up log names the endpoint in effect: the configured one, else
// the variable the exporter reads, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// before OTEL_EXPORTER_OTLP_ENDPOINT, else the exporter's default.
func TestTracingLogsEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured string
		env        map[string]string
		want       string
	}{
		{"configured", "http://collector:4318", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other:4318/v1/traces"}, "http://collector:4318"},
		{"traces variable", "", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://user:hunter2@c:4318/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"base variable", "", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": " ", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"neither", "", nil, "https://localhost:4318 (the exporter's default)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
				t.Setenv(name, tc.env[name])
			}
			var logs bytes.Buffer
			_, stop, err := openTracing(t.Context(), config.TracingConfig{Enabled: true, Endpoint: tc.configured, SampleRatio: 1, ServiceName: "otpgate"}, slog.New(slog.NewJSONHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			stop()
			var rec struct{ Msg, Endpoint string }
			if err := json.Unmarshal(logs.Bytes(), &rec); err != nil || rec.Msg != "tracing: exporting spans over OTLP/HTTP" || rec.Endpoint != tc.want {
				t.Errorf("log %q, want endpoint %q", logs.String(), tc.want)
			}
			if strings.Contains(logs.String(), "hunter2") {
				t.Errorf("the log quotes a variable's credentials: %q", logs.String())
			}
		})
	}
}

// With tracing off (the default) the store calls are still timed.
func TestServeStoreMetrics(t *testing.T) {
	cfg := cliConfig(t, true, nil)
	cliServe(t, cfg, true)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Timeout: 10 * time.Second, Jar: jar}
	status, _, _ := devGet(t, client, cfg.Issuer+"/dev/demo/login")
	if status != http.StatusOK {
		t.Fatalf("/dev/demo/login: %d", status)
	}
	_, _, metrics := devGet(t, client, "http://"+cfg.AdminListen+"/metrics")
	if !strings.Contains(metrics, `otpgate_store_operation_duration_seconds_count{operation="CreateFlow",outcome="ok"} 1`) {
		t.Errorf("no CreateFlow in otpgate_store_operation_duration_seconds:\n%s", grepLines(metrics, "otpgate_store_operation"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
