package provider_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"golang.org/x/oauth2"
	"google.golang.org/protobuf/proto"

	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/observe"
)

// withObservability wires the store, the SMS sender and the provider as
// serve does: the store behind observe.Wrap reporting to m, and, when
// tracer is not nil, spans around requests, store calls and SMS sends.
func withObservability(t testing.TB, kind string, m *provider.Metrics, tracer trace.Tracer) envOption {
	return func(c *envConfig) {
		c.store = func(s storage.Store) storage.Store {
			return observe.Wrap(s, observe.WithRecorder(m), observe.WithTracer(tracer), observe.WithSystem(kind))
		}
		withOptions(func(o *provider.Options) {
			sender := sms.Trace("outbox", sms.Observe("outbox", sms.NewOutbox(o.Store, 100, time.Now), m), tracer)
			f, err := smsotp.New(o.Store, sender, smsotp.Options{HashKey: provider.CodeHashKey(o.Secret), Origin: issuerHost(t, o)})
			if err != nil {
				t.Fatalf("smsotp.New: %v", err)
			}
			o.Factor, o.Metrics, o.Tracer = f, m, tracer
		})(c)
	}
}

// collector is an OTLP/HTTP trace collector: it keeps every request body and
// the spans decoded from it.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	raw   [][]byte
	spans []*tracepb.Span
	names map[string]string // resource attribute service.name, by span id
}

