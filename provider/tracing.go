package provider

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TracerName names otpgate's tracer (the instrumentation scope of its spans).
const TracerName = "github.com/otpgate/otpgate"

// TracingOptions configure NewTracing; they are the tracing section of the
// configuration.
type TracingOptions struct {
	// Endpoint is the OTLP/HTTP collector's base URL
	// ("http://otel-collector:4318"); spans are posted to its /v1/traces.
	// Empty leaves the endpoint to the exporter's standard environment
	// variables (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT).
	Endpoint string
	// Headers are sent with every export; empty leaves them to
	// OTEL_EXPORTER_OTLP_HEADERS.
	Headers map[string]string
	// SampleRatio is the share of the traces started here that are
	// recorded. Only a request from a trusted proxy (Options.TrustedProxies)
	// continues an incoming W3C traceparent and follows its parent's
	// decision; every other request starts a trace of its own.
	SampleRatio float64
	// ServiceName and ServiceVersion describe this process in every span
	// (service.name, service.version).
	ServiceName    string
	ServiceVersion string
}

// Tracing is an OpenTelemetry tracer provider exporting spans over
// OTLP/HTTP (protobuf) in batches. Nothing is global: serve hands its
// Tracer to the provider (Options.Tracer), the store decorator and the SMS
// senders.
type Tracing struct {
	tp *sdktrace.TracerProvider
}

// NewTracing builds the exporter and the tracer provider. It makes no
// network call: the first batch is the first contact with the collector,
// and an unreachable collector costs dropped spans, never a request.
func NewTracing(ctx context.Context, o TracingOptions) (*Tracing, error) {
	var opts []otlptracehttp.Option
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("tracing: endpoint %q is not an absolute URL", o.Endpoint)
		}
		// The base URL, like OTEL_EXPORTER_OTLP_ENDPOINT: the signal's path
		// is appended (WithEndpointURL alone would post to the root).
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
	}
	if len(o.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(o.Headers))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(
		semconv.ServiceName(o.ServiceName),
		semconv.ServiceVersion(o.ServiceVersion),
	))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
	)
	return &Tracing{tp: tp}, nil
}

// Tracer returns otpgate's tracer.
func (t *Tracing) Tracer() trace.Tracer { return t.tp.Tracer(TracerName) }

// ForceFlush exports the spans ended so far.
func (t *Tracing) ForceFlush(ctx context.Context) error { return t.tp.ForceFlush(ctx) }

// Shutdown exports what is left and stops the exporter; ctx bounds how long
// it may take (a collector that does not answer must not hold the exit).
func (t *Tracing) Shutdown(ctx context.Context) error { return t.tp.Shutdown(ctx) }

// traceContext reads and writes W3C traceparent and tracestate headers.
var traceContext propagation.TraceContext

// traceRequest is the public listener's first middleware when
// Options.Tracer is set: each request runs in a server span named after its
// method and gin's route pattern ("POST /login/code"), never the raw path.
// The span records the standard HTTP attributes except the query, which can
// carry a login_hint with a phone number, the path of a request no route
// matched, which is whatever a client typed, and the client's address and
// user agent, which are personal data.
//
// An incoming traceparent is continued only from a trusted proxy (the
// gateway in front of otpgate). From anyone else it would let a client
// choose the sampling decision, recording every request it sends whatever
// sample_ratio says, and hand its tracestate on: the span starts a trace
// of its own, sampled by the ratio, and links to the caller's span, like
// otelhttp's WithPublicEndpoint.
func (p *Provider) traceRequest(c *gin.Context) {
	tracer := p.opts.Tracer
	r := c.Request
	ctx := r.Context()
	method, name := spanMethod(r.Method)
	route := c.FullPath()
	if route != "" {
		name += " " + route
	}
	scheme := "http"
	if r.TLS != nil || p.secure {
		scheme = "https" // behind a TLS-terminating proxy, as the issuer says
	}
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(method),
		semconv.URLScheme(scheme),
		semconv.ServerAddress(p.issuer.Hostname()),
		semconv.NetworkProtocolVersion(strconv.Itoa(r.ProtoMajor) + "." + strconv.Itoa(r.ProtoMinor)),
	}
	if route != "" {
		attrs = append(attrs, semconv.HTTPRoute(route), semconv.URLPath(r.URL.Path))
	}
	if method == "_OTHER" {
		attrs = append(attrs, semconv.HTTPRequestMethodOriginal(r.Method))
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...)}
	if remote := trace.SpanContextFromContext(traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))); remote.IsValid() {
		if p.fromTrustedProxy(c.RemoteIP()) {
			ctx = trace.ContextWithRemoteSpanContext(ctx, remote)
		} else {
			// The link keeps the ids, for finding the caller's trace, and
			// drops the tracestate, which is the caller's free text.
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: remote.WithTraceState(trace.TraceState{})}))
		}
	}
	ctx, span := tracer.Start(ctx, name, opts...)
	defer span.End()
	c.Request = r.WithContext(ctx)
	c.Next()
	status := c.Writer.Status()
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if size := c.Writer.Size(); size >= 0 {
		span.SetAttributes(semconv.HTTPResponseBodySize(size))
	}
	// A 4xx is the client's problem; only a 5xx makes a server span an error.
	if status >= 500 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, "")
	}
}

// fromTrustedProxy reports whether peer, the request's direct peer (gin's
// RemoteIP, never an address X-Forwarded-For claims), is one of
// Options.TrustedProxies.
func (p *Provider) fromTrustedProxy(peer string) bool {
	addr, err := netip.ParseAddr(peer)
	if err != nil {
		return false
	}
	addr = addr.Unmap() // an IPv4 client on a dual-stack socket
	for _, prefix := range p.proxies {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// spanMethod returns the http.request.method attribute and the span name's
// method: "_OTHER" and "HTTP" for a method otpgate does not know, since the
// method is client input.
func spanMethod(m string) (attr, name string) {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodOptions, http.MethodPatch, http.MethodConnect, http.MethodTrace:
		return m, m
	}
	return "_OTHER", "HTTP"
}
