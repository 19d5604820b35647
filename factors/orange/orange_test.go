package orange_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/orange"
	"github.com/otpgate/otpgate/factors/orange/orangetest"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
)

const phone = "+33612345678"

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	fake   *orangetest.Server
	clock  *clock
	store  *memory.Store
	factor *orange.Factor
}

func setup(t *testing.T, change func(*orange.Options)) *env {
	t.Helper()
	e := &env{fake: orangetest.New(t), clock: &clock{now: time.Now()}, store: memory.New()}
	t.Cleanup(func() { e.store.Close() })
	opts := orange.Options{
		BaseURL: e.fake.URL, ClientID: orangetest.ClientID, ClientSecret: orangetest.ClientSecret,
		Service: orangetest.Service, PartnerID: orangetest.PartnerID, SenderName: "EXAMPLE", Origin: "login.example.com",
		Timeout: 2 * time.Second, Now: e.clock.Now,
	}
	if change != nil {
		change(&opts)
	}
	f, err := orange.New(e.store, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.factor = f
	return e
}

func (e *env) start(t *testing.T) factors.Challenge {
	t.Helper()
	ch, err := e.factor.Start(context.Background(), factors.StartRequest{FlowID: "flow", Phone: phone, Locale: "fr", ClientID: "shop"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return ch
}

func (e *env) resend(id string) (factors.Challenge, error) {
	return e.factor.Resend(context.Background(), factors.ResendRequest{ChallengeID: id, Locale: "fr"})
}

// code is the code of the newest SMS, read from its origin-bound line as a
// phone would, checked against the code the fake made.
func (e *env) code(t *testing.T) string {
	t.Helper()
	m := e.fake.LastMessage(t)
	i := strings.LastIndex(m.Text, "#")
	if i < 0 || !strings.Contains(m.Text, "@login.example.com #") || m.Text[i+1:] != m.Code {
		t.Fatalf("message %q has no origin-bound line with code %s", m.Text, m.Code)
	}
	return m.Code
}

// other returns a code of the same length that is not code.
func other(code string) string {
	last := (code[len(code)-1]-'0'+1)%10 + '0'
	return code[:len(code)-1] + string(rune(last))
}

func TestLogin(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	if ch.AttemptsLeft != 5 || ch.ResendsLeft != 3 || ch.Phone != phone {
		t.Errorf("challenge = %+v", ch)
	}
	m := e.fake.LastMessage(t)
	stored, err := e.store.GetChallenge(context.Background(), ch.ID)
	if err != nil || stored.ProviderRef != m.ChallengeID || len(stored.CodeHash) != 0 || stored.MaxAttempts != 5 {
		t.Fatalf("stored challenge %+v, %v; want Orange's id %s as ProviderRef, no code hash, 5 attempts", stored, err, m.ChallengeID)
	}
	code := e.code(t)
	if !strings.HasPrefix(m.Text, code+" est votre code") || m.Country != "FRA" || m.MSISDN != phone || m.SenderName != "EXAMPLE" {
		t.Errorf("message %+v: want the French text with Orange's code, FRA, the number and the sender name", m)
	}
	res, err := e.factor.Verify(context.Background(), ch.ID, code[:3]+" "+code[3:])
	if err != nil || res.Phone != phone || len(res.AMR) != 1 || res.AMR[0] != "sms" {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	if a := e.fake.Answers(); len(a) != 1 || a[0].ChallengeID != m.ChallengeID || a[0].Code != code || a[0].Info != orange.DefaultValidateInfo {
		t.Errorf("answers judged by Orange: %+v", a)
	}
	if _, err := e.factor.Verify(context.Background(), ch.ID, code); !errors.Is(err, factors.ErrNotFound) {
		t.Errorf("a second Verify = %v, want ErrNotFound (single use)", err)
	}
}

func TestWrongCodesAndAttemptLimit(t *testing.T) {
	for _, empty := range []bool{false, true} {
		t.Run(fmt.Sprintf("wrong code answered with an empty result: %v", empty), func(t *testing.T) {
			e := setup(t, nil)
			e.fake.SetEmptyResult(empty)
			ch := e.start(t)
			code := e.code(t)
			for want := 4; want >= 1; want-- {
				_, err := e.factor.Verify(context.Background(), ch.ID, other(code))
				var inv *factors.InvalidCodeError
				if !errors.As(err, &inv) || inv.Remaining != want {
					t.Fatalf("wrong answer: %v, want %d remaining", err, want)
				}
			}
			if _, err := e.factor.Verify(context.Background(), ch.ID, other(code)); !errors.Is(err, factors.ErrTooManyAttempts) {
				t.Fatalf("fifth wrong answer: %v, want ErrTooManyAttempts", err)
			}
			if n := e.fake.Validations.Load(); n != 5 {
				t.Errorf("Orange judged %d answers, want 5", n)
			}
			// Locked in the store: no resend can reopen the challenge.
			e.clock.Advance(time.Minute)
			if _, err := e.resend(ch.ID); !errors.Is(err, factors.ErrTooManyAttempts) {
				t.Errorf("resend after the limit: %v, want ErrTooManyAttempts", err)
			}
			if n := e.fake.Creates.Load(); n != 1 {
				t.Errorf("%d challenges created at Orange, want 1", n)
			}
		})
	}
}

// Once the attempts are spent, no answer reaches Orange, the right one
// included.
func TestAttemptsExhaustedNeverAskOrange(t *testing.T) {
	e := setup(t, func(o *orange.Options) { o.MaxAttempts = 3 })
	ch := e.start(t)
	code := e.code(t)
	for range 3 {
		if _, err := e.factor.Verify(context.Background(), ch.ID, other(code)); err == nil {
			t.Fatal("a wrong answer passed")
		}
	}
	judged := e.fake.Validations.Load()
	if judged != 3 {
		t.Fatalf("Orange judged %d answers, want 3", judged)
	}
	for _, answer := range []string{code, other(code), "", code} {
		if _, err := e.factor.Verify(context.Background(), ch.ID, answer); !errors.Is(err, factors.ErrTooManyAttempts) {
			t.Errorf("answer %q after the limit: %v, want ErrTooManyAttempts", answer, err)
		}
	}
	if n := e.fake.Validations.Load(); n != judged {
		t.Errorf("Orange was asked %d more times after the limit", n-judged)
	}
}

// Racing answers beyond the limit: exactly MaxAttempts are counted and
// judged by Orange, the others are refused before any request.
func TestParallelAnswersBeyondTheLimit(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	wrongCode := other(e.code(t))
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = e.factor.Verify(context.Background(), ch.ID, wrongCode) })
	}
	wg.Wait()
	remaining := map[int]bool{}
	locked := 0
	for _, err := range errs {
		var inv *factors.InvalidCodeError
		switch {
		case errors.As(err, &inv):
			if remaining[inv.Remaining] {
				t.Errorf("two answers were told %d attempts remain", inv.Remaining)
			}
			remaining[inv.Remaining] = true
		case errors.Is(err, factors.ErrTooManyAttempts):
			locked++
		default:
			t.Errorf("wrong answer: %v", err)
		}
	}
	if len(remaining) != 4 || locked != n-4 {
		t.Errorf("%d wrong-code results (want 4: remaining 4, 3, 2, 1) and %d locked (want %d)", len(remaining), locked, n-4)
	}
	if v := e.fake.Validations.Load(); v != 5 {
		t.Errorf("Orange judged %d of %d racing answers, want exactly 5", v, n)
	}
}

func TestMalformedAnswersCountWithoutAskingOrange(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	for _, answer := range []string{"", "12345", "1234567", "12a456", strings.Repeat("1", 100)} {
		if _, err := e.factor.Verify(context.Background(), ch.ID, answer); err == nil {
			t.Errorf("Verify(%q) succeeded", answer)
		}
	}
	if n := e.fake.Validations.Load(); n != 0 {
		t.Errorf("Orange was asked %d times about malformed answers", n)
	}
	if _, err := e.factor.Verify(context.Background(), ch.ID, e.code(t)); !errors.Is(err, factors.ErrTooManyAttempts) {
		t.Errorf("after 5 malformed answers: %v, want ErrTooManyAttempts", err)
	}
}

func TestExpiry(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	e.clock.Advance(5*time.Minute + time.Second)
	if _, err := e.factor.Verify(context.Background(), ch.ID, e.code(t)); !errors.Is(err, factors.ErrExpired) {
		t.Errorf("Verify after the lifetime: %v, want ErrExpired", err)
	}
	if n := e.fake.Validations.Load(); n != 0 {
		t.Errorf("Orange was asked about an expired challenge")
	}
}

func TestResend(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	first := e.code(t)
	var rl *factors.RateLimitedError
	if _, err := e.resend(ch.ID); !errors.As(err, &rl) {
		t.Fatalf("resend within the cooldown: %v", err)
	}
	if _, err := e.factor.Verify(context.Background(), ch.ID, other(first)); err == nil {
		t.Fatal("a wrong answer passed")
	}
	e.clock.Advance(30 * time.Second)
	ch2, err := e.resend(ch.ID)
	// The wrong answer before the resend still counts: a new code is no new budget.
	if err != nil || ch2.ID != ch.ID || ch2.ResendsLeft != 2 || ch2.AttemptsLeft != 4 {
		t.Fatalf("Resend = %+v, %v; want the same challenge, 2 resends and 4 attempts left", ch2, err)
	}
	second := e.code(t)
	if e.fake.Creates.Load() != 2 {
		t.Errorf("%d challenges created at Orange, want 2", e.fake.Creates.Load())
	}
	stored, err := e.store.GetChallenge(context.Background(), ch.ID)
	if err != nil || stored.ProviderRef != e.fake.LastMessage(t).ChallengeID || stored.Sends != 2 {
		t.Fatalf("after the resend: %+v, %v; want the new Orange id at send 2", stored, err)
	}
	if first != second {
		var inv *factors.InvalidCodeError
		if _, err := e.factor.Verify(context.Background(), ch.ID, first); !errors.As(err, &inv) {
			t.Errorf("the first code after a resend: %v, want refused", err)
		}
	}
	if _, err := e.factor.Verify(context.Background(), ch.ID, second); err != nil {
		t.Errorf("the resent code: %v", err)
	}
}

// A resend Orange refuses still counts as a send, and drops the old code: no
// code works (without asking Orange) until the next resend.
func TestResendFailureLeavesNoWorkingCode(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	first := e.code(t)
	e.clock.Advance(30 * time.Second)
	e.fake.SetFailure(func(op string) int {
		if op == orangetest.OpCreate {
			return 503
		}
		return 0
	})
	var de *factors.DeliveryError
	if _, err := e.resend(ch.ID); !errors.As(err, &de) {
		t.Fatalf("resend with Orange down: %v, want a DeliveryError", err)
	}
	e.fake.SetFailure(nil)
	stored, err := e.store.GetChallenge(context.Background(), ch.ID)
	if err != nil || stored.ProviderRef != "" || stored.Sends != 2 {
		t.Fatalf("after a failed resend: %+v, %v; want no Orange id at send 2", stored, err)
	}
	if _, err := e.factor.Verify(context.Background(), ch.ID, first); !errors.Is(err, factors.ErrExpired) {
		t.Errorf("the first code after a failed resend: %v, want ErrExpired", err)
	}
	if n := e.fake.Validations.Load(); n != 0 {
		t.Errorf("Orange was asked %d times about a challenge otpgate holds no id for", n)
	}
	e.clock.Advance(30 * time.Second)
	if _, err := e.resend(ch.ID); err != nil {
		t.Fatalf("the next resend: %v", err)
	}
	if _, err := e.factor.Verify(context.Background(), ch.ID, e.code(t)); err != nil {
		t.Errorf("the code of the next resend: %v", err)
	}
}

// A resend whose Orange answer is slow, overtaken by a later resend: the later
// code is the one that works, whichever answer lands last.
func TestSlowResendOvertaken(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	e.fake.SetHook(func(op string) {
		if op == orangetest.OpCreate && held.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
	})
	e.clock.Advance(30 * time.Second)
	slow := make(chan error, 1)
	go func() { _, err := e.resend(ch.ID); slow <- err }()
	<-entered
	e.clock.Advance(30 * time.Second)
	if _, err := e.resend(ch.ID); err != nil {
		t.Fatalf("the later resend: %v", err)
	}
	later := e.fake.LastMessage(t)
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("the slow resend: %v", err)
	}
	if msgs := e.fake.Messages(); len(msgs) != 3 || msgs[1] != later {
		t.Fatalf("messages %+v: want the start, the later resend, then the slow one", msgs)
	}
	stored, err := e.store.GetChallenge(context.Background(), ch.ID)
	if err != nil || stored.ProviderRef != later.ChallengeID || stored.Sends != 3 {
		t.Fatalf("stored %+v, %v; want the later resend's Orange id %s at send 3", stored, err, later.ChallengeID)
	}
	if slowCode := e.fake.LastMessage(t).Code; slowCode != later.Code {
		if _, err := e.factor.Verify(context.Background(), ch.ID, slowCode); err == nil {
			t.Error("the overtaken resend's code passed")
		}
	}
	if _, err := e.factor.Verify(context.Background(), ch.ID, later.Code); err != nil {
		t.Errorf("the later resend's code: %v", err)
	}
}

