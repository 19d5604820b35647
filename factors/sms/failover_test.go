package sms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/sms"
)

// scripted is an in-process sender whose answer a test sets.
type scripted struct {
	mu    sync.Mutex
	err   error
	calls int
	block chan struct{} // when set, Send waits for it to close
	check error         // StartupCheck's answer
}

func (s *scripted) Send(ctx context.Context, msg sms.Message) (string, error) {
	s.mu.Lock()
	s.calls++
	err, block := s.err, s.block
	s.mu.Unlock()
	if block != nil {
		<-block
	}
	if err != nil {
		return "", err
	}
	return "id", nil
}

func (s *scripted) StartupCheck(context.Context) error { return s.check }

func (s *scripted) set(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

var (
	errDown     = &sms.SendError{Failure: sms.FailureUnavailable, Err: errors.New("down")}
	errRejected = &sms.SendError{Failure: sms.FailureRejected, Err: errors.New("invalid number")}
	errMaybe    = &sms.SendError{Failure: sms.FailureUnknown, Err: errors.New("no answer after writing")}
)

func failover(t *testing.T, opts sms.FailoverOptions, members ...sms.Member) *sms.Failover {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f, err := sms.NewFailover(members, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFailoverOverHTTP puts a Twilio fake behind an unreachable or failing
// primary and counts what each fake received.
func TestFailoverOverHTTP(t *testing.T) {
	tests := []struct {
		name          string
		primary       behaviour // nil: nothing listens
		wantSecondary int32
		failure       sms.Failure // when the send fails
	}{
		{"primary refuses connections", nil, 1, 0},
		{"primary answers 503", answer(503, ``), 1, 0},
		{"primary answers 429", answer(429, ``), 1, 0},
		{"primary rejects the number", answer(422, `invalid`), 1, 0},
		{"primary times out after the request", slow, 0, sms.FailureUnknown},
		{"primary drops the connection after the request", drop, 0, sms.FailureUnknown},
		{"primary answers 504", answer(504, ``), 0, sms.FailureUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var primary counting
			url := refusedURL(t)
			if tt.primary != nil {
				url = primary.server(t, http.HandlerFunc(tt.primary)).URL
			}
			secondary := newTwilioFake(t)
			f := failover(t, sms.FailoverOptions{},
				sms.Member{Name: "primary", Type: "webhook", Sender: openWebhook(t, url, 300*time.Millisecond)},
				sms.Member{Name: "secondary", Type: "twilio", Sender: openTwilio(t, secondary.url, 0, nil)},
			)
			id, err := f.Send(context.Background(), testMsg)
			if n := secondary.messages.requests.Load(); n != tt.wantSecondary {
				t.Errorf("the secondary got %d requests, want %d", n, tt.wantSecondary)
			}
			if tt.primary != nil && primary.requests.Load() != 1 {
				t.Errorf("the primary got %d requests, want 1", primary.requests.Load())
			}
			if tt.wantSecondary == 1 {
				if err != nil || id == "" {
					t.Errorf("Send = %q, %v; want the secondary's success", id, err)
				}
				return
			}
			wantFailure(t, err, tt.failure, webhookSecret, twilioToken)
			if !strings.Contains(err.Error(), "primary") {
				t.Errorf("error %q does not name the provider", err)
			}
		})
	}
}

func TestFailoverSummarisesFailures(t *testing.T) {
	a, b := &scripted{}, &scripted{}
	f := failover(t, sms.FailoverOptions{}, sms.Member{Name: "a", Sender: a}, sms.Member{Name: "b", Sender: b})

	a.set(errRejected)
	b.set(errRejected)
	_, err := f.Send(context.Background(), testMsg)
	wantFailure(t, err, sms.FailureRejected)
	if err.Error() != "sms: a: invalid number; b: invalid number" {
		t.Errorf("error = %q", err)
	}

	a.set(errDown)
	_, err = f.Send(context.Background(), testMsg)
	wantFailure(t, err, sms.FailureUnavailable)

	// An unclassified error may have sent the message: b is not asked.
	a.set(errors.New("mystery"))
	before := b.count()
	_, err = f.Send(context.Background(), testMsg)
	wantFailure(t, err, sms.FailureUnknown)
	if b.count() != before {
		t.Error("an unclassified failure moved on to the next provider")
	}

	// A caller that gave up stops the round.
	a.set(errDown)
	before = b.count()
	if _, err := f.Send(cancelled(), testMsg); !errors.Is(err, context.Canceled) || b.count() != before {
		t.Errorf("Send with a cancelled context = %v, %d more calls to b", err, b.count()-before)
	}
}

func TestBreaker(t *testing.T) {
	clk := newClock()
	primary, secondary := &scripted{}, &scripted{}
	f := failover(t, sms.FailoverOptions{Now: clk.Now, Breaker: sms.Breaker{Failures: 3, Cooldown: 30 * time.Second}},
		sms.Member{Name: "primary", Sender: primary}, sms.Member{Name: "secondary", Sender: secondary})
	send := func() {
		t.Helper()
		if _, err := f.Send(context.Background(), testMsg); err != nil {
			t.Fatal(err)
		}
	}
	state := func() string { return f.Breakers()[0].State }

	// Rejected messages are the message's fault: they never open the breaker.
	primary.set(errRejected)
	for range 5 {
		send()
	}
	if state() != "closed" || primary.count() != 5 {
		t.Fatalf("after 5 rejections: %s, %d calls", state(), primary.count())
	}

	primary.set(errDown)
	for range 3 {
		send()
	}
	if state() != "open" || primary.count() != 8 {
		t.Fatalf("after 3 failures: %s, %d calls; want open", state(), primary.count())
	}
	for range 4 {
		send() // skipped: the secondary alone is asked
	}
	if primary.count() != 8 || secondary.count() != 5+3+4 {
		t.Errorf("while open: primary %d calls, secondary %d", primary.count(), secondary.count())
	}

	// Cool-down over: one trial, which fails and reopens the breaker at once.
	clk.Advance(30 * time.Second)
	if state() != "half-open" {
		t.Errorf("after the cool-down: %s, want half-open", state())
	}
	send()
	if state() != "open" || primary.count() != 9 {
		t.Errorf("after a failed trial: %s, %d calls; want open again after one trial", state(), primary.count())
	}
	clk.Advance(29 * time.Second)
	send()
	if primary.count() != 9 {
		t.Errorf("the primary was asked during the second cool-down")
	}

	// The provider recovers: the next trial closes the breaker.
	clk.Advance(time.Second)
	primary.set(nil)
	send()
	if state() != "closed" || primary.count() != 10 {
		t.Errorf("after a successful trial: %s, %d calls; want closed", state(), primary.count())
	}
	send()
	if primary.count() != 11 {
		t.Errorf("closed breaker: primary not asked")
	}
}

func TestBreakerHalfOpenLetsOneTrialThrough(t *testing.T) {
	clk := newClock()
	primary, secondary := &scripted{}, &scripted{}
	f := failover(t, sms.FailoverOptions{Now: clk.Now, Breaker: sms.Breaker{Failures: 1, Cooldown: time.Minute}},
		sms.Member{Name: "primary", Sender: primary}, sms.Member{Name: "secondary", Sender: secondary})
	primary.set(errDown)
	f.Send(context.Background(), testMsg)
	clk.Advance(time.Minute)

	primary.set(nil)
	release := make(chan struct{})
	primary.mu.Lock()
	primary.block = release
	primary.mu.Unlock()
	trialDone := make(chan struct{})
	go func() {
		defer close(trialDone)
		f.Send(context.Background(), testMsg)
	}()
	for primary.count() != 2 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { f.Send(context.Background(), testMsg) })
	}
	wg.Wait()
	if primary.count() != 2 || secondary.count() != 1+20 {
		t.Errorf("during the trial: primary %d calls, secondary %d; want the trial alone at the primary", primary.count(), secondary.count())
	}
	close(release)
	<-trialDone
	if f.Breakers()[0].State != "closed" {
		t.Errorf("after the trial: %+v", f.Breakers()[0])
	}
}

