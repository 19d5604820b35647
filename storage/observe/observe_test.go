package observe_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
	"github.com/otpgate/otpgate/storage/observe"
	"github.com/otpgate/otpgate/storage/redis"
	"github.com/otpgate/otpgate/storage/redis/redistest"
	"github.com/otpgate/otpgate/storage/storagetest"
)

// recorder is an observe.Recorder keeping every call it is told.
type recorder struct {
	mu    sync.Mutex
	calls []string // "operation outcome"
}

func (r *recorder) StoreOperation(operation, outcome string, d time.Duration) {
	if d < 0 {
		panic("negative duration")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, operation+" "+outcome)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func newTracer() (trace.Tracer, *tracetest.SpanRecorder) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	return tp.Tracer("test"), spans
}

// The decorator keeps the whole storage contract, with a recorder and a
// tracer attached.
func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		tracer, _ := newTracer()
		s := observe.Wrap(memory.New(), observe.WithRecorder(&recorder{}), observe.WithTracer(tracer), observe.WithSystem("memory"))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Without options the decorator is still the store.
func TestConformanceBare(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s := observe.Wrap(memory.New())
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Every method of storage.Store reports itself under its own name: a method
// forwarded without observe, or under another method's name, fails here.
// Each is called with a cancelled context (so that no backend runs a
// callback) and zero arguments: the outcome is canceled, or error when the
// backend refuses the zero arguments first.
func TestEveryMethodReportsItsName(t *testing.T) {
	rec := &recorder{}
	tracer, spans := newTracer()
	s := observe.Wrap(memory.New(), observe.WithRecorder(rec), observe.WithTracer(tracer))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	st := reflect.TypeFor[storage.Store]()
	v := reflect.ValueOf(s)
	ctxType := reflect.TypeFor[context.Context]()
	called := 0
	for i := range st.NumMethod() {
		m := st.Method(i)
		if m.Name == "Close" {
			continue // last: it ends the store
		}
		args := make([]reflect.Value, m.Type.NumIn())
		for j := range args {
			if in := m.Type.In(j); in == ctxType {
				args[j] = reflect.ValueOf(ctx)
			} else {
				args[j] = reflect.Zero(in)
			}
		}
		v.MethodByName(m.Name).Call(args)
		called++
		got := rec.take()
		canceled, failed := []string{m.Name + " " + observe.OutcomeCanceled}, []string{m.Name + " " + observe.OutcomeError}
		if !slices.Equal(got, canceled) && !slices.Equal(got, failed) {
			t.Errorf("%s reported %q, want %q", m.Name, got, canceled)
		}
		ended := spans.Ended()
		if n := len(ended); n != called || ended[n-1].Name() != "store."+m.Name {
			t.Errorf("%s: last span %q of %d, want store.%s", m.Name, ended[n-1].Name(), n, m.Name)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); !slices.Equal(got, []string{"Close ok"}) {
		t.Errorf("Close reported %q", got)
	}
}

func TestOutcomesAndSpans(t *testing.T) {
	rec := &recorder{}
	tracer, spans := newTracer()
	mem := memory.New()
	s := observe.Wrap(mem, observe.WithRecorder(rec), observe.WithTracer(tracer), observe.WithSystem("memory"))
	ctx := t.Context()
	now := time.Now()

	const phone = "+33612345678"
	client := storage.Client{ID: "app", RedirectURIs: []string{"https://app.example.com/cb"}, CreatedAt: now, UpdatedAt: now}
	flow := storage.Flow{ID: "flow-1", Step: "phone", Phone: phone, ExpiresAt: now.Add(time.Hour)}
	challenge := storage.Challenge{ID: "ch-1", FlowID: flow.ID, Phone: phone, CodeHash: []byte("right"), MaxAttempts: 3, Sends: 1, LastSentAt: now, ExpiresAt: now.Add(time.Minute), CreatedAt: now}
	errNo := errors.New("the caller says no")

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateClient(ctx, client))
	_ = s.CreateClient(ctx, client)
	_, _ = s.GetClient(ctx, "nobody")
	must(s.CreateFlow(ctx, flow))
	_, err := s.UpdateFlow(ctx, flow.ID, func(storage.Flow) (storage.Flow, error) { return storage.Flow{}, errNo })
	if !errors.Is(err, errNo) {
		t.Fatalf("UpdateFlow: %v, want the update's error as is", err)
	}
	_, _ = s.UpdateFlow(ctx, "gone", func(f storage.Flow) (storage.Flow, error) { return f, nil })
	must(s.CreateChallenge(ctx, challenge))
	r, err := s.VerifyChallenge(ctx, challenge.ID, []byte("wrong"), now)
	must(err)
	if r.Outcome != storage.VerifyWrongCode {
		t.Fatalf("VerifyChallenge: %v", r.Outcome)
	}
	tok := storage.Token{Kind: storage.KindRefreshToken, Signature: "sig", RequestID: "req", Active: true, ExpiresAt: now.Add(time.Hour)}
	must(s.CreateToken(ctx, tok))
	must(s.DeactivateToken(ctx, tok.Kind, tok.Signature))
	_ = s.DeactivateToken(ctx, tok.Kind, tok.Signature)
	must(mem.Close())
	_, _ = s.GetFlow(ctx, flow.ID) // the backend is closed: a real failure

	want := []string{
		"CreateClient ok", "CreateClient exists", "GetClient not_found",
		"CreateFlow ok", "UpdateFlow aborted", "UpdateFlow not_found",
		"CreateChallenge ok", "VerifyChallenge ok",
		"CreateToken ok", "DeactivateToken ok", "DeactivateToken conflict",
		"GetFlow error",
	}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Errorf("recorded\n%q\nwant\n%q", got, want)
	}

	ended := spans.Ended()
	if len(ended) != len(want) {
		t.Fatalf("%d spans, want %d", len(ended), len(want))
	}
	for i, sp := range ended {
		op, outcome, _ := strings.Cut(want[i], " ")
		attrs := attrMap(sp.Attributes())
		if sp.Name() != "store."+op || attrs["db.operation.name"] != op || attrs["otpgate.store.outcome"] != outcome || attrs["db.system.name"] != "memory" {
			t.Errorf("span %d: %s %v, want store.%s with outcome %s", i, sp.Name(), attrs, op, outcome)
		}
		if sp.SpanKind() != trace.SpanKindInternal {
			t.Errorf("span %s: kind %v, want internal for the memory store", sp.Name(), sp.SpanKind())
		}
		// Only a real failure marks the span failed; not_found, exists,
		// conflict and aborted are answers.
		if wantErr := outcome == observe.OutcomeError; (sp.Status().Code == codes.Error) != wantErr {
			t.Errorf("span %s (%s): status %v", sp.Name(), outcome, sp.Status())
		}
		if outcome == observe.OutcomeError && attrs["error.type"] == "" {
			t.Errorf("span %s: no error.type", sp.Name())
		}
		for _, a := range sp.Attributes() {
			if v := a.Value.Emit(); strings.Contains(v, "612345678") || strings.Contains(v, "flow-1") || strings.Contains(v, "ch-1") || strings.Contains(v, "sig") {
				t.Errorf("span %s: attribute %s=%q quotes a record", sp.Name(), a.Key, v)
			}
		}
		if len(sp.Events()) != 0 {
			t.Errorf("span %s: events %v (an error event would carry the message)", sp.Name(), sp.Events())
		}
	}
	if got := attrMap(ended[7].Attributes())["otpgate.challenge.verify"]; got != "wrong_code" {
		t.Errorf("VerifyChallenge span: otpgate.challenge.verify = %q, want wrong_code", got)
	}
	if got := attrMap(ended[8].Attributes())["otpgate.token.kind"]; got != "refresh" {
		t.Errorf("CreateToken span: otpgate.token.kind = %q, want refresh", got)
	}
}

