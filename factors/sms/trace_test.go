package sms_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/otpgate/otpgate/factors/sms"
)

// A message the secondary delivers after the primary failed shows as one
// failover span with one send span per provider tried, each naming its
// provider, the calling code and the outcome, none quoting the number, the
// text or the webhook's secret.
func TestTraceFailover(t *testing.T) {
	const secret = "webhook-secret-0123456789abcdef0123456789"
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance for +33612345678", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()

	spans := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("test")
	deps := quietDeps()
	deps.Dev = true
	deps.Tracer = tracer
	webhook := func(name, url string) sms.ProviderSpec {
		return sms.ProviderSpec{Name: name, Type: "webhook", Config: node(t, "url: "+url+"\nsecret: "+secret+"\n")}
	}
	f, err := sms.Setup{Providers: []sms.ProviderSpec{webhook("primary", down.URL), webhook("backup", up.URL)}}.Open(deps)
	if err != nil {
		t.Fatal(err)
	}

	ctx, parent := tracer.Start(context.Background(), "POST /login/phone")
	if _, err := f.Send(ctx, sms.Message{To: "+33612345678", Body: "Your code is 123456"}); err != nil {
		t.Fatal(err)
	}
	parent.End()

	ended := spans.Ended()
	if len(ended) != 4 {
		t.Fatalf("%d spans, want 4 (two sends, the failover, the request)", len(ended))
	}
	primary, backup, failover := ended[0], ended[1], ended[2]
	for _, tc := range []struct {
		span                    sdktrace.ReadOnlySpan
		name, provider, outcome string
		parent                  trace.SpanContext
		failed                  bool
	}{
		{primary, "sms.send", "primary", "unavailable", failover.SpanContext(), true},
		{backup, "sms.send", "backup", "sent", failover.SpanContext(), false},
		{failover, "sms.failover", "", "sent", parent.SpanContext(), false},
	} {
		sp := tc.span
		attrs := map[string]string{}
		for _, a := range sp.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
			noLeak(t, a.Value.Emit(), secret, "123456", "Your code")
		}
		noLeak(t, sp.Status().Description, secret, "123456")
		if sp.Name() != tc.name || attrs["otpgate.sms.provider"] != tc.provider || attrs["otpgate.sms.calling_code"] != "33" || attrs["otpgate.sms.outcome"] != tc.outcome {
			t.Errorf("span %s: attributes %v, want %s provider %q outcome %s calling code 33", sp.Name(), attrs, tc.name, tc.provider, tc.outcome)
		}
		if sp.Parent().SpanID() != tc.parent.SpanID() || sp.SpanContext().TraceID() != tc.parent.TraceID() {
			t.Errorf("span %s (%s): parent %v, want %v", sp.Name(), tc.provider, sp.Parent().SpanID(), tc.parent.SpanID())
		}
		if failed := sp.Status().Code == codes.Error; failed != tc.failed {
			t.Errorf("span %s (%s): status %v", sp.Name(), tc.provider, sp.Status())
		}
		if tc.failed && attrs["error.type"] != "unavailable" {
			t.Errorf("span %s (%s): error.type %q, want the failure class", sp.Name(), tc.provider, attrs["error.type"])
		}
		if len(sp.Events()) != 0 {
			t.Errorf("span %s: events %v (an error event would quote the message)", sp.Name(), sp.Events())
		}
	}
}

// Without a tracer nothing is wrapped and no span starts.
func TestTraceNil(t *testing.T) {
	s := &scripted{}
	if got := sms.Trace("p", s, nil); got != sms.Sender(s) {
		t.Errorf("Trace with no tracer returned %T, want the sender itself", got)
	}
	calls := 0
	if err := sms.TraceSend(context.Background(), nil, "orange", 33, func(context.Context) error { calls++; return nil }); err != nil || calls != 1 {
		t.Errorf("TraceSend without a tracer: %v, %d calls", err, calls)
	}
}

// A send span keeps the wrapped sender's startup check, and an unparsable
// number has no calling code rather than a wrong one.
func TestTraceSender(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("test")
	s := &scripted{check: errTest}
	traced := sms.Trace("outbox", s, tracer)
	if c, ok := traced.(sms.StartupChecker); !ok || c.StartupCheck(context.Background()) != errTest {
		t.Error("the traced sender lost its startup check")
	}
	s.set(errRejected)
	if _, err := traced.Send(context.Background(), sms.Message{To: "not a number", Body: "x"}); err != errRejected {
		t.Fatalf("Send: %v, want the sender's error as is", err)
	}
	sp := spans.Ended()[0]
	for _, a := range sp.Attributes() {
		if a.Key == "otpgate.sms.calling_code" {
			t.Errorf("calling code %v for a number that does not parse", a.Value.Emit())
		}
		if a.Key == "otpgate.sms.outcome" && a.Value.AsString() != "rejected" {
			t.Errorf("outcome %s, want rejected", a.Value.AsString())
		}
	}
	if sp.SpanKind() != trace.SpanKindClient || !strings.HasPrefix(sp.Status().Description, "message not accepted") {
		t.Errorf("span kind %v, status %v", sp.SpanKind(), sp.Status())
	}
}
