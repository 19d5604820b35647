package orange_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/orange"
	"github.com/otpgate/otpgate/storage/memory"
)

const (
	phone    = "+33612345678"
	clientID = "otp-app"
	secret   = "otp-secret-hunter2"
	service  = "svc-123"
	partner  = "partner-456"
)

type input struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type body struct {
	Challenge struct {
		Method    string  `json:"method"`
		Country   string  `json:"country"`
		Service   string  `json:"service"`
		PartnerID string  `json:"partnerId"`
		Inputs    []input `json:"inputs"`
	} `json:"challenge"`
}

func (b body) input(typ string) (string, bool) {
	for _, in := range b.Challenge.Inputs {
		if in.Type == typ {
			return in.Value, true
		}
	}
	return "", false
}

// otpFake is the challenge/v1 API as ref/sms-apis.md infers it: it makes the
// code, "texts" it (keeps it for the test), and validates answers.
type otpFake struct {
	t                            *testing.T
	srv                          *httptest.Server
	tokens, creates, validations atomic.Int32

	mu          sync.Mutex
	issued      map[string]bool
	challenges  map[string]*fakeChallenge
	messages    []string
	emptyResult bool       // answer a wrong code with 200 and no result instead of 400
	reusable    bool       // accept a right code again and again
	fail        func() int // a status to answer instead, when it returns non-zero
}

type fakeChallenge struct {
	code, msisdn string
	used         bool
}

func newOTPFake(t *testing.T) *otpFake {
	f := &otpFake{t: t, issued: map[string]bool{}, challenges: map[string]*fakeChallenge{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *otpFake) serve(w http.ResponseWriter, r *http.Request) {
	t := f.t
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if v != nil {
			json.NewEncoder(w).Encode(v)
		}
	}
	if r.URL.Path == "/oauth/v3/token" {
		f.tokens.Add(1)
		if id, s, ok := r.BasicAuth(); !ok || id != clientID || s != secret || r.Method != http.MethodPost {
			reply(401, map[string]any{"code": 42, "message": "Expired credentials"})
			return
		}
		f.mu.Lock()
		tok := fmt.Sprintf("tok-%d", f.tokens.Load())
		f.issued[tok] = true
		f.mu.Unlock()
		reply(200, map[string]any{"token_type": "Bearer", "access_token": tok, "expires_in": "3600"})
		return
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	valid, fail := f.issued[tok], f.fail
	f.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
		t.Errorf("challenge request: %s %s %v", r.Method, r.URL, r.Header)
	}
	if !valid {
		reply(401, map[string]any{"code": 42, "message": "Expired credentials"})
		return
	}
	var b body
	data, _ := io.ReadAll(r.Body)
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || b.Challenge.Method != "OTP-SMS-AUTH" || b.Challenge.Country != "FRA" ||
		b.Challenge.Service != service || b.Challenge.PartnerID != partner {
		t.Errorf("challenge body %s: %v", data, err)
	}
	if msisdn, _ := b.input("MSISDN"); msisdn != phone {
		t.Errorf("MSISDN = %q, want E.164 without tel:", msisdn)
	}
	if fail != nil {
		if status := fail(); status != 0 {
			reply(status, nil)
			return
		}
	}
	if r.URL.Path == "/challenge/v1/challenges" {
		f.creates.Add(1)
		msg, _ := b.input("message")
		length, _ := b.input("otpLength")
		sender, _ := b.input("senderName")
		confirm, ok := b.input("confirmationCode")
		if !strings.Contains(msg, "%OTP%") || len([]rune(msg)) > 160 || length != "6" || sender != "EXAMPLE" || !ok || confirm != "" {
			t.Errorf("create inputs: %+v", b.Challenge.Inputs)
		}
		var idb [12]byte
		rand.Read(idb[:])
		id := hex.EncodeToString(idb[:])
		code := fmt.Sprintf("%06d", int(idb[0])<<16|int(idb[1])<<8|int(idb[2]))[:6]
		f.mu.Lock()
		f.challenges[id] = &fakeChallenge{code: code, msisdn: phone}
		f.messages = append(f.messages, strings.ReplaceAll(msg, "%OTP%", code))
		f.mu.Unlock()
		w.Header().Set("Location", "/challenge/v1/challenges/"+id)
		reply(201, nil)
		return
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/challenge/v1/challenges/")
	if !ok {
		t.Errorf("unexpected path %s", r.URL.Path)
		reply(404, nil)
		return
	}
	f.validations.Add(1)
	code, _ := b.input("confirmationCode")
	if info, _ := b.input("info"); info != "OrangeApiToken,ise2" {
		t.Errorf("validation info = %q", info)
	}
	f.mu.Lock()
	c, known := f.challenges[id]
	right := known && (!c.used || f.reusable) && c.code == code
	if right {
		c.used = true
	}
	empty := f.emptyResult
	f.mu.Unlock()
	switch {
	case !known:
		reply(404, map[string]any{"requestError": map[string]any{"serviceException": map[string]any{"messageId": "SVC0002", "text": "unknown challenge"}}})
	case right:
		reply(200, map[string]any{"challenge": map[string]any{"method": "OTP-SMS-AUTH", "result": []input{{Type: "OrangeApiToken", Value: "x"}}}})
	case empty:
		reply(200, map[string]any{"challenge": map[string]any{"method": "OTP-SMS-AUTH"}})
	default:
		reply(400, map[string]any{"requestError": map[string]any{"serviceException": map[string]any{"messageId": "SVC0002", "text": "Invalid input value for tel:+33612345678"}}})
	}
}

// lastCode is the code of the newest SMS, read from its origin-bound line.
func (f *otpFake) lastCode(t *testing.T) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.messages) == 0 {
		t.Fatal("no SMS sent")
	}
	msg := f.messages[len(f.messages)-1]
	i := strings.LastIndex(msg, "#")
	if i < 0 || !strings.Contains(msg, "@login.example.com #") {
		t.Fatalf("message %q has no origin-bound line", msg)
	}
	return msg[i+1:]
}

