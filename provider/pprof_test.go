package provider_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/provider"
)

// admin.pprof serves Go's profiles on the admin listener only, and only when
// asked.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	get := func(t *testing.T, h http.Handler, path string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(rec.Body)
		return rec.Code, string(body)
	}
	off := newEnv(t, "memory")
	if code, _ := get(t, off.P.AdminHandler(), "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof off: /debug/pprof/ answered %d, want 404", code)
	}

	on := newEnv(t, "memory", func(c *envConfig) { c.options = func(o *provider.Options) { o.Pprof = true } })
	for path, want := range map[string]string{
		"/debug/pprof/":                  "Types of profiles available",
		"/debug/pprof/heap?debug=1":      "heap profile",
		"/debug/pprof/goroutine?debug=1": "goroutine profile",
		"/debug/pprof/cmdline":           "",
	} {
		code, body := get(t, on.P.AdminHandler(), path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("pprof on: %s answered %d %.80q, want 200 with %q", path, code, body, want)
		}
	}
	if code, _ := get(t, on.P.Handler(), "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof on: the public listener answered %d for /debug/pprof/, want 404", code)
	}
}
