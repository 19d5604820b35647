// Package observe owns the instrumented storage.Store: Wrap returns a Store
// that times every call of the backend it wraps, reports the operation, its
// outcome and its duration to a Recorder (provider.Metrics turns that into
// the otpgate_store_operation_duration_seconds histogram) and, given an
// OpenTelemetry tracer, runs the call in a span named "store.<Method>".
//
// Spans carry the operation, the backend, the outcome and a few enumerated
// values (token kind, verification outcome); never an id, key, phone number,
// hash, record or error message, which may hold any of those.
//
// observe imports storage and OpenTelemetry's API (never its SDK): it knows
// nothing of Prometheus, and never imports provider, factors or cmd.
package observe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/otpgate/otpgate/storage"
)

// Recorder is told the result of every store call.
type Recorder interface {
	// StoreOperation reports one call: the Store method's name
	// ("GetClient"), its outcome (one of the Outcome* values) and how long
	// it took.
	StoreOperation(operation, outcome string, d time.Duration)
}

// Outcomes of a store call. The sentinel errors of package storage are
// answers the contract promises, not failures: they have outcomes of their
// own, so that only OutcomeError says the backend is in trouble.
const (
	OutcomeOK       = "ok"
	OutcomeNotFound = "not_found" // storage.ErrNotFound
	OutcomeExists   = "exists"    // storage.ErrAlreadyExists
	OutcomeConflict = "conflict"  // storage.ErrConflict
	// OutcomeAborted: the caller's update function of UpdateClient,
	// UpdateFlow or UpdateKey returned an error, which the store passed on.
	OutcomeAborted  = "aborted"
	OutcomeCanceled = "canceled" // the caller's context was canceled (the client went away)
	OutcomeError    = "error"    // anything else: the backend failed, or a deadline passed
)

// Outcome classifies the error a store call returned. A passed deadline is
// OutcomeError, not OutcomeCanceled: it usually means the backend was too
// slow for the caller's budget.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, storage.ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, storage.ErrAlreadyExists):
		return OutcomeExists
	case errors.Is(err, storage.ErrConflict):
		return OutcomeConflict
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	}
	return OutcomeError
}

// Option configures Wrap.
type Option func(*store)

// WithRecorder reports every call to r; nil reports nothing.
func WithRecorder(r Recorder) Option { return func(s *store) { s.rec = r } }

// WithTracer runs every call that has a context in a span of t; nil (the
// default) starts no span and costs nothing.
func WithTracer(t trace.Tracer) Option { return func(s *store) { s.tracer = t } }

// WithSystem names the backend in the spans' db.system.name attribute
// ("redis", "memory"). A backend other than "memory" is a remote one: its
// spans are client spans.
func WithSystem(name string) Option { return func(s *store) { s.system = name } }

// Wrap returns s instrumented as the options say. Without options it only
// adds two clock reads per call.
func Wrap(s storage.Store, opts ...Option) storage.Store {
	w := &store{next: s, kind: trace.SpanKindInternal}
	for _, o := range opts {
		o(w)
	}
	if w.system != "" && w.system != "memory" {
		w.kind = trace.SpanKindClient
	}
	return w
}

// store implements every method explicitly rather than embedding
// storage.Store: an embedded interface would pass a method added to Store
// later straight through, untimed and untraced, without a compile error.
type store struct {
	next   storage.Store
	rec    Recorder
	tracer trace.Tracer
	system string
	kind   trace.SpanKind
}

var _ storage.Store = (*store)(nil)

// call is one store call being observed.
type call struct {
	s     *store
	op    string
	start time.Time
	span  trace.Span // nil without a tracer
}

