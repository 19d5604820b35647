package sms_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/sms"
)

// The number every test texts, and how it must appear in errors and logs.
const (
	testTo     = "+33612345678"
	testMasked = "+33 6 •• •• •• 78"
	testBody   = "123456 is your Example sign-in code. It expires in 5 minutes.\n\n@login.example.com #123456"
)

var testMsg = sms.Message{To: testTo, Body: testBody, Locale: "fr", ClientID: "shop"}

// behaviour is how a fake answers a message request once it has checked it.
type behaviour func(w http.ResponseWriter, r *http.Request)

// answer replies with status and a JSON body.
func answer(status int, body string) behaviour {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// slow never answers before the client gives up: a timeout after the request
// was written.
func slow(w http.ResponseWriter, r *http.Request) {
	// Only once the body is read does the server notice the client leaving.
	io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// drop closes the connection after reading the request, without an answer.
func drop(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// counting wraps a test server's handler to count requests and connections.
type counting struct {
	requests atomic.Int32
	conns    atomic.Int32
}

func (c *counting) server(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// stallingURL returns an https URL whose server accepts connections and never
// answers the TLS handshake: a request to it times out before it is written.
func stallingURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "https://" + ln.Addr().String()
}

// refusedURL returns a URL nothing listens on: connection refused.
func refusedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// wantFailure checks err's classification and that it leaks neither the
// number nor any of the secrets.
func wantFailure(t *testing.T, err error, want sms.Failure, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Send succeeded, want a %s failure", want)
	}
	if got := sms.FailureOf(err); got != want {
		t.Errorf("failure = %s, want %s: %v", got, want, err)
	}
	if sms.Retryable(err) != (want != sms.FailureUnknown) {
		t.Errorf("Retryable = %v for a %s failure", sms.Retryable(err), want)
	}
	noLeak(t, err.Error(), secrets...)
}

func noLeak(t *testing.T, s string, secrets ...string) {
	t.Helper()
	if strings.Contains(s, "612345678") {
		t.Errorf("%q contains the full number", s)
	}
	for _, secret := range secrets {
		if secret != "" && strings.Contains(s, secret) {
			t.Errorf("%q contains the secret %q", s, secret)
		}
	}
}

func quietDeps() sms.Deps {
	return sms.Deps{Logger: slog.New(slog.DiscardHandler)}
}

// wantQuick fails when fn takes much longer than d.
func wantQuick(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	start := time.Now()
	fn()
	if took := time.Since(start); took > d+2*time.Second {
		t.Errorf("took %s, want about %s", took, d)
	}
}

var errTest = errors.New("test")

// cancelled returns a context already cancelled.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