// A store call made inside a span is its child, so that a request's trace
// shows the store calls it made.
func TestSpanParent(t *testing.T) {
	tracer, spans := newTracer()
	s := observe.Wrap(memory.New(), observe.WithTracer(tracer))
	defer s.Close()
	ctx, parent := tracer.Start(t.Context(), "request")
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	parent.End()
	ended := spans.Ended()
	if len(ended) != 2 || ended[0].Parent().SpanID() != parent.SpanContext().SpanID() || ended[0].SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Fatalf("store span %v is not the child of the request span", ended[0].Parent())
	}
}

// On Redis the spans are client spans, and a backend that cannot be reached
// is an error, with the error's type and without its message.
func TestRedis(t *testing.T) {
	client, prefix := redistest.New(t)
	rec := &recorder{}
	tracer, spans := newTracer()
	s := observe.Wrap(redis.New(client, redis.WithPrefix(prefix)), observe.WithRecorder(rec), observe.WithTracer(tracer), observe.WithSystem("redis"))
	if _, err := s.GetClient(t.Context(), "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetClient: %v", err)
	}

	// Nothing listens on port 1.
	down := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer down.Close()
	broken := observe.Wrap(redis.New(down), observe.WithRecorder(rec), observe.WithTracer(tracer), observe.WithSystem("redis"))
	if err := broken.Ping(t.Context()); err == nil {
		t.Fatal("Ping on a closed port: no error")
	}

	if got, want := rec.take(), []string{"GetClient not_found", "Ping error"}; !slices.Equal(got, want) {
		t.Errorf("recorded %q, want %q", got, want)
	}
	ended := spans.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans", len(ended))
	}
	for _, sp := range ended {
		if sp.SpanKind() != trace.SpanKindClient || attrMap(sp.Attributes())["db.system.name"] != "redis" {
			t.Errorf("span %s: kind %v, attributes %v", sp.Name(), sp.SpanKind(), sp.Attributes())
		}
	}
	if ended[1].Status().Code != codes.Error || attrMap(ended[1].Attributes())["error.type"] == "" || strings.Contains(ended[1].Status().Description, "127.0.0.1") {
		t.Errorf("failed Ping span: status %v, attributes %v", ended[1].Status(), ended[1].Attributes())
	}
}

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, observe.OutcomeOK},
		{storage.ErrNotFound, observe.OutcomeNotFound},
		{errors.Join(errors.New("redis: get flow x"), storage.ErrAlreadyExists), observe.OutcomeExists},
		{storage.ErrConflict, observe.OutcomeConflict},
		{context.Canceled, observe.OutcomeCanceled},
		{context.DeadlineExceeded, observe.OutcomeError},
		{errors.New("connection refused"), observe.OutcomeError},
	} {
		if got := observe.Outcome(tc.err); got != tc.want {
			t.Errorf("Outcome(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func attrMap(attrs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, a := range attrs {
		m[string(a.Key)] = a.Value.Emit()
	}
	return m
}