// begin starts observing op; attr, when valid, is added to the span.
func (s *store) begin(ctx context.Context, op string, attr attribute.KeyValue) (context.Context, call) {
	c := call{s: s, op: op, start: time.Now()}
	if s.tracer != nil {
		attrs := make([]attribute.KeyValue, 0, 3)
		attrs = append(attrs, semconv.DBOperationName(op))
		if s.system != "" {
			attrs = append(attrs, semconv.DBSystemNameKey.String(s.system))
		}
		if attr.Valid() {
			attrs = append(attrs, attr)
		}
		ctx, c.span = s.tracer.Start(ctx, "store."+op, trace.WithSpanKind(s.kind), trace.WithAttributes(attrs...))
	}
	return ctx, c
}

// end reports the call with the outcome of err.
func (c call) end(err error) { c.endAs(Outcome(err), err) }

// endAs reports the call with the given outcome. The span gets the error's
// type, never its message: a message may quote an id or a key.
func (c call) endAs(outcome string, err error) {
	if c.s.rec != nil {
		c.s.rec.StoreOperation(c.op, outcome, time.Since(c.start))
	}
	if c.span == nil {
		return
	}
	c.span.SetAttributes(attribute.String("otpgate.store.outcome", outcome))
	if outcome == OutcomeError {
		c.span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		c.span.SetStatus(codes.Error, "store error")
	}
	c.span.End()
}

// set adds attributes to the span, if there is one. Callers build them only
// when c.tracing() says so.
func (c call) set(attrs ...attribute.KeyValue) { c.span.SetAttributes(attrs...) }

func (c call) tracing() bool { return c.span != nil && c.span.IsRecording() }

// errorType is the Go type of the innermost error err wraps, which names
// the failure ("*net.OpError") without quoting it.
func errorType(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return fmt.Sprintf("%T", err)
		}
		err = next
	}
}

// updated wraps a compare-and-swap update function so that an error it
// returns can be told apart from the store's own: its outcome is
// OutcomeAborted.
type updated struct{ err error }

func (u *updated) outcome(err error) string {
	if err != nil && u.err != nil && errors.Is(err, u.err) {
		return OutcomeAborted
	}
	return Outcome(err)
}

var noAttr attribute.KeyValue

func kindAttr(k storage.TokenKind) attribute.KeyValue {
	return attribute.String("otpgate.token.kind", string(k))
}

// ---------------------------------------------------------------------------
// ClientStore

func (s *store) CreateClient(ctx context.Context, c storage.Client) error {
	ctx, o := s.begin(ctx, "CreateClient", noAttr)
	err := s.next.CreateClient(ctx, c)
	o.end(err)
	return err
}

func (s *store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	ctx, o := s.begin(ctx, "GetClient", noAttr)
	c, err := s.next.GetClient(ctx, id)
	o.end(err)
	return c, err
}

func (s *store) ListClients(ctx context.Context, after string, limit int) ([]storage.Client, error) {
	ctx, o := s.begin(ctx, "ListClients", noAttr)
	list, err := s.next.ListClients(ctx, after, limit)
	o.end(err)
	return list, err
}

func (s *store) UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	ctx, o := s.begin(ctx, "UpdateClient", noAttr)
	var u updated
	c, err := s.next.UpdateClient(ctx, id, func(old storage.Client) (storage.Client, error) {
		c, err := update(old)
		u.err = err
		return c, err
	})
	o.endAs(u.outcome(err), err)
	return c, err
}

func (s *store) DeleteClient(ctx context.Context, id string) error {
	ctx, o := s.begin(ctx, "DeleteClient", noAttr)
	err := s.next.DeleteClient(ctx, id)
	o.end(err)
	return err
}

// ---------------------------------------------------------------------------
// TokenStore

func (s *store) CreateToken(ctx context.Context, t storage.Token) error {
	ctx, o := s.begin(ctx, "CreateToken", kindAttr(t.Kind))
	err := s.next.CreateToken(ctx, t)
	o.end(err)
	return err
}

func (s *store) GetToken(ctx context.Context, kind storage.TokenKind, signature string) (storage.Token, error) {
	ctx, o := s.begin(ctx, "GetToken", kindAttr(kind))
	t, err := s.next.GetToken(ctx, kind, signature)
	o.end(err)
	return t, err
}