func TestParallelCorrectAnswersOneWins(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	code := e.code(t)
	// An API that accepted the code again and again: otpgate alone must keep
	// it single-use.
	e.fake.SetReusable(true)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := e.factor.Verify(context.Background(), ch.ID, code)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, factors.ErrNotFound) && !errors.Is(err, factors.ErrTooManyAttempts):
				t.Errorf("a losing right answer: %v, want ErrNotFound or ErrTooManyAttempts", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d of 10 parallel correct answers succeeded, want exactly 1", wins.Load())
	}
	if n := e.fake.Validations.Load(); n < 1 || n > 5 {
		t.Errorf("Orange judged %d answers, want 1 to 5 (the attempts allowed)", n)
	}
	if _, err := e.store.GetChallenge(context.Background(), ch.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("challenge after the win: %v, want consumed", err)
	}
}

func TestOrangeFailures(t *testing.T) {
	e := setup(t, nil)
	e.fake.SetFailure(func(string) int { return 503 })
	_, err := e.factor.Start(context.Background(), factors.StartRequest{FlowID: "flow", Phone: phone, Locale: "en"})
	var de *factors.DeliveryError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("Start with Orange down: %v, want a DeliveryError", err)
	}

	e.fake.SetFailure(nil)
	ch := e.start(t)
	e.fake.SetFailure(func(string) int { return 500 })
	_, err = e.factor.Verify(context.Background(), ch.ID, e.code(t))
	if err == nil || errors.As(err, new(*factors.InvalidCodeError)) {
		t.Fatalf("Verify with Orange failing: %v, want an error that is not a wrong code", err)
	}
	for _, s := range []string{orangetest.ClientSecret, "612345678", e.code(t)} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains %q", err, s)
		}
	}
	// A wrong answer's text quotes the number: the error does not.
	e.fake.SetFailure(nil)
	if _, err := e.factor.Verify(context.Background(), ch.ID, other(e.code(t))); err == nil || strings.Contains(err.Error(), "612345678") {
		t.Errorf("wrong answer: %v", err)
	}

	// A token that stops working is replaced once.
	e.fake.RevokeTokens()
	if _, err := e.factor.Verify(context.Background(), ch.ID, e.code(t)); err != nil {
		t.Errorf("Verify after the token was revoked: %v", err)
	}
	if n := e.fake.Tokens.Load(); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	_, err := orange.New(memory.New(), orange.Options{Message: "no placeholder", CodeLength: 9, TTL: time.Hour, SenderName: "MUCH-TOO-LONG"})
	for _, want := range []string{"client_id", "partner_id", "%OTP%", "sender_name", "code_length", "ttl"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v; want a problem with %s", err, want)
		}
	}
}

