package orange_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/otpgate/otpgate/factors/orange"
)

// Each code Orange is asked to text is an "sms.send" span with the provider
// and the calling code, and neither the number nor the code.
func TestTraceSends(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("test")
	e := setup(t, func(o *orange.Options) { o.Tracer = tracer })
	ch := e.start(t)
	code := e.code(t)
	e.clock.Advance(orange.DefaultResendCooldown)
	e.fake.SetFailure(func(string) int { return 503 })
	if _, err := e.resend(ch.ID); err == nil {
		t.Fatal("resend with Orange down succeeded")
	}

	ended := spans.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans, want 2", len(ended))
	}
	for i, want := range []string{"sent", "unknown"} {
		sp := ended[i]
		attrs := map[string]string{}
		for _, a := range sp.Attributes() {
			v := a.Value.Emit()
			attrs[string(a.Key)] = v
			if strings.Contains(v, phone[3:]) || strings.Contains(v, code) {
				t.Errorf("span %d: %s=%q quotes the number or the code", i, a.Key, v)
			}
		}
		if sp.Name() != "sms.send" || attrs["otpgate.sms.provider"] != "orange" || attrs["otpgate.sms.calling_code"] != "33" || attrs["otpgate.sms.outcome"] != want {
			t.Errorf("span %d: %s %v, want sms.send by orange to 33, %s", i, sp.Name(), attrs, want)
		}
		if (sp.Status().Code == codes.Error) != (want != "sent") {
			t.Errorf("span %d: status %v", i, sp.Status())
		}
	}
}
