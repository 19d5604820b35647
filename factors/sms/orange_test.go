package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/sms"
)

const (
	orangeClientID = "orange-app"
	orangeSecret   = "orange-secret-hunter2"
	orangeSender   = "tel:+33600000000"
	orangeSMSPath  = "/smsmessaging/v1/outbound/tel%3A%2B33600000000/requests"
)

// orangeFake speaks the Orange OAuth and SMS messaging contracts of
// ref/sms-apis.md, checking every request it gets.
type orangeFake struct {
	t         *testing.T
	url       string
	srv       *httptest.Server
	all       counting // every request and connection
	tokens    counting // token requests
	messages  counting // message requests
	expiresIn string   // raw JSON: "\"3600\"" or "3600"
	tokenWait time.Duration
	tokenFail behaviour // nil: issue a token

	mu      sync.Mutex
	anyText bool     // accept any message text (a real code), kept in texts
	texts   []string // message texts received
	issued  int
	valid   map[string]bool
	message behaviour // nil: 201 with the echo
}

func newOrangeFake(t *testing.T) *orangeFake {
	f := &orangeFake{t: t, expiresIn: `"3600"`, valid: map[string]bool{}}
	mux := http.NewServeMux()
	mux.Handle("/oauth/v3/token", http.HandlerFunc(f.token))
	mux.Handle("/smsmessaging/", http.HandlerFunc(f.sms))
	srv := f.all.server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/v3/token" {
			f.tokens.requests.Add(1)
		} else {
			f.messages.requests.Add(1)
		}
		mux.ServeHTTP(w, r)
	}))
	f.url, f.srv = srv.URL, srv
	return f
}

func (f *orangeFake) setMessage(b behaviour) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.message = b
}

// revoke makes every issued token invalid, as an expiry would.
func (f *orangeFake) revoke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.valid)
}

func (f *orangeFake) token(w http.ResponseWriter, r *http.Request) {
	t := f.t
	id, secret, ok := r.BasicAuth()
	if r.Method != http.MethodPost || !ok || id != orangeClientID || secret != orangeSecret ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Header.Get("Accept") != "application/json" {
		t.Errorf("token request: %s, basic auth %v %q, headers %v", r.Method, ok, id, r.Header)
		answer(401, `{"code":42,"message":"Expired credentials","description":"The requested service needs credentials, but the ones provided were invalid."}`)(w, r)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" || len(r.PostForm) != 1 {
		t.Errorf("token request form: %v %v", r.PostForm, err)
	}
	if f.tokenFail != nil {
		f.tokenFail(w, r)
		return
	}
	time.Sleep(f.tokenWait)
	f.mu.Lock()
	f.issued++
	tok := fmt.Sprintf("token-%d", f.issued)
	f.valid[tok] = true
	f.mu.Unlock()
	answer(200, `{"token_type":"Bearer","access_token":"`+tok+`","expires_in":`+f.expiresIn+`}`)(w, r)
}

