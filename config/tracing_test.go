package config

import (
	"maps"
	"math"
	"strings"
	"testing"
)

func TestTracingDefaults(t *testing.T) {
	for _, dev := range []bool{false, true} {
		tr := Defaults(dev).Tracing
		if tr.Enabled || tr.Endpoint != "" || len(tr.Headers) != 0 || tr.SampleRatio != 1 || tr.ServiceName != "otpgate" {
			t.Errorf("dev=%v: tracing defaults = %+v", dev, tr)
		}
	}
}

func TestTracingValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*TracingConfig)
		want []string
	}{
		{"defaults", func(*TracingConfig) {}, nil},
		{"on, collector", func(tr *TracingConfig) {
			tr.Enabled, tr.Endpoint, tr.SampleRatio = true, "http://otel-collector:4318", 0.25
			tr.Headers = map[string]string{"x-honeycomb-team": "hunter2"}
		}, nil},
		{"https with a path", func(tr *TracingConfig) { tr.Endpoint = "https://otlp.example.com/otlp" }, nil},
		{"ratio too high", func(tr *TracingConfig) { tr.SampleRatio = 2 }, []string{
			"tracing: option 'sample_ratio' must be between 0 and 1, got '2'",
		}},
		{"ratio not a number", func(tr *TracingConfig) { tr.SampleRatio = math.NaN() }, []string{
			"tracing: option 'sample_ratio' must be between 0 and 1, got 'NaN'",
		}},
		{"everything wrong", func(tr *TracingConfig) {
			tr.Endpoint = "otel-collector:4318"
			tr.Headers = map[string]string{"bad name": "v", "Authorization": "Basic hunter2\r\nX: y"}
			tr.SampleRatio = -0.5
			tr.ServiceName = " "
		}, []string{
			"tracing: option 'endpoint' must be an http or https URL like 'http://otel-collector:4318', got 'otel-collector:4318'",
			"tracing: option 'headers' has a value for 'Authorization' that contains a line break",
			"tracing: option 'headers' has 'bad name', which is not a valid header name",
			"tracing: option 'sample_ratio' must be between 0 and 1, got '-0.5'",
			"tracing: option 'service_name' is required, e.g. 'otpgate'",
		}},
		{"credentials in the URL are not quoted", func(tr *TracingConfig) { tr.Endpoint = "https://user:hunter2@otlp.example.com" }, []string{
			"tracing: option 'endpoint' must not contain a user name or password: put credentials in 'headers'",
		}},
		{"query", func(tr *TracingConfig) { tr.Endpoint = "http://collector:4318/?x=1" }, []string{
			"tracing: option 'endpoint' must not have a query or a fragment, got 'http://collector:4318/?x=1'",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := prod()
			tc.edit(&c.Tracing)
			err := c.Validate(false)
			wantProblems(t, err, tc.want...)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a problem quotes a secret: %v", err)
			}
		})
	}
}

func TestTracingLoad(t *testing.T) {
	headers := writeFile(t, "headers", "# vendor keys\nx-api-key: hunter2\n\nx-dataset : otpgate \n")
	file := writeFile(t, "otpgate.yaml", "tracing:\n  enabled: true\n  endpoint: http://collector:4318\n  headers:\n    x-team: blue\n  headers_file: "+headers+"\n")
	c, err := Load(file, true, env(map[string]string{"OTPGATE_TRACING_SAMPLE_RATIO": "0.1", "OTPGATE_TRACING_SERVICE_NAME": "otpgate-eu"}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"x-team": "blue", "x-api-key": "hunter2", "x-dataset": "otpgate"}
	if tr := c.Tracing; !tr.Enabled || tr.Endpoint != "http://collector:4318" || tr.SampleRatio != 0.1 || tr.ServiceName != "otpgate-eu" || !maps.Equal(tr.Headers, want) {
		t.Errorf("tracing = %+v", tr)
	}
	if s := c.String(); strings.Contains(s, "hunter2") || strings.Contains(s, "blue") || !strings.Contains(s, "x-api-key: REDACTED") {
		t.Errorf("String() shows a header value:\n%s", s)
	}
	if c.Tracing.Headers["x-api-key"] != "hunter2" {
		t.Errorf("Redacted changed the original")
	}

	for _, tc := range []struct {
		name, yaml, headers string
		env                 map[string]string
		want                []string
	}{
		{name: "not a number", env: map[string]string{"OTPGATE_TRACING_SAMPLE_RATIO": "10%"}, want: []string{
			"tracing: option 'sample_ratio' (from OTPGATE_TRACING_SAMPLE_RATIO) must be a number like '0.5', got '10%'",
		}},
		{name: "NaN", env: map[string]string{"OTPGATE_TRACING_SAMPLE_RATIO": "NaN"}, want: []string{
			"tracing: option 'sample_ratio' must be between 0 and 1, got 'NaN'",
		}},
		{name: "NaN in the file", yaml: "tracing:\n  sample_ratio: .nan\n", want: []string{
			"tracing: option 'sample_ratio' must be between 0 and 1, got 'NaN'",
		}},
		{name: "infinite", env: map[string]string{"OTPGATE_TRACING_SAMPLE_RATIO": "-Inf"}, want: []string{
			"tracing: option 'sample_ratio' must be between 0 and 1, got '-Inf'",
		}},
		{name: "not a number in the file", yaml: "tracing:\n  sample_ratio: half\n", want: []string{
			"tracing: option 'sample_ratio' must be a number like '0.5', got 'half' (line 2)",
		}},
		{name: "bad headers file", yaml: "tracing:\n  headers:\n    X-Key: a\n", headers: "x-key: hunter2\nno colon here\n", want: []string{
			"tracing: option 'headers_file' line 1 sets header 'x-key', which is already set",
			"tracing: option 'headers_file' line 2 must be 'Name: value'",
		}},
		{name: "missing headers file", env: map[string]string{"OTPGATE_TRACING_HEADERS_FILE": "/nonexistent/headers"}, want: []string{
			"tracing: option 'headers_file' names a file that cannot be read: open /nonexistent/headers: no such file or directory",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := tc.yaml
			if tc.headers != "" {
				yaml += "  headers_file: " + writeFile(t, "headers", tc.headers) + "\n"
			}
			path := ""
			if yaml != "" {
				path = writeFile(t, "otpgate.yaml", yaml)
			}
			_, err := Load(path, true, env(tc.env))
			wantProblems(t, err, tc.want...)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a problem quotes a secret: %v", err)
			}
		})
	}
}
