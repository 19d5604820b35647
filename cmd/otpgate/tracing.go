package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/otpgate/otpgate/config"
	"github.com/otpgate/otpgate/provider"
)

// tracingShutdownTimeout bounds the flush of the last spans at exit: a
// collector that does not answer must not hold the stop.
const tracingShutdownTimeout = 5 * time.Second

// openTracing builds the tracer the tracing section asks for. Off, it
// returns a nil tracer, which every consumer reads as "no spans": no
// exporter exists and nothing is wrapped. stop flushes the spans left.
func openTracing(ctx context.Context, c config.TracingConfig, log *slog.Logger) (tracer trace.Tracer, stop func(), err error) {
	if !c.Enabled {
		return nil, func() {}, nil
	}
	t, err := provider.NewTracing(ctx, provider.TracingOptions{
		Endpoint:       c.Endpoint,
		Headers:        c.Headers,
		SampleRatio:    c.SampleRatio,
		ServiceName:    c.ServiceName,
		ServiceVersion: version,
	})
	if err != nil {
		return nil, nil, err
	}
	// The SDK reports failed exports to a process-wide handler that prints
	// with the standard library's logger; this process logs with slog.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: export failed", "err", err)
	}))
	log.Info("tracing: exporting spans over OTLP/HTTP", "endpoint", exportEndpoint(c.Endpoint, os.Getenv), "sample_ratio", c.SampleRatio, "service_name", c.ServiceName)
	return t.Tracer(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
		defer cancel()
		if err := t.Shutdown(ctx); err != nil {
			log.Warn("tracing: spans lost at shutdown", "err", err)
		}
	}, nil
}

// exportEndpoint says where the exporter sends spans, for the start-up log:
// the configured URL (validated to hold no credentials), else the name of
// the variable the exporter reads, the per-signal one first as it does,
// else its default. A variable's value is not logged: a URL there may carry
// a password.
func exportEndpoint(configured string, getenv func(string) string) string {
	if configured != "" {
		return configured
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if strings.TrimSpace(getenv(name)) != "" { // the exporter ignores a blank one
			return name
		}
	}
	return "https://localhost:4318 (the exporter's default)"
}