func (s *store) DeleteToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	ctx, o := s.begin(ctx, "DeleteToken", kindAttr(kind))
	err := s.next.DeleteToken(ctx, kind, signature)
	o.end(err)
	return err
}

func (s *store) DeactivateToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	ctx, o := s.begin(ctx, "DeactivateToken", kindAttr(kind))
	err := s.next.DeactivateToken(ctx, kind, signature)
	o.end(err)
	return err
}

func (s *store) DeactivateTokensByRequest(ctx context.Context, kind storage.TokenKind, requestID string) error {
	ctx, o := s.begin(ctx, "DeactivateTokensByRequest", kindAttr(kind))
	err := s.next.DeactivateTokensByRequest(ctx, kind, requestID)
	o.end(err)
	return err
}

func (s *store) DeleteTokensByRequest(ctx context.Context, kind storage.TokenKind, requestID string) error {
	ctx, o := s.begin(ctx, "DeleteTokensByRequest", kindAttr(kind))
	err := s.next.DeleteTokensByRequest(ctx, kind, requestID)
	o.end(err)
	return err
}

// ---------------------------------------------------------------------------
// FlowStore

func (s *store) CreateFlow(ctx context.Context, f storage.Flow) error {
	ctx, o := s.begin(ctx, "CreateFlow", noAttr)
	err := s.next.CreateFlow(ctx, f)
	o.end(err)
	return err
}

func (s *store) GetFlow(ctx context.Context, id string) (storage.Flow, error) {
	ctx, o := s.begin(ctx, "GetFlow", noAttr)
	f, err := s.next.GetFlow(ctx, id)
	o.end(err)
	return f, err
}

func (s *store) UpdateFlow(ctx context.Context, id string, update func(storage.Flow) (storage.Flow, error)) (storage.Flow, error) {
	ctx, o := s.begin(ctx, "UpdateFlow", noAttr)
	var u updated
	f, err := s.next.UpdateFlow(ctx, id, func(old storage.Flow) (storage.Flow, error) {
		f, err := update(old)
		u.err = err
		return f, err
	})
	o.endAs(u.outcome(err), err)
	return f, err
}

func (s *store) ReplaceFlow(ctx context.Context, f storage.Flow) (storage.Flow, error) {
	ctx, o := s.begin(ctx, "ReplaceFlow", noAttr)
	f, err := s.next.ReplaceFlow(ctx, f)
	o.end(err)
	return f, err
}

func (s *store) DeleteFlow(ctx context.Context, id string) error {
	ctx, o := s.begin(ctx, "DeleteFlow", noAttr)
	err := s.next.DeleteFlow(ctx, id)
	o.end(err)
	return err
}

// ---------------------------------------------------------------------------
// ChallengeStore

func (s *store) CreateChallenge(ctx context.Context, c storage.Challenge) error {
	ctx, o := s.begin(ctx, "CreateChallenge", noAttr)
	err := s.next.CreateChallenge(ctx, c)
	o.end(err)
	return err
}

func (s *store) GetChallenge(ctx context.Context, id string) (storage.Challenge, error) {
	ctx, o := s.begin(ctx, "GetChallenge", noAttr)
	c, err := s.next.GetChallenge(ctx, id)
	o.end(err)
	return c, err
}

func (s *store) VerifyChallenge(ctx context.Context, id string, answerHash []byte, now time.Time) (storage.VerifyResult, error) {
	ctx, o := s.begin(ctx, "VerifyChallenge", noAttr)
	r, err := s.next.VerifyChallenge(ctx, id, answerHash, now)
	if err == nil && o.tracing() {
		o.set(attribute.String("otpgate.challenge.verify", r.Outcome.String()))
	}
	o.end(err)
	return r, err
}