func newCollector(t testing.TB) *collector {
	c := &collector{names: map[string]string{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.URL.Path != "/v1/traces" || r.Method != http.MethodPost ||
			r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("X-Api-Key") != "test-key" {
			t.Errorf("collector: %s %s %s: %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("collector: decode: %v", err)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.raw = append(c.raw, body)
		for _, rs := range req.ResourceSpans {
			service := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					c.spans = append(c.spans, sp)
					c.names[hex.EncodeToString(sp.SpanId)] = service
				}
			}
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// byName returns the received spans named name.
func (c *collector) byName(name string) []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*tracepb.Span
	for _, sp := range c.spans {
		if sp.Name == name {
			out = append(out, sp)
		}
	}
	return out
}

// inTrace returns the received spans of the trace id.
func (c *collector) inTrace(id []byte) []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*tracepb.Span
	for _, sp := range c.spans {
		if bytes.Equal(sp.TraceId, id) {
			out = append(out, sp)
		}
	}
	return out
}

func spanAttrs(sp *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, a := range sp.Attributes {
		switch v := a.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[a.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[a.Key] = strconv.FormatInt(v.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			m[a.Key] = strconv.FormatBool(v.BoolValue)
		}
	}
	return m
}

// TestTracingExportsOverOTLP runs one login with tracing on, exporting to
// a collector over OTLP/HTTP, and checks what arrived: a span per request
// named after its route, the store calls and the SMS send of each request
// in its trace, a trusted proxy's traceparent continued, the service named,
// and no phone number, code or query anywhere in the exported bytes.
func TestTracingExportsOverOTLP(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		col := newCollector(t)
		tr, err := provider.NewTracing(t.Context(), provider.TracingOptions{
			Endpoint: col.URL, Headers: map[string]string{"X-Api-Key": "test-key"},
			SampleRatio: 1, ServiceName: "otpgate-test", ServiceVersion: "v0-test",
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tr.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
		m := provider.NewMetrics(prometheus.NewRegistry())
		// The test's requests come from 127.0.0.1, as from a gateway.
		e := newEnv(t, kind, withObservability(t, kind, m, tr.Tracer()), withTrustedProxies("127.0.0.1", "::1"))

		// A trusted proxy's trace is continued.
		const parentTrace, parentSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		req, _ := http.NewRequest(http.MethodGet, e.abs("/.well-known/openid-configuration"), nil)
		req.Header.Set("traceparent", "00-"+parentTrace+"-"+parentSpan+"-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()

		// A login whose authorization request carries the number in its query.
		r := e.newRP(clientTrusted)
		e.newBrowser().loginTokens(r, phoneATyped, phoneA, oauth2.SetAuthURLParam("login_hint", "tel:"+phoneA))
		code := e.codeFor(phoneA)
		// Not found: a scanner's path is not a span name.
		resp, err = http.Get(e.abs("/wp-admin/setup.php?x=1"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()

		if err := tr.ForceFlush(t.Context()); err != nil {
			t.Fatalf("ForceFlush: %v", err)
		}

		tid, _ := hex.DecodeString(parentTrace)
		continued := col.inTrace(tid)
		if len(continued) != 1 || continued[0].Name != "GET /.well-known/openid-configuration" || hex.EncodeToString(continued[0].ParentSpanId) != parentSpan {
			t.Fatalf("spans in the caller's trace %s: %v, want the discovery request under %s", parentTrace, continued, parentSpan)
		}
		if continued[0].Kind != tracepb.Span_SPAN_KIND_SERVER {
			t.Errorf("discovery span kind %v", continued[0].Kind)
		}

		// Each step is a server span with the standard attributes, and its
		// store calls (and SMS) are in its trace.
		for _, step := range []struct {
			name, route, status string
			children            []string
		}{
			{"GET /oauth2/auth", "/oauth2/auth", "303", []string{"store.CreateFlow"}},
			{"POST /login/phone", "/login/phone", "303", []string{"store.CreateChallenge", "sms.send", "store.AppendOutbox"}},
			{"POST /login/code", "/login/code", "303", []string{"store.VerifyChallenge"}},
			{"POST /oauth2/token", "/oauth2/token", "200", []string{"store.GetToken"}},
		} {
			got := col.byName(step.name)
			if len(got) != 1 {
				t.Errorf("%d spans named %q, want 1", len(got), step.name)
				continue
			}
			sp := got[0]
			a := spanAttrs(sp)
			if a["http.route"] != step.route || a["http.request.method"] != strings.Fields(step.name)[0] || a["url.path"] != step.route {
				t.Errorf("%s: attributes %v", step.name, a)
			}
			if a["http.response.status_code"] != step.status {
				t.Errorf("%s: status code %s, want %s", step.name, a["http.response.status_code"], step.status)
			}
			if len(sp.ParentSpanId) != 0 {
				t.Errorf("%s: a parent, but the request had no traceparent", step.name)
			}
			names := map[string]*tracepb.Span{}
			for _, c := range col.inTrace(sp.TraceId) {
				names[c.Name] = c
			}
			for _, child := range step.children {
				if names[child] == nil {
					t.Errorf("%s: no %s span in its trace (have %v)", step.name, child, mapKeys(names))
				}
			}
			if col.names[hex.EncodeToString(sp.SpanId)] != "otpgate-test" {
				t.Errorf("%s: service.name %q", step.name, col.names[hex.EncodeToString(sp.SpanId)])
			}
		}
		if sends := col.byName("sms.send"); len(sends) != 1 || spanAttrs(sends[0])["otpgate.sms.provider"] != "outbox" || spanAttrs(sends[0])["otpgate.sms.calling_code"] != "33" {
			t.Errorf("sms.send spans: %v", sends)
		}
		if verify := col.byName("store.VerifyChallenge"); len(verify) != 1 || spanAttrs(verify[0])["db.system.name"] != kind || spanAttrs(verify[0])["otpgate.challenge.verify"] != "ok" {
			t.Errorf("store.VerifyChallenge spans: %v", verify)
		}
		if unmatched := col.byName("GET"); len(unmatched) != 1 {
			t.Errorf("the unmatched request: %d spans named GET, want 1", len(unmatched))
		} else if a := spanAttrs(unmatched[0]); a["url.path"] != "" || a["http.route"] != "" {
			t.Errorf("the unmatched request's span records its path: %v", a)
		}

		col.mu.Lock()
		defer col.mu.Unlock()
		for _, sp := range col.spans {
			if strings.ContainsAny(sp.Name, "?=") || strings.Contains(sp.Name, "wp-admin") {
				t.Errorf("span name %q holds a raw URL", sp.Name)
			}
		}
		all := bytes.Join(col.raw, nil)
		for _, secret := range []string{"612345678", "12 34 56 78", code, clientSecrets[clientTrusted], "login_hint"} {
			if bytes.Contains(all, []byte(secret)) {
				t.Errorf("the exported spans contain %q", secret)
			}
		}
	})
}

// A traceparent is continued only from a trusted proxy, the direct peer.
// From any other peer, whatever X-Forwarded-For says, the request starts a
// trace of its own, sampled by sample_ratio, linked to the caller's span
// without its tracestate: a sampled flag from the internet records nothing
// at ratio 0.
func TestTraceparentTrust(t *testing.T) {
	const parentTrace, parentSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	const (
		continued = "continued"
		linked    = "linked"
		dropped   = "not recorded"
	)
	for _, tc := range []struct {
		name    string
		trusted []string
		xff     string
		ratio   float64
		flags   string
		want    string
	}{
		{"internet, sampled parent", nil, "", 1, "01", linked},
		{"internet, sampled parent at ratio 0", nil, "", 0, "01", dropped},
		{"internet, forwarded for a trusted address", []string{"10.0.0.0/8"}, "10.1.2.3", 1, "01", linked},
		{"trusted proxy, sampled parent at ratio 0", []string{"127.0.0.1", "::1"}, "", 0, "01", continued},
		// The proxy is the peer that sent the traceparent, not the client it forwards for.
		{"trusted proxy forwarding for a client", []string{"127.0.0.1", "::1"}, "203.0.113.7", 1, "01", continued},
		{"trusted range, unsampled parent", []string{"127.0.0.0/8", "::1/128"}, "", 1, "00", dropped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col := newCollector(t)
			tr, err := provider.NewTracing(t.Context(), provider.TracingOptions{
				Endpoint: col.URL, Headers: map[string]string{"X-Api-Key": "test-key"},
				SampleRatio: tc.ratio, ServiceName: "otpgate-test",
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tr.Shutdown(context.Background()) })
			e := newEnv(t, "memory", withTrustedProxies(tc.trusted...), withOptions(func(o *provider.Options) { o.Tracer = tr.Tracer() }))

			req, _ := http.NewRequest(http.MethodGet, e.abs("/healthz"), nil)
			req.Header.Set("traceparent", "00-"+parentTrace+"-"+parentSpan+"-"+tc.flags)
			req.Header.Set("tracestate", "vendor=opaque")
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if err := tr.ForceFlush(t.Context()); err != nil {
				t.Fatalf("ForceFlush: %v", err)
			}

			spans := col.byName("GET /healthz")
			if tc.want == dropped {
				if len(spans) != 0 {
					t.Fatalf("%d spans recorded, want none", len(spans))
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("%d spans recorded, want 1", len(spans))
			}
			sp := spans[0]
			trace, parent := hex.EncodeToString(sp.TraceId), hex.EncodeToString(sp.ParentSpanId)
			switch tc.want {
			case continued:
				if trace != parentTrace || parent != parentSpan || sp.TraceState != "vendor=opaque" || len(sp.Links) != 0 {
					t.Errorf("trace %s, parent %q, tracestate %q, %d links; want the caller's trace continued", trace, parent, sp.TraceState, len(sp.Links))
				}
			case linked:
				if trace == parentTrace || parent != "" || sp.TraceState != "" {
					t.Errorf("trace %s, parent %q, tracestate %q; want a new root", trace, parent, sp.TraceState)
				}
				if len(sp.Links) != 1 || hex.EncodeToString(sp.Links[0].TraceId) != parentTrace ||
					hex.EncodeToString(sp.Links[0].SpanId) != parentSpan || sp.Links[0].TraceState != "" {
					t.Errorf("links %v, want one to %s/%s without its tracestate", sp.Links, parentTrace, parentSpan)
				}
			}
		})
	}
}

// The store decorator feeds otpgate_store_operation_duration_seconds, by
// operation and outcome, with tracing off.
func TestStoreMetrics(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		m := provider.NewMetrics(prometheus.NewRegistry())
		e := newEnv(t, kind, withObservability(t, kind, m, nil))
		e.newBrowser().loginTokens(e.newRP(clientTrusted), phoneATyped, phoneA)
		if _, err := e.Store.GetFlow(t.Context(), "no-such-flow"); err == nil {
			t.Fatal("GetFlow found a flow that does not exist")
		}

		got := e.scrape()
		for sample, want := range map[string]float64{
			`otpgate_store_operation_duration_seconds_count{operation="CreateChallenge",outcome="ok"}`: 1,
			`otpgate_store_operation_duration_seconds_count{operation="VerifyChallenge",outcome="ok"}`: 1,
			`otpgate_store_operation_duration_seconds_count{operation="GetFlow",outcome="not_found"}`:  1,
		} {
			if got[sample] != want {
				t.Errorf("%s = %v, want %v", sample, got[sample], want)
			}
		}
		if got[`otpgate_store_operation_duration_seconds_bucket{operation="VerifyChallenge",outcome="ok",le="1"}`] != 1 {
			t.Errorf("no VerifyChallenge observation under 1s")
		}
		for sample := range got {
			if strings.HasPrefix(sample, "otpgate_store_operation") && strings.Contains(sample, `outcome="error"`) {
				t.Errorf("a store call failed: %s", sample)
			}
		}
	})
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// BenchmarkObservedLogin is BenchmarkLogin with the observability serve
// adds: "store" puts the store behind observe.Wrap feeding the Prometheus
// histogram and nothing else; "metrics" is serve with tracing off (the
// store histogram, the HTTP and SMS metrics); "traced" adds tracing of
// every request, store call and SMS, all sampled, exported over OTLP/HTTP
// to a collector that discards them. Compare with BenchmarkLogin:
//
//	go test -run '^$' -bench 'BenchmarkLogin$|BenchmarkObservedLogin' -benchtime 200x ./provider/
func BenchmarkObservedLogin(b *testing.B) {
	discard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer discard.Close()
	for _, kind := range stores {
		b.Run("store/"+kind, func(b *testing.B) {
			m := provider.NewMetrics(prometheus.NewRegistry())
			benchmarkLogin(b, kind, func(c *envConfig) {
				c.store = func(s storage.Store) storage.Store { return observe.Wrap(s, observe.WithRecorder(m)) }
			})
		})
		b.Run("metrics/"+kind, func(b *testing.B) {
			benchmarkLogin(b, kind, withObservability(b, kind, provider.NewMetrics(prometheus.NewRegistry()), nil))
		})
		b.Run("traced/"+kind, func(b *testing.B) {
			tr, err := provider.NewTracing(context.Background(), provider.TracingOptions{Endpoint: discard.URL, SampleRatio: 1, ServiceName: "otpgate-bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			benchmarkLogin(b, kind, withObservability(b, kind, provider.NewMetrics(prometheus.NewRegistry()), tr.Tracer()))
		})
	}
}

// The request span of an unknown method, a 404 and a 5xx.
func TestTraceRequest(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("test")
	e := newEnv(t, "memory", withOptions(func(o *provider.Options) { o.Tracer = tracer }))

	do := func(method, target string) {
		req, _ := http.NewRequest(method, e.abs(target), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	do("BREW", "/healthz")
	do(http.MethodGet, "/nowhere?phone=%2B33612345678")
	e.Store.Close() // /readyz now answers 503
	do(http.MethodGet, "/readyz")

	ended := spans.Ended()
	if len(ended) != 3 {
		t.Fatalf("%d spans, want 3", len(ended))
	}
	for i, want := range []struct {
		name   string
		attrs  map[string]string
		failed bool
	}{
		{"HTTP", map[string]string{"http.request.method": "_OTHER", "http.request.method_original": "BREW", "http.response.status_code": "404"}, false},
		{"GET", map[string]string{"http.request.method": "GET", "http.response.status_code": "404"}, false},
		{"GET /readyz", map[string]string{"http.route": "/readyz", "url.path": "/readyz", "http.response.status_code": "503", "error.type": "503"}, true},
	} {
		sp := ended[i]
		got := map[string]string{}
		for _, a := range sp.Attributes() {
			got[string(a.Key)] = a.Value.Emit()
		}
		if sp.Name() != want.name || sp.SpanKind() != trace.SpanKindServer {
			t.Errorf("span %d: %s (%v), want %s", i, sp.Name(), sp.SpanKind(), want.name)
		}
		for k, v := range want.attrs {
			if got[k] != v {
				t.Errorf("span %s: %s = %q, want %q", sp.Name(), k, got[k], v)
			}
		}
		// A path no route matched is the client's text: not recorded.
		for _, k := range []string{"http.route", "url.path"} {
			if _, ok := got[k]; ok != (want.attrs[k] != "") {
				t.Errorf("span %s: %s %q", sp.Name(), k, got[k])
			}
		}
		if failed := sp.Status().Code == codes.Error; failed != want.failed {
			t.Errorf("span %s: status %v", sp.Name(), sp.Status())
		}
	}
}

// BenchmarkObservedStore is the decorator's cost per store call on the
// memory store, where it shows most: bare, timed for the Prometheus
// histogram, and traced (every span sampled and exported in batches to a
// collector that discards them).
//
//	go test -run '^$' -bench BenchmarkObservedStore ./provider/
func BenchmarkObservedStore(b *testing.B) {
	discard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer discard.Close()
	tr, err := provider.NewTracing(context.Background(), provider.TracingOptions{Endpoint: discard.URL, SampleRatio: 1, ServiceName: "otpgate-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	m := provider.NewMetrics(prometheus.NewRegistry())
	for _, bc := range []struct {
		name string
		wrap func(storage.Store) storage.Store
	}{
		{"bare", func(s storage.Store) storage.Store { return s }},
		{"metric", func(s storage.Store) storage.Store { return observe.Wrap(s, observe.WithRecorder(m)) }},
		{"traced", func(s storage.Store) storage.Store {
			return observe.Wrap(s, observe.WithRecorder(m), observe.WithTracer(tr.Tracer()), observe.WithSystem("memory"))
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := bc.wrap(newStore(b, "memory"))
			ctx := context.Background()
			if err := s.CreateClient(ctx, storage.Client{ID: "bench", RedirectURIs: []string{"https://app.example.com/cb"}}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.GetClient(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
