package sms_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/sms"
)

const (
	twilioSID     = "AC0123456789abcdef0123456789abcdef"
	twilioToken   = "twilio-token-hunter2"
	twilioService = "MG0123456789abcdef0123456789abcdef"
	twilioPath    = "/2010-04-01/Accounts/" + twilioSID + "/Messages.json"
)

// twilioFake speaks Twilio's Messages.json contract, checking every request.
type twilioFake struct {
	t        *testing.T
	url      string
	messages counting
	mu       sync.Mutex
	behave   behaviour // nil: 201
	wantFrom url.Values
	anyText  bool     // accept any Body (a real code), kept in texts
	texts    []string // Body of each message
}

func newTwilioFake(t *testing.T) *twilioFake {
	f := &twilioFake{t: t, wantFrom: url.Values{"From": {"+15005550006"}}}
	srv := f.messages.server(t, http.HandlerFunc(f.serve))
	f.url = srv.URL
	return f
}

func (f *twilioFake) set(b behaviour) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.behave = b
}

func (f *twilioFake) serve(w http.ResponseWriter, r *http.Request) {
	t := f.t
	user, pass, ok := r.BasicAuth()
	if !ok || user != twilioSID || pass != twilioToken {
		answer(401, `{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}`)(w, r)
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/2010-04-01/Accounts/"+twilioSID+".json" {
		answer(200, `{"sid":"`+twilioSID+`","status":"active"}`)(w, r)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != twilioPath ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Header.Get("Accept") != "application/json" {
		t.Errorf("twilio request: %s %s %v", r.Method, r.URL.Path, r.Header)
	}
	if err := r.ParseForm(); err != nil {
		t.Error(err)
	}
	f.mu.Lock()
	f.texts = append(f.texts, r.PostForm.Get("Body"))
	anyText := f.anyText
	f.mu.Unlock()
	want := url.Values{"To": {testTo}, "Body": {testBody}}
	if anyText {
		want.Set("Body", r.PostForm.Get("Body"))
	}
	for k, v := range f.wantFrom {
		want[k] = v
	}
	if r.PostForm.Encode() != want.Encode() {
		t.Errorf("twilio form = %v, want %v", r.PostForm, want)
	}
	f.mu.Lock()
	b := f.behave
	f.mu.Unlock()
	if b == nil {
		b = answer(201, `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","to":"+33612345678"}`)
	}
	b(w, r)
}

func openTwilio(t *testing.T, base string, timeout time.Duration, change func(*sms.TwilioConfig)) sms.Sender {
	t.Helper()
	c := &sms.TwilioConfig{BaseURL: base, AccountSID: twilioSID, AuthToken: twilioToken, From: "+15005550006", Timeout: timeout}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if change != nil {
		change(c)
	}
	s, err := c.Open(quietDeps())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTwilioSends(t *testing.T) {
	f := newTwilioFake(t)
	s := openTwilio(t, f.url, 0, nil)
	for range 3 {
		if id, err := s.Send(context.Background(), testMsg); err != nil || id != "SM0123456789abcdef0123456789abcdef" {
			t.Fatalf("Send = %q, %v", id, err)
		}
	}
	if n := f.messages.conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 sends, want 1 (keep-alive)", n)
	}
	if err := s.(sms.StartupChecker).StartupCheck(context.Background()); err != nil {
		t.Errorf("StartupCheck: %v", err)
	}

	f.wantFrom = url.Values{"MessagingServiceSid": {twilioService}}
	s = openTwilio(t, f.url, 0, func(c *sms.TwilioConfig) { c.From, c.MessagingServiceSID = "", twilioService })
	if _, err := s.Send(context.Background(), testMsg); err != nil {
		t.Fatalf("Send with a messaging service: %v", err)
	}
}

func TestTwilioErrors(t *testing.T) {
	tests := []struct {
		name    string
		behave  behaviour
		failure sms.Failure
		code    int
	}{
		{"invalid number", answer(400, `{"code":21211,"message":"The 'To' number +33612345678 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`), sms.FailureRejected, 21211},
		{"not a mobile", answer(400, `{"code":21614,"message":"'To' number is not a valid mobile number","status":400}`), sms.FailureRejected, 21614},
		{"region not enabled", answer(400, `{"code":21408,"message":"Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +33612345678.","status":400}`), sms.FailureRejected, 21408},
		{"bad From", answer(400, `{"code":21212,"message":"The 'From' number +15005550001 is not a valid phone number, shortcode, or alphanumeric sender ID.","status":400}`), sms.FailureUnavailable, 21212},
		{"credentials", answer(401, `{"code":20003,"message":"Authenticate","status":401}`), sms.FailureUnavailable, 20003},
		{"unknown account", answer(404, `{"code":20404,"message":"The requested resource was not found","status":404}`), sms.FailureUnavailable, 20404},
		{"too many requests", answer(429, `{"code":20429,"message":"Too Many Requests","status":429}`), sms.FailureUnavailable, 20429},
		{"server error", answer(500, `{"code":20500,"message":"Internal Server Error","status":500}`), sms.FailureUnavailable, 20500},
		{"service unavailable", answer(503, ``), sms.FailureUnavailable, 0},
		{"gateway timeout", answer(504, ``), sms.FailureUnknown, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTwilioFake(t)
			f.set(tt.behave)
			_, err := openTwilio(t, f.url, 0, nil).Send(context.Background(), testMsg)
			wantFailure(t, err, tt.failure, twilioToken)
			var te *sms.TwilioError
			if !errors.As(err, &te) || te.Code != tt.code {
				t.Errorf("error %v: want an *sms.TwilioError with code %d", err, tt.code)
			}
			if n := f.messages.requests.Load(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestTwilioStartupCheckRefused(t *testing.T) {
	f := newTwilioFake(t)
	s := openTwilio(t, f.url, 0, func(c *sms.TwilioConfig) { c.AuthToken = "wrong-hunter3" })
	err := s.(sms.StartupChecker).StartupCheck(context.Background())
	if err == nil {
		t.Fatal("StartupCheck with a wrong token succeeded")
	}
	noLeak(t, err.Error(), "wrong-hunter3")
}

// TestTransportFailures runs every sender against the failures of the
// network, checking what each proves about the message.
func TestTransportFailures(t *testing.T) {
	type open func(t *testing.T, base string, timeout time.Duration) sms.Sender
	senders := map[string]open{
		"twilio": func(t *testing.T, base string, timeout time.Duration) sms.Sender {
			return openTwilio(t, base, timeout, nil)
		},
		"webhook": func(t *testing.T, base string, timeout time.Duration) sms.Sender {
			return openWebhook(t, base+"/hooks/sms", timeout)
		},
	}
	const timeout = 300 * time.Millisecond
	for name, open := range senders {
		t.Run(name, func(t *testing.T) {
			t.Run("refused", func(t *testing.T) {
				_, err := open(t, refusedURL(t), timeout).Send(context.Background(), testMsg)
				wantFailure(t, err, sms.FailureUnavailable, twilioToken)
			})
			t.Run("timeout before the request was written", func(t *testing.T) {
				s := open(t, stallingURL(t), timeout)
				wantQuick(t, timeout, func() {
					_, err := s.Send(context.Background(), testMsg)
					wantFailure(t, err, sms.FailureUnavailable, twilioToken)
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("err = %v, want a deadline", err)
					}
				})
			})
			t.Run("DNS", func(t *testing.T) {
				_, err := open(t, "http://otpgate-fake.invalid", timeout).Send(context.Background(), testMsg)
				wantFailure(t, err, sms.FailureUnavailable, twilioToken)
			})
			for _, tt := range []struct {
				name    string
				behave  behaviour
				failure sms.Failure
			}{
				{"slow answer", slow, sms.FailureUnknown},
				{"dropped connection", drop, sms.FailureUnknown},
				{"redirect", answer(303, ""), sms.FailureUnknown},
			} {
				t.Run(tt.name, func(t *testing.T) {
					var c counting
					srv := c.server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if r.Method == http.MethodPost {
							tt.behave(w, r)
						}
					}))
					s := open(t, srv.URL, timeout)
					wantQuick(t, timeout, func() {
						_, err := s.Send(context.Background(), testMsg)
						wantFailure(t, err, tt.failure, twilioToken)
					})
					if n := c.requests.Load(); n != 1 {
						t.Errorf("%d requests, want 1: a POST must never be replayed", n)
					}
				})
			}
			t.Run("caller gives up", func(t *testing.T) {
				var c counting
				srv := c.server(t, http.HandlerFunc(slow))
				_, err := open(t, srv.URL, time.Minute).Send(cancelled(), testMsg)
				if !errors.Is(err, context.Canceled) || c.requests.Load() != 0 {
					t.Errorf("Send with a cancelled context = %v after %d requests", err, c.requests.Load())
				}
			})
		})
	}
}