func (s *store) CountAttempt(ctx context.Context, id string, now time.Time) (storage.VerifyResult, error) {
	ctx, o := s.begin(ctx, "CountAttempt", noAttr)
	r, err := s.next.CountAttempt(ctx, id, now)
	if err == nil && o.tracing() {
		o.set(attribute.String("otpgate.challenge.verify", r.Outcome.String()))
	}
	o.end(err)
	return r, err
}

func (s *store) ConsumeChallenge(ctx context.Context, id string) (storage.Challenge, error) {
	ctx, o := s.begin(ctx, "ConsumeChallenge", noAttr)
	c, err := s.next.ConsumeChallenge(ctx, id)
	o.end(err)
	return c, err
}

func (s *store) ResendChallenge(ctx context.Context, id string, r storage.Resend) (storage.ResendResult, error) {
	ctx, o := s.begin(ctx, "ResendChallenge", noAttr)
	res, err := s.next.ResendChallenge(ctx, id, r)
	if err == nil && o.tracing() {
		o.set(attribute.String("otpgate.challenge.resend", res.Outcome.String()),
			attribute.Bool("otpgate.challenge.keep_code", r.KeepCode))
	}
	o.end(err)
	return res, err
}

func (s *store) SetProviderRef(ctx context.Context, id string, send int, ref string) error {
	ctx, o := s.begin(ctx, "SetProviderRef", noAttr)
	err := s.next.SetProviderRef(ctx, id, send, ref)
	o.end(err)
	return err
}

func (s *store) DeleteChallenge(ctx context.Context, id string) error {
	ctx, o := s.begin(ctx, "DeleteChallenge", noAttr)
	err := s.next.DeleteChallenge(ctx, id)
	o.end(err)
	return err
}

// ---------------------------------------------------------------------------
// SessionStore

func (s *store) CreateBrowserSession(ctx context.Context, b storage.BrowserSession) error {
	ctx, o := s.begin(ctx, "CreateBrowserSession", noAttr)
	err := s.next.CreateBrowserSession(ctx, b)
	o.end(err)
	return err
}

func (s *store) GetBrowserSession(ctx context.Context, id string) (storage.BrowserSession, error) {
	ctx, o := s.begin(ctx, "GetBrowserSession", noAttr)
	b, err := s.next.GetBrowserSession(ctx, id)
	o.end(err)
	return b, err
}

func (s *store) DeleteBrowserSession(ctx context.Context, id string) error {
	ctx, o := s.begin(ctx, "DeleteBrowserSession", noAttr)
	err := s.next.DeleteBrowserSession(ctx, id)
	o.end(err)
	return err
}

// ---------------------------------------------------------------------------
// ConsentStore

func (s *store) SaveConsent(ctx context.Context, c storage.Consent) error {
	ctx, o := s.begin(ctx, "SaveConsent", noAttr)
	err := s.next.SaveConsent(ctx, c)
	o.end(err)
	return err
}

func (s *store) GetConsent(ctx context.Context, subject, clientID string) (storage.Consent, error) {
	ctx, o := s.begin(ctx, "GetConsent", noAttr)
	c, err := s.next.GetConsent(ctx, subject, clientID)
	o.end(err)
	return c, err
}

func (s *store) DeleteConsent(ctx context.Context, subject, clientID string) error {
	ctx, o := s.begin(ctx, "DeleteConsent", noAttr)
	err := s.next.DeleteConsent(ctx, subject, clientID)
	o.end(err)
	return err
}

// ---------------------------------------------------------------------------
// KeyStore

func (s *store) CreateKey(ctx context.Context, k storage.SigningKey) error {
	ctx, o := s.begin(ctx, "CreateKey", noAttr)
	err := s.next.CreateKey(ctx, k)
	o.end(err)
	return err
}

func (s *store) ListKeys(ctx context.Context) ([]storage.SigningKey, error) {
	ctx, o := s.begin(ctx, "ListKeys", noAttr)
	list, err := s.next.ListKeys(ctx)
	o.end(err)
	return list, err
}

