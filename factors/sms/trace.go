package sms

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/otpgate/otpgate/factors"
)

// Span attributes of the SMS spans. They name the provider, the country
// calling code and the result; never the number, the text or the code.
const (
	attrProvider    = attribute.Key("otpgate.sms.provider")
	attrCallingCode = attribute.Key("otpgate.sms.calling_code")
	attrOutcome     = attribute.Key("otpgate.sms.outcome") // "sent" or the Failure class
)

// Trace returns s running each send in a client span "sms.send" of t, child
// of the caller's span; t nil returns s. Setup.Open puts it around every
// provider of a Failover, so that a message a fallback delivers shows one
// span per provider tried.
func Trace(provider string, s Sender, t trace.Tracer) Sender {
	if t == nil {
		return s
	}
	return traced{provider: provider, next: s, t: t}
}

type traced struct {
	provider string
	next     Sender
	t        trace.Tracer
}

func (w traced) Send(ctx context.Context, msg Message) (string, error) {
	var id string
	err := TraceSend(ctx, w.t, w.provider, callingCode(msg.To), func(ctx context.Context) (err error) {
		id, err = w.next.Send(ctx, msg)
		return err
	})
	return id, err
}

// StartupCheck runs the wrapped sender's check, if it has one.
func (w traced) StartupCheck(ctx context.Context) error {
	if c, ok := w.next.(StartupChecker); ok {
		return c.StartupCheck(ctx)
	}
	return nil
}

// TraceSend runs send, which hands one message to provider, in a client
// span "sms.send" of t with the provider, the calling code (0: unknown) and
// the outcome; t nil only runs send. A failure marks the span failed with
// its Failure class, never its message, which may quote the provider's
// answer. Senders that are not a Sender (the Orange OTP factor) use it too.
func TraceSend(ctx context.Context, t trace.Tracer, provider string, callingCode int, send func(ctx context.Context) error) error {
	if t == nil {
		return send(ctx)
	}
	ctx, span := t.Start(ctx, "sms.send", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrProvider.String(provider)))
	defer span.End()
	if callingCode > 0 {
		span.SetAttributes(attrCallingCode.Int(callingCode))
	}
	err := send(ctx)
	endSpan(span, err)
	return err
}

// traceFailover runs the failover's send in a span "sms.failover", parent
// of the "sms.send" span of each provider it tries.
func (f *Failover) traceFailover(ctx context.Context, msg Message) (string, error) {
	ctx, span := f.tracer.Start(ctx, "sms.failover")
	defer span.End()
	if cc := callingCode(msg.To); cc > 0 {
		span.SetAttributes(attrCallingCode.Int(cc))
	}
	id, err := f.send(ctx, msg)
	endSpan(span, err)
	return id, err
}

func endSpan(span trace.Span, err error) {
	if err == nil {
		span.SetAttributes(attrOutcome.String("sent"))
		return
	}
	class := FailureOf(err).String()
	span.SetAttributes(attrOutcome.String(class), semconv.ErrorTypeKey.String(class))
	span.SetStatus(codes.Error, "message not accepted: "+class)
}

// callingCode is the country calling code of an E.164 number, 0 when it
// does not parse.
func callingCode(to string) int {
	if p, err := factors.ParsePhone(to, ""); err == nil {
		return p.CountryCode
	}
	return 0
}
