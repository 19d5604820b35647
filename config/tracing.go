package config

import (
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
)

// TracingConfig is the tracing section: OpenTelemetry traces of the public
// listener's requests, the store calls and the SMS sends they make,
// exported over OTLP/HTTP. Off by default: no exporter exists then.
type TracingConfig struct {
	// Enabled turns tracing on.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the OTLP/HTTP collector's base URL, e.g.
	// "http://otel-collector:4318"; spans go to its /v1/traces. https uses
	// TLS (the system's roots, or OTEL_EXPORTER_OTLP_CERTIFICATE). Empty
	// leaves it to the standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
	// OTEL_EXPORTER_OTLP_ENDPOINT variables.
	Endpoint string `yaml:"endpoint"`
	// Headers are sent with every export: a vendor's API key, for example.
	// Their values are secrets: never printed.
	Headers map[string]string `yaml:"headers"`
	// HeadersFile names a file of more headers, one "Name: value" per line,
	// so that the secret ones need not be in this file.
	HeadersFile string `yaml:"headers_file"`
	// SampleRatio is the share of traces started here that are recorded,
	// 0 to 1. A request whose W3C traceparent comes from one of
	// http.trusted_proxies follows its parent's decision whatever the
	// ratio; from anyone else it starts a trace here, sampled by the ratio.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name resource attribute of every span.
	ServiceName string `yaml:"service_name"`
}

func tracingDefaults() TracingConfig {
	// Every trace: otpgate's traffic is small (each login costs an SMS),
	// and whoever turns tracing on wants to see their requests; a
	// collector's tail sampling cuts volume better than a blind ratio.
	return TracingConfig{SampleRatio: 1, ServiceName: "otpgate"}
}

// readHeadersFile adds the headers of t.HeadersFile to t.Headers. Problems
// go to errs; a header value is never quoted.
func readHeadersFile(t *TracingConfig, errs *Errors) {
	if t.HeadersFile == "" {
		return
	}
	data, err := os.ReadFile(t.HeadersFile)
	if err != nil {
		errs.add("tracing.headers_file", "names a file that cannot be read: %v", err)
		return
	}
	headers := maps.Clone(t.Headers)
	if headers == nil {
		headers = map[string]string{}
	}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok || name == "":
			errs.add("tracing.headers_file", "line %d must be 'Name: value'", i+1)
		case hasHeader(headers, name):
			errs.add("tracing.headers_file", "line %d sets header '%s', which is already set", i+1, name)
		default:
			headers[name] = value
		}
	}
	t.Headers = headers
}

// hasHeader reports whether headers has name, in any case.
func hasHeader(headers map[string]string, name string) bool {
	for k := range headers {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func validateTracing(c Config, _ bool, errs *Errors) {
	t := c.Tracing
	if t.Endpoint != "" {
		u, err := url.Parse(t.Endpoint)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			errs.add("tracing.endpoint", "must be an http or https URL like 'http://otel-collector:4318', got '%s'", t.Endpoint)
		case u.User != nil:
			errs.add("tracing.endpoint", "must not contain a user name or password: put credentials in 'headers'") // do not echo it
		case u.RawQuery != "" || u.Fragment != "":
			errs.add("tracing.endpoint", "must not have a query or a fragment, got '%s'", t.Endpoint)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.Headers)) {
		if !validHeaderName(name) {
			errs.add("tracing.headers", "has '%s', which is not a valid header name", name)
		} else if strings.ContainsAny(t.Headers[name], "\r\n\x00") {
			errs.add("tracing.headers", "has a value for '%s' that contains a line break", name) // the value is a secret
		}
	}
	if !(t.SampleRatio >= 0 && t.SampleRatio <= 1) { // NaN too: '.nan' and 'NaN' parse as numbers
		errs.add("tracing.sample_ratio", "must be between 0 and 1, got '%v'", t.SampleRatio)
	}
	if strings.TrimSpace(t.ServiceName) == "" {
		errs.add("tracing.service_name", "is required, e.g. 'otpgate'")
	}
}

// validHeaderName reports whether name is an HTTP field name (RFC 9110 token).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r >= 0x7f || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// redactHeaders returns headers with every value replaced: they are credentials.
func redactHeaders(headers map[string]string) map[string]string {
	if headers == nil {
		return nil
	}
	out := make(map[string]string, len(headers))
	for k, v := range headers {
		if v != "" {
			v = "REDACTED"
		}
		out[k] = v
	}
	return out
}