func TestBreakerIgnoresCallersGivingUp(t *testing.T) {
	primary := &scripted{block: make(chan struct{})}
	f := failover(t, sms.FailoverOptions{Breaker: sms.Breaker{Failures: 1}}, sms.Member{Name: "primary", Sender: primary})
	primary.set(errDown)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := f.Send(ctx, testMsg)
		done <- err
	}()
	for primary.count() != 1 {
		time.Sleep(time.Millisecond)
	}
	// The caller leaves while the provider works: its failure then says
	// nothing about the provider.
	cancel()
	close(primary.block)
	if err := <-done; err == nil {
		t.Fatal("Send succeeded")
	}
	if st := f.Breakers()[0]; st.State != "closed" || st.Failures != 0 {
		t.Errorf("breaker after a cancelled send: %+v", st)
	}
}

func TestRoutes(t *testing.T) {
	orange, twilio, webhook := &scripted{}, &scripted{}, &scripted{}
	f := failover(t, sms.FailoverOptions{Routes: map[string][]string{
		"+33":   {"orange"},
		"+3361": {"webhook"},
		"*":     {"twilio", "webhook"},
	}}, sms.Member{Name: "orange", Sender: orange}, sms.Member{Name: "twilio", Sender: twilio}, sms.Member{Name: "webhook", Sender: webhook})

	for _, tt := range []struct {
		to                     string
		orange, twilio, hookok int
	}{
		{"+33712345678", 1, 0, 0}, // +33
		{"+33612345678", 1, 0, 1}, // +3361 is longer than +33
		{"+12015550123", 1, 1, 1}, // *
		{"+447700900123", 1, 2, 1},
	} {
		if _, err := f.Send(context.Background(), sms.Message{To: tt.to, Body: "x"}); err != nil {
			t.Fatal(err)
		}
		if orange.count() != tt.orange || twilio.count() != tt.twilio || webhook.count() != tt.hookok {
			t.Errorf("%s: calls orange %d twilio %d webhook %d", tt.to, orange.count(), twilio.count(), webhook.count())
		}
	}

	// The "*" route fails over within itself; "+33" has no second provider.
	twilio.set(errDown)
	if _, err := f.Send(context.Background(), sms.Message{To: "+12015550123", Body: "x"}); err != nil || webhook.count() != 2 {
		t.Errorf("* route failover: %v, webhook %d calls", err, webhook.count())
	}
	orange.set(errDown)
	if _, err := f.Send(context.Background(), sms.Message{To: "+33712345678", Body: "x"}); err == nil || webhook.count() != 2 {
		t.Errorf("+33 route: %v, webhook %d calls; want a failure and no other provider", err, webhook.count())
	}

	// Without "*", an unrouted number is refused without a send.
	g := failover(t, sms.FailoverOptions{Routes: map[string][]string{"+33": {"orange"}}}, sms.Member{Name: "orange", Sender: orange})
	before := orange.count()
	_, err := g.Send(context.Background(), sms.Message{To: "+12015550123", Body: "x"})
	if !errors.Is(err, sms.ErrNoRoute) || sms.FailureOf(err) != sms.FailureRejected || orange.count() != before {
		t.Errorf("unrouted number: %v", err)
	}
}