func (s *store) UpdateKey(ctx context.Context, id string, update func(storage.SigningKey) (storage.SigningKey, error)) (storage.SigningKey, error) {
	ctx, o := s.begin(ctx, "UpdateKey", noAttr)
	var u updated
	k, err := s.next.UpdateKey(ctx, id, func(old storage.SigningKey) (storage.SigningKey, error) {
		k, err := update(old)
		u.err = err
		return k, err
	})
	o.endAs(u.outcome(err), err)
	return k, err
}

func (s *store) DeleteKey(ctx context.Context, id string) error {
	ctx, o := s.begin(ctx, "DeleteKey", noAttr)
	err := s.next.DeleteKey(ctx, id)
	o.end(err)
	return err
}

// ---------------------------------------------------------------------------
// OutboxStore

func (s *store) AppendOutbox(ctx context.Context, m storage.OutboxMessage, max int) error {
	ctx, o := s.begin(ctx, "AppendOutbox", noAttr)
	err := s.next.AppendOutbox(ctx, m, max)
	o.end(err)
	return err
}

func (s *store) ListOutbox(ctx context.Context, limit int) ([]storage.OutboxMessage, error) {
	ctx, o := s.begin(ctx, "ListOutbox", noAttr)
	list, err := s.next.ListOutbox(ctx, limit)
	o.end(err)
	return list, err
}

// ---------------------------------------------------------------------------
// RateLimiter and Counters

func (s *store) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	ctx, o := s.begin(ctx, "Allow", noAttr)
	allowed, retryAfter, err := s.next.Allow(ctx, key, limit, window)
	if err == nil && o.tracing() {
		o.set(attribute.Bool("otpgate.ratelimit.allowed", allowed))
	}
	o.end(err)
	return allowed, retryAfter, err
}

func (s *store) AllowEach(ctx context.Context, checks []storage.RateCheck) ([]storage.RateResult, error) {
	ctx, o := s.begin(ctx, "AllowEach", noAttr)
	res, err := s.next.AllowEach(ctx, checks)
	if err == nil && o.tracing() {
		refused := 0
		for _, r := range res {
			if !r.Allowed {
				refused++
			}
		}
		o.set(attribute.Int("otpgate.ratelimit.checks", len(checks)), attribute.Int("otpgate.ratelimit.refused", refused))
	}
	o.end(err)
	return res, err
}

func (s *store) AddCount(ctx context.Context, key string, delta int64, window time.Duration) (float64, error) {
	ctx, o := s.begin(ctx, "AddCount", noAttr)
	n, err := s.next.AddCount(ctx, key, delta, window)
	o.end(err)
	return n, err
}

func (s *store) AddCounts(ctx context.Context, changes []storage.CountChange) ([]float64, error) {
	ctx, o := s.begin(ctx, "AddCounts", noAttr)
	if o.tracing() {
		o.set(attribute.Int("otpgate.counters.changes", len(changes)))
	}
	n, err := s.next.AddCounts(ctx, changes)
	o.end(err)
	return n, err
}

func (s *store) SetLatch(ctx context.Context, key string, d time.Duration) error {
	ctx, o := s.begin(ctx, "SetLatch", noAttr)
	err := s.next.SetLatch(ctx, key, d)
	o.end(err)
	return err
}

func (s *store) Latch(ctx context.Context, key string) (time.Duration, error) {
	ctx, o := s.begin(ctx, "Latch", noAttr)
	d, err := s.next.Latch(ctx, key)
	o.end(err)
	return d, err
}

// ---------------------------------------------------------------------------
// Ping and Close

func (s *store) Ping(ctx context.Context) error {
	ctx, o := s.begin(ctx, "Ping", noAttr)
	err := s.next.Ping(ctx)
	o.end(err)
	return err
}

// Close is timed but not traced: it has no context, and a span of its own
// at shutdown would be a trace of one span.
func (s *store) Close() error {
	o := call{s: s, op: "Close", start: time.Now()}
	err := s.next.Close()
	o.end(err)
	return err
}