func (f *orangeFake) sms(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if r.Method != http.MethodPost || r.RequestURI != orangeSMSPath ||
		r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
		t.Errorf("sms request: %s %s %v", r.Method, r.RequestURI, r.Header)
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	valid, behave := ok && f.valid[tok], f.message
	f.mu.Unlock()
	if !valid {
		answer(401, `{"code":42,"message":"Expired credentials","description":"The requested service needs credentials, but the ones provided were invalid."}`)(w, r)
		return
	}
	var body struct {
		Req struct {
			Address       string `json:"address"`
			SenderAddress string `json:"senderAddress"`
			SenderName    string `json:"senderName"`
			Text          struct {
				Message string `json:"message"`
			} `json:"outboundSMSTextMessage"`
		} `json:"outboundSMSMessageRequest"`
	}
	data, _ := io.ReadAll(r.Body)
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	err := dec.Decode(&body)
	f.mu.Lock()
	anyText := f.anyText
	f.texts = append(f.texts, body.Req.Text.Message)
	f.mu.Unlock()
	if err != nil || body.Req.Address != "tel:"+testTo || body.Req.SenderAddress != orangeSender ||
		body.Req.SenderName != "EXAMPLE" || (body.Req.Text.Message != testBody && !anyText) {
		t.Errorf("sms body %s: %v", data, err)
	}
	if behave != nil {
		behave(w, r)
		return
	}
	w.Header().Set("Location", "/smsmessaging/v1/outbound/tel%3A%2B33600000000/requests/abc123")
	answer(201, `{"outboundSMSMessageRequest":{"address":["tel:+33612345678"],"senderAddress":"tel:+33600000000","senderName":"EXAMPLE",`+
		`"outboundSMSTextMessage":{"message":"…"},"resourceURL":"https://api.orange.com/smsmessaging/v1/outbound/tel%3A%2B33600000000/requests/msg-42"}}`)(w, r)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func openOrange(t *testing.T, f *orangeFake, deps sms.Deps, timeout time.Duration) sms.Sender {
	t.Helper()
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	c := &sms.OrangeConfig{BaseURL: f.url, ClientID: orangeClientID, ClientSecret: orangeSecret,
		SenderAddress: "+33600000000", SenderName: "EXAMPLE", Timeout: timeout}
	s, err := c.Open(deps)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOrangeSends(t *testing.T) {
	for _, expiresIn := range []string{`"3600"`, `3600`} {
		t.Run("expires_in "+expiresIn, func(t *testing.T) {
			f := newOrangeFake(t)
			f.expiresIn = expiresIn
			clk := newClock()
			deps := quietDeps()
			deps.Now = clk.Now
			s := openOrange(t, f, deps, 0)
			for range 3 {
				id, err := s.Send(context.Background(), testMsg)
				if err != nil || id != "msg-42" {
					t.Fatalf("Send = %q, %v; want the id from resourceURL", id, err)
				}
			}
			if n := f.tokens.requests.Load(); n != 1 {
				t.Errorf("%d token requests for 3 sends, want 1 (cached)", n)
			}
			if n := f.all.conns.Load(); n != 1 {
				t.Errorf("%d connections for 4 requests, want 1 (keep-alive)", n)
			}
			// 56 minutes on, less than the early-refresh margin (5m) remains.
			clk.Advance(56 * time.Minute)
			if _, err := s.Send(context.Background(), testMsg); err != nil {
				t.Fatal(err)
			}
			if n := f.tokens.requests.Load(); n != 2 {
				t.Errorf("%d token requests, want 2: the token must be refreshed before it expires", n)
			}
		})
	}
}

func TestOrangeOneTokenRequestUnderConcurrency(t *testing.T) {
	f := newOrangeFake(t)
	f.tokenWait = 100 * time.Millisecond // every sender waits on the same refresh
	s := openOrange(t, f, quietDeps(), 0)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 100 {
		wg.Go(func() {
			if _, err := s.Send(context.Background(), testMsg); err != nil {
				failed.Add(1)
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.tokens.requests.Load(); n != 1 {
		t.Errorf("100 parallel sends made %d token requests, want exactly 1", n)
	}
	if n := f.messages.requests.Load(); n != 100 || failed.Load() != 0 {
		t.Errorf("%d message requests, %d failures", n, failed.Load())
	}
}

func TestOrangeRetriesOnceAfter401(t *testing.T) {
	f := newOrangeFake(t)
	s := openOrange(t, f, quietDeps(), 0)
	if _, err := s.Send(context.Background(), testMsg); err != nil {
		t.Fatal(err)
	}
	f.revoke() // the cached token stops working before its announced expiry
	if id, err := s.Send(context.Background(), testMsg); err != nil || id != "msg-42" {
		t.Fatalf("Send after revocation = %q, %v; want a refresh and a retry", id, err)
	}
	if tok, msgs := f.tokens.requests.Load(), f.messages.requests.Load(); tok != 2 || msgs != 3 {
		t.Errorf("%d token and %d message requests, want 2 and 3", tok, msgs)
	}

	// A 401 that persists with a fresh token: one retry only, then give up.
	f.setMessage(answer(401, `{"code":42,"message":"Expired credentials"}`))
	before := f.messages.requests.Load()
	_, err := s.Send(context.Background(), testMsg)
	wantFailure(t, err, sms.FailureUnavailable, orangeSecret)
	if n := f.messages.requests.Load() - before; n != 2 {
		t.Errorf("%d message requests for a persistent 401, want 2 (one retry)", n)
	}
}

func TestOrangeErrors(t *testing.T) {
	tests := []struct {
		name      string
		behave    behaviour
		failure   sms.Failure
		exception string
		messageID string
	}{
		{"invalid address", answer(400, `{"requestError":{"serviceException":{"messageId":"SVC0004","text":"No valid addresses provided in message part %1","variables":["tel:+33612345678"]}}}`), sms.FailureRejected, "serviceException", "SVC0004"},
		{"invalid input quoting the number", answer(400, `{"requestError":{"serviceException":{"messageId":"SVC0002","text":"Invalid input value for message part tel:+33612345678","variables":"address"}}}`), sms.FailureRejected, "serviceException", "SVC0002"},
		{"too long", answer(400, `{"requestError":{"serviceException":{"messageId":"SVC0280","text":"Message too long. Maximum length is %1 characters","variables":"160"}}}`), sms.FailureRejected, "serviceException", "SVC0280"},
		{"service error", answer(400, `{"requestError":{"serviceException":{"messageId":"SVC0001","text":"A service error occurred. Error code is %1","variables":"E503"}}}`), sms.FailureUnavailable, "serviceException", "SVC0001"},
		{"policy", answer(403, `{"requestError":{"policyException":{"messageId":"POL0001","text":"A policy error occurred. For example, rate limit error, authentication and authorization error","variables":""}}}`), sms.FailureRejected, "policyException", "POL0001"},
		{"too many", answer(403, `{"requestError":{"policyException":{"messageId":"POL0003","text":"Too many addresses specified in message part %1"}}}`), sms.FailureRejected, "policyException", "POL0003"},
		{"rate limited", answer(429, `{"code":53,"message":"Too many requests"}`), sms.FailureUnavailable, "", "53"},
		{"internal error", answer(500, `oops`), sms.FailureUnavailable, "", ""},
		{"unavailable", answer(503, `{"code":5,"message":"The service is temporarily unavailable"}`), sms.FailureUnavailable, "", "5"},
		{"gateway timeout", answer(504, ``), sms.FailureUnknown, "", ""},
		{"redirect", answer(303, ``), sms.FailureUnknown, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOrangeFake(t)
			f.setMessage(tt.behave)
			_, err := openOrange(t, f, quietDeps(), 0).Send(context.Background(), testMsg)
			wantFailure(t, err, tt.failure, orangeSecret, "token-1")
			var oe *sms.OrangeError
			if !errors.As(err, &oe) {
				t.Fatalf("error %v is not an *sms.OrangeError", err)
			}
			if oe.Exception != tt.exception || oe.MessageID != tt.messageID {
				t.Errorf("OrangeError = %+v, want %s %s", oe, tt.exception, tt.messageID)
			}
			if n := f.messages.requests.Load(); n != 1 {
				t.Errorf("%d message requests, want 1", n)
			}
		})
	}
}

func TestOrangeTransportFailures(t *testing.T) {
	t.Run("slow answer", func(t *testing.T) {
		f := newOrangeFake(t)
		f.setMessage(slow)
		s := openOrange(t, f, quietDeps(), 300*time.Millisecond)
		wantQuick(t, 300*time.Millisecond, func() {
			_, err := s.Send(context.Background(), testMsg)
			wantFailure(t, err, sms.FailureUnknown, orangeSecret)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want a deadline", err)
			}
		})
	})
	t.Run("dropped connection", func(t *testing.T) {
		f := newOrangeFake(t)
		f.setMessage(drop)
		_, err := openOrange(t, f, quietDeps(), 0).Send(context.Background(), testMsg)
		wantFailure(t, err, sms.FailureUnknown, orangeSecret)
		if n := f.messages.requests.Load(); n != 1 {
			t.Errorf("%d message requests, want 1: a POST must never be replayed", n)
		}
	})
	t.Run("server gone after the token", func(t *testing.T) {
		f := newOrangeFake(t)
		client := sms.NewHTTPClient()
		deps := quietDeps()
		deps.HTTPClient = func() *http.Client { return client }
		s := openOrange(t, f, deps, 0)
		if err := s.(sms.StartupChecker).StartupCheck(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Closing the fake leaves the address refusing connections. The idle
		// connection goes too: a request written to a connection the server
		// closed at that very moment is ambiguous (an EOF after writing is FailureUnknown).
		f.srv.Close()
		client.CloseIdleConnections()
		_, err := s.Send(context.Background(), testMsg)
		wantFailure(t, err, sms.FailureUnavailable, orangeSecret)
	})
	t.Run("caller gives up", func(t *testing.T) {
		f := newOrangeFake(t)
		_, err := openOrange(t, f, quietDeps(), 0).Send(cancelled(), testMsg)
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Errorf("Send with a cancelled context = %v", err)
		}
		if n := f.messages.requests.Load(); n != 0 {
			t.Errorf("%d message requests with a cancelled context", n)
		}
	})
}

func TestOrangeTokenFailures(t *testing.T) {
	tests := []struct {
		name   string
		behave behaviour
		want   string
	}{
		{"credentials refused", answer(401, `{"code":42,"message":"Expired credentials","description":"invalid"}`), "credentials refused"},
		{"bad request", answer(400, `{"error":"invalid_client"}`), "credentials refused"},
		{"down", answer(503, ``), "HTTP 503"},
		{"not JSON", answer(200, `<html>`), "unreadable answer"},
		{"dropped", drop, "no answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOrangeFake(t)
			f.tokenFail = tt.behave
			s := openOrange(t, f, quietDeps(), 0)
			err := s.(sms.StartupChecker).StartupCheck(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("StartupCheck = %v, want %q", err, tt.want)
			}
			_, err = s.Send(context.Background(), testMsg)
			// However the token request failed, no message left.
			wantFailure(t, err, sms.FailureUnavailable, orangeSecret)
			if n := f.messages.requests.Load(); n != 0 {
				t.Errorf("%d message requests without a token", n)
			}
		})
	}
}

func TestOrangeStartupCheck(t *testing.T) {
	f := newOrangeFake(t)
	s := openOrange(t, f, quietDeps(), 0)
	if err := s.(sms.StartupChecker).StartupCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), testMsg); err != nil {
		t.Fatal(err)
	}
	if n := f.tokens.requests.Load(); n != 1 {
		t.Errorf("%d token requests, want 1: the startup check's token is reused", n)
	}
}