func (f *otpFake) revokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.issued)
}

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
	fake   *otpFake
	clock  *clock
	store  *memory.Store
	factor *orange.Factor
}

func setup(t *testing.T, change func(*orange.Options)) *env {
	t.Helper()
	e := &env{fake: newOTPFake(t), clock: &clock{now: time.Now()}, store: memory.New()}
	t.Cleanup(func() { e.store.Close() })
	opts := orange.Options{
		BaseURL: e.fake.srv.URL, ClientID: clientID, ClientSecret: secret,
		Service: service, PartnerID: partner, SenderName: "EXAMPLE", Origin: "login.example.com",
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

func TestLogin(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	if ch.AttemptsLeft != 5 || ch.ResendsLeft != 3 || ch.Phone != phone {
		t.Errorf("challenge = %+v", ch)
	}
	stored, err := e.store.GetChallenge(context.Background(), ch.ID)
	if err != nil || len(stored.ProviderRef) != 24 {
		t.Fatalf("stored challenge %+v, %v; want Orange's id as ProviderRef", stored, err)
	}
	code := e.fake.lastCode(t)
	if !strings.HasPrefix(e.fake.messages[0], code+" est votre code") {
		t.Errorf("message %q: want the French text with Orange's code", e.fake.messages[0])
	}
	res, err := e.factor.Verify(context.Background(), ch.ID, code[:3]+" "+code[3:])
	if err != nil || res.Phone != phone || len(res.AMR) != 1 || res.AMR[0] != "sms" {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	if _, err := e.factor.Verify(context.Background(), ch.ID, code); !errors.Is(err, factors.ErrNotFound) {
		t.Errorf("a second Verify = %v, want ErrNotFound (single use)", err)
	}
}

func TestWrongCodesAndAttemptLimit(t *testing.T) {
	for _, empty := range []bool{false, true} {
		t.Run(fmt.Sprintf("wrong code answered with an empty result: %v", empty), func(t *testing.T) {
			e := setup(t, nil)
			e.fake.emptyResult = empty
			ch := e.start(t)
			code := e.fake.lastCode(t)
			wrongCode := "000000"
			if code == wrongCode {
				wrongCode = "111111"
			}
			for want := 4; want >= 1; want-- {
				_, err := e.factor.Verify(context.Background(), ch.ID, wrongCode)
				var inv *factors.InvalidCodeError
				if !errors.As(err, &inv) || inv.Remaining != want {
					t.Fatalf("wrong answer: %v, want %d remaining", err, want)
				}
			}
			if _, err := e.factor.Verify(context.Background(), ch.ID, wrongCode); !errors.Is(err, factors.ErrTooManyAttempts) {
				t.Fatalf("fifth wrong answer: %v, want ErrTooManyAttempts", err)
			}
			if n := e.fake.validations.Load(); n != 5 {
				t.Errorf("Orange judged %d answers, want 5", n)
			}
			// Locked: the right code is refused without asking Orange, and
			// no resend can reopen the challenge.
			if _, err := e.factor.Verify(context.Background(), ch.ID, code); !errors.Is(err, factors.ErrTooManyAttempts) {
				t.Errorf("right code after the limit: %v", err)
			}
			e.clock.Advance(time.Minute)
			if _, err := e.factor.Resend(context.Background(), factors.ResendRequest{ChallengeID: ch.ID, Locale: "fr"}); !errors.Is(err, factors.ErrTooManyAttempts) {
				t.Errorf("resend after the limit: %v, want ErrTooManyAttempts", err)
			}
			if n := e.fake.validations.Load(); n != 5 {
				t.Errorf("Orange judged %d answers, want still 5", n)
			}
		})
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
	if n := e.fake.validations.Load(); n != 0 {
		t.Errorf("Orange was asked %d times about malformed answers", n)
	}
	if _, err := e.factor.Verify(context.Background(), ch.ID, e.fake.lastCode(t)); !errors.Is(err, factors.ErrTooManyAttempts) {
		t.Errorf("after 5 malformed answers: %v, want ErrTooManyAttempts", err)
	}
}

func TestExpiry(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	e.clock.Advance(5*time.Minute + time.Second)
	if _, err := e.factor.Verify(context.Background(), ch.ID, e.fake.lastCode(t)); !errors.Is(err, factors.ErrExpired) {
		t.Errorf("Verify after the lifetime: %v, want ErrExpired", err)
	}
	if n := e.fake.validations.Load(); n != 0 {
		t.Errorf("Orange was asked about an expired challenge")
	}
}

func TestResend(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	first := e.fake.lastCode(t)
	var rl *factors.RateLimitedError
	if _, err := e.factor.Resend(context.Background(), factors.ResendRequest{ChallengeID: ch.ID, Locale: "fr"}); !errors.As(err, &rl) {
		t.Fatalf("resend within the cooldown: %v", err)
	}
	e.clock.Advance(30 * time.Second)
	ch2, err := e.factor.Resend(context.Background(), factors.ResendRequest{ChallengeID: ch.ID, Locale: "fr"})
	if err != nil || ch2.ID != ch.ID || ch2.ResendsLeft != 2 {
		t.Fatalf("Resend = %+v, %v", ch2, err)
	}
	second := e.fake.lastCode(t)
	if e.fake.creates.Load() != 2 {
		t.Errorf("%d challenges created at Orange, want 2", e.fake.creates.Load())
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

func TestParallelCorrectAnswersOneWins(t *testing.T) {
	e := setup(t, nil)
	ch := e.start(t)
	code := e.fake.lastCode(t)
	// An API that accepted the code again and again: otpgate alone must keep
	// it single-use.
	e.fake.reusable = true
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := e.factor.Verify(context.Background(), ch.ID, code); err == nil {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d of 10 parallel correct answers succeeded, want exactly 1", wins.Load())
	}
}

func TestOrangeFailures(t *testing.T) {
	e := setup(t, nil)
	e.fake.fail = func() int { return 503 }
	_, err := e.factor.Start(context.Background(), factors.StartRequest{FlowID: "flow", Phone: phone, Locale: "en"})
	var de *factors.DeliveryError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("Start with Orange down: %v, want a DeliveryError", err)
	}

	e.fake.fail = nil
	ch := e.start(t)
	e.fake.fail = func() int { return 500 }
	_, err = e.factor.Verify(context.Background(), ch.ID, e.fake.lastCode(t))
	if err == nil || errors.As(err, new(*factors.InvalidCodeError)) {
		t.Fatalf("Verify with Orange failing: %v, want an error that is not a wrong code", err)
	}
	for _, s := range []string{secret, "612345678", e.fake.lastCode(t)} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains %q", err, s)
		}
	}

	// A token that stops working is replaced once.
	e.fake.fail = nil
	e.fake.revokeTokens()
	if _, err := e.factor.Verify(context.Background(), ch.ID, e.fake.lastCode(t)); err != nil {
		t.Errorf("Verify after the token was revoked: %v", err)
	}
	if n := e.fake.tokens.Load(); n != 2 {
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