func TestNewFailoverRefuses(t *testing.T) {
	s := &scripted{}
	for name, tt := range map[string]struct {
		members []sms.Member
		routes  map[string][]string
	}{
		"no member":      {nil, nil},
		"duplicate name": {[]sms.Member{{Name: "a", Sender: s}, {Name: "a", Sender: s}}, nil},
		"nil sender":     {[]sms.Member{{Name: "a"}}, nil},
		"unknown route":  {[]sms.Member{{Name: "a", Sender: s}}, map[string][]string{"*": {"b"}}},
		"bad prefix":     {[]sms.Member{{Name: "a", Sender: s}}, map[string][]string{"33": {"a"}}},
	} {
		if _, err := sms.NewFailover(tt.members, sms.FailoverOptions{Routes: tt.routes}); err == nil {
			t.Errorf("%s: NewFailover succeeded", name)
		}
	}
}

func TestFailoverStartupCheckNamesTheProvider(t *testing.T) {
	ok, bad := &scripted{}, &scripted{check: errors.New("credentials refused")}
	f := failover(t, sms.FailoverOptions{}, sms.Member{Name: "primary", Type: "orange", Sender: ok}, sms.Member{Name: "backup", Type: "twilio", Sender: bad})
	err := f.StartupCheck(context.Background())
	if err == nil || err.Error() != `sms: provider "backup" (type twilio) failed its startup check: credentials refused` {
		t.Errorf("StartupCheck = %v", err)
	}
}

func TestFailoverLogsMaskTheNumber(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&buf, &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, b := &scripted{}, &scripted{}
	a.set(&sms.SendError{Failure: sms.FailureUnavailable, Err: fmt.Errorf("twilio: The 'To' number %s is not valid", testMasked)})
	f := failover(t, sms.FailoverOptions{Logger: logger}, sms.Member{Name: "a", Sender: a}, sms.Member{Name: "b", Sender: b})
	if _, err := f.Send(context.Background(), testMsg); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, testMasked) || !strings.Contains(out, `"provider":"a"`) || !strings.Contains(out, "sent by a fallback provider") {
		t.Errorf("logs:\n%s", out)
	}
	noLeak(t, out)
	if strings.Contains(out, "123456 is your") {
		t.Errorf("logs contain the message body:\n%s", out)
	}
}

type lockedWriter struct {
	buf *bytes.Buffer
	mu  *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