func TestAlpha3(t *testing.T) {
	for in, want := range map[string]string{"FR": "FRA", "US": "USA", "GB": "GBR", "BE": "BEL", "CI": "CIV", "XX": "", "001": ""} {
		if got := orange.Alpha3(in); got != want {
			t.Errorf("Alpha3(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStartupCheck(t *testing.T) {
	e := setup(t, nil)
	if err := e.factor.StartupCheck(context.Background()); err != nil || e.fake.Tokens.Load() != 1 {
		t.Errorf("StartupCheck = %v after %d token requests, want nil after 1", err, e.fake.Tokens.Load())
	}
	bad := setup(t, func(o *orange.Options) { o.ClientSecret = "wrong-hunter2" })
	err := bad.factor.StartupCheck(context.Background())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("StartupCheck with a wrong secret = %v, want an error without the secret", err)
	}
}

// sends is a factors.Observer that keeps the SMS results it is told.
type sends struct {
	mu     sync.Mutex
	events []string
}

func (s *sends) SMSSent(provider string, cc int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, fmt.Sprintf("sent %s %d", provider, cc))
}

func (s *sends) SMSFailed(provider string, cc int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, fmt.Sprintf("failed %s %d %s", provider, cc, reason))
}

func (s *sends) SMSRefused(int, string)   {}
func (s *sends) Challenge(string, string) {}

// Each code Orange is asked to text is reported, sent or failed.
func TestObserverSends(t *testing.T) {
	obs := &sends{}
	e := setup(t, func(o *orange.Options) { o.Observer = obs })
	ch := e.start(t)
	e.clock.Advance(orange.DefaultResendCooldown)
	e.fake.SetFailure(func(string) int { return 503 })
	if _, err := e.resend(ch.ID); err == nil {
		t.Fatal("resend with Orange down succeeded")
	}
	want := []string{"sent orange 33", "failed orange 33 unknown"}
	if fmt.Sprint(obs.events) != fmt.Sprint(want) {
		t.Errorf("reported %q, want %q", obs.events, want)
	}
}
