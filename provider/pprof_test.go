package provider_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/provider"
)

// admin.pprof serves Go's profiles on the admin listener only, only when
// asked, and only with the admin token.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	const token = "pprof-admin-token-0123456789abcdef0123456789"
	get := func(t *testing.T, h http.Handler, path, bearer string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		h.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		return rec.Code, string(body)
	}
	off := newEnv(t, "memory", withOptions(func(o *provider.Options) { o.AdminToken = token }))
	if code, _ := get(t, off.P.AdminHandler(), "/debug/pprof/", token); code != http.StatusNotFound {
		t.Errorf("pprof off: /debug/pprof/ answered %d, want 404", code)
	}

	on := newEnv(t, "memory", withOptions(func(o *provider.Options) { o.Pprof, o.AdminToken = true, token }))
	for path, want := range map[string]string{
		"/debug/pprof/":                  "Types of profiles available",
		"/debug/pprof/heap?debug=1":      "heap profile",
		"/debug/pprof/goroutine?debug=1": "goroutine profile",
		"/debug/pprof/cmdline":           "provider.test",
	} {
		if code, body := get(t, on.P.AdminHandler(), path, token); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("pprof on: %s answered %d %.80q, want 200 with %q", path, code, body, want)
		}
		for _, bearer := range []string{"", "wrong-token-0123456789abcdef0123456789abcd"} {
			if code, _ := get(t, on.P.AdminHandler(), path, bearer); code != http.StatusUnauthorized {
				t.Errorf("pprof on: %s with token %q answered %d, want 401", path, bearer, code)
			}
		}
	}
	if code, _ := get(t, on.P.Handler(), "/debug/pprof/", token); code != http.StatusNotFound {
		t.Errorf("pprof on: the public listener answered %d for /debug/pprof/, want 404", code)
	}
}
