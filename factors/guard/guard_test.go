package guard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
)

// Numbers of each type (libphonenumber's examples).
const (
	mobileFR      = "+33612345678"
	mobileFR2     = "+33698765432"
	fixedFR       = "+33123456789"
	premiumFR     = "+33891123456"
	sharedCostFR  = "+33884012345"
	voipFR        = "+33912345678"
	uanFR         = "+33806123456"
	tollFreeFR    = "+33801234567"
	fixedOrMobUS  = "+12015550123"
	mobileJM      = "+18762101234"
	mobileNG      = "+2348021234567"
	nonGeographic = "+80012345678"
)

var key = bytes.Repeat([]byte("g"), 32)

// clock is the store's and the factor's time, which tests move forward.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is the SMS factor on a memory store with the outbox sender, behind a guard.
type env struct {
	t     *testing.T
	g     *guard.Guard
	store *memory.Store
	clock *clock
	logs  *bytes.Buffer
}

// open returns a policy with every limit off, for tests to turn on what they test.
func open() guard.Policy {
	return guard.Policy{NumberTypes: guard.DefaultNumberTypes}
}

func newEnv(t *testing.T, p guard.Policy) *env {
	t.Helper()
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	store := memory.New(memory.WithNow(clk.Now))
	t.Cleanup(func() { store.Close() })
	f, err := smsotp.New(store, sms.NewOutbox(store, 1000, clk.Now), smsotp.Options{
		HashKey: bytes.Repeat([]byte("k"), 32), Origin: "id.example.com", Now: clk.Now, MaxResends: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	g, err := guard.Wrap(f, store, key, p, guard.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatalf("guard.Wrap: %v", err)
	}
	return &env{t: t, g: g, store: store, clock: clk, logs: logs}
}

// start asks for a code; it fails the test on anything but success or a
// refusal, and returns the refusal.
func (e *env) start(phone, ip string) (factors.Challenge, error) {
	e.t.Helper()
	ch, err := e.g.Start(context.Background(), factors.StartRequest{
		FlowID: "flow-" + phone, Phone: phone, Locale: "en", ClientID: "rp", IP: ip,
	})
	var lim *factors.LimitError
	if err != nil && !errors.As(err, &lim) {
		e.t.Fatalf("Start(%s): %v", phone, err)
	}
	return ch, err
}

func (e *env) mustStart(phone, ip string) factors.Challenge {
	e.t.Helper()
	ch, err := e.start(phone, ip)
	if err != nil {
		e.t.Fatalf("Start(%s from %s): %v", phone, ip, err)
	}
	return ch
}

// sent is the number of SMS in the outbox.
func (e *env) sent() int {
	e.t.Helper()
	msgs, err := e.store.ListOutbox(context.Background(), 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(msgs)
}

var codeLine = regexp.MustCompile(`#(\d+)\s*$`)

// code is the code of the newest SMS to phone.
func (e *env) code(phone string) string {
	e.t.Helper()
	msgs, err := e.store.ListOutbox(context.Background(), 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range msgs {
		if m.To == phone {
			return codeLine.FindStringSubmatch(m.Body)[1]
		}
	}
	e.t.Fatalf("no SMS to %s", phone)
	return ""
}

func wrong(code string) string {
	return code[:len(code)-1] + string(rune('0'+(code[len(code)-1]-'0'+1)%10))
}

// refusedBy fails unless err is a LimitError for reason.
func refusedBy(t *testing.T, err error, reason string) *factors.LimitError {
	t.Helper()
	var lim *factors.LimitError
	if !errors.As(err, &lim) || lim.Reason != reason {
		t.Fatalf("err = %v, want a LimitError %q", err, reason)
	}
	return lim
}

func TestWrapValidates(t *testing.T) {
	store := memory.New()
	defer store.Close()
	f, err := smsotp.New(store, sms.NewOutbox(store, 10, nil), smsotp.Options{HashKey: key, Origin: "x.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := guard.Wrap(f, store, key, guard.DefaultPolicy()); err != nil {
		t.Fatalf("the default policy is refused: %v", err)
	}
	bad := guard.DefaultPolicy()
	bad.NumberTypes = []string{"mobile", "satellite"}
	bad.Limits.Phone = guard.Limit{Count: 3, Window: time.Millisecond}
	bad.Limits.IP.Count = -1
	bad.Breaker.MinConversion = 1.5
	bad.Breaker.Exempt = []string{"XX"}
	_, err = guard.Wrap(f, store, key[:8], bad)
	if err == nil {
		t.Fatal("Wrap accepted a bad key and policy")
	}
	for _, want := range []string{"key must be at least 32", `"satellite"`, "limit phone: window", "limit ip: count", "min conversion", `"XX"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := guard.Wrap(f, store, key, guard.Policy{NumberTypes: []string{}}); err == nil {
		t.Error("an empty list of number types (refusing every number) was accepted")
	}
}

func TestNumberTypes(t *testing.T) {
	e := newEnv(t, open())
	for _, phone := range []string{mobileFR, fixedOrMobUS, mobileJM} {
		e.mustStart(phone, "")
	}
	for _, phone := range []string{fixedFR, premiumFR, sharedCostFR, voipFR, uanFR, tollFreeFR, nonGeographic} {
		before := e.sent()
		_, err := e.start(phone, "")
		if !errors.Is(err, factors.ErrNumberTypeNotAllowed) {
			t.Errorf("Start(%s) = %v, want ErrNumberTypeNotAllowed", phone, err)
		}
		if e.sent() != before {
			t.Errorf("an SMS went to %s", phone)
		}
	}

	p := open()
	p.NumberTypes = []string{"mobile", "FIXED_LINE"}
	e = newEnv(t, p)
	e.mustStart(fixedFR, "")
	if _, err := e.start(fixedOrMobUS, ""); !errors.Is(err, factors.ErrNumberTypeNotAllowed) {
		t.Errorf("fixed_line_or_mobile is served though not listed: %v", err)
	}
}

func TestPhoneLimitAcrossIPs(t *testing.T) {
	p := open()
	p.Limits.Phone = guard.Limit{Count: 3, Window: 10 * time.Minute}
	e := newEnv(t, p)
	for i := range 3 {
		e.mustStart(mobileFR, fmt.Sprintf("192.0.2.%d", i))
	}
	lim := refusedBy(t, func() error { _, err := e.start(mobileFR, "198.51.100.7"); return err }(), guard.ReasonPhone)
	if lim.RetryAfter <= 0 || lim.RetryAfter > 10*time.Minute+10*time.Minute/3 {
		t.Errorf("RetryAfter %v, want within the window (plus window/count)", lim.RetryAfter)
	}
	if lim.Err != nil {
		t.Errorf("a rate limit carries %v", lim.Err)
	}
	if n := e.sent(); n != 3 {
		t.Errorf("%d SMS sent, want 3", n)
	}
	e.mustStart(mobileFR2, "198.51.100.7") // another number is not affected
	e.clock.Advance(lim.RetryAfter)
	e.mustStart(mobileFR, "198.51.100.7")
}

func TestIPLimit(t *testing.T) {
	p := open()
	p.Limits.IP = guard.Limit{Count: 2, Window: 10 * time.Minute}
	e := newEnv(t, p)
	phones := []string{"+33611111111", "+33622222222", "+33633333333", "+33644444444", "+33655555555"}

	// IPv6 counts per /64.
	e.mustStart(phones[0], "2001:db8:1:2::1")
	e.mustStart(phones[1], "2001:db8:1:2:ffff:ffff:ffff:fffe")
	refusedBy(t, func() error { _, err := e.start(phones[2], "2001:db8:1:2::abcd"); return err }(), guard.ReasonIP)
	e.mustStart(phones[2], "2001:db8:1:3::1") // the next /64

	// An IPv4-mapped address is the IPv4 address.
	e.mustStart(phones[3], "203.0.113.9")
	e.mustStart(phones[4], "::ffff:203.0.113.9")
	refusedBy(t, func() error { _, err := e.start(phones[0], "203.0.113.9"); return err }(), guard.ReasonIP)

	// Without an address there is no per-IP limit (other limits still apply).
	for _, ph := range phones {
		e.mustStart(ph, "")
	}
}

func TestPrefixAndCountryLimits(t *testing.T) {
	p := open()
	p.Limits.Prefix = guard.Limit{Count: 3, Window: time.Hour}
	p.Limits.Country = guard.Limit{Count: 5, Window: time.Hour}
	e := newEnv(t, p)
	for i := range 3 {
		e.mustStart(fmt.Sprintf("+3361234%04d", i), "")
	}
	refusedBy(t, func() error { _, err := e.start("+33612349999", ""); return err }(), guard.ReasonPrefix)
	e.mustStart("+33612350000", "") // next prefix
	e.mustStart("+33698765432", "")
	refusedBy(t, func() error { _, err := e.start("+33677777777", ""); return err }(), guard.ReasonCountry)
	e.mustStart(mobileJM, "") // +1: another calling code
}

func TestBudgetsStopSendingAndLogAnError(t *testing.T) {
	p := open()
	p.Limits.Budget = guard.Limit{Count: 3, Window: 24 * time.Hour}
	p.Limits.ClientBudget = guard.Limit{Count: 2, Window: 24 * time.Hour}
	e := newEnv(t, p)
	e.mustStart("+33611111111", "")
	e.mustStart("+33622222222", "")
	lim := refusedBy(t, func() error { _, err := e.start("+33633333333", ""); return err }(), guard.ReasonClientBudget)
	if !errors.Is(lim, factors.ErrSMSUnavailable) {
		t.Errorf("a spent budget is not ErrSMSUnavailable: %v", lim)
	}
	// Another client still has room in the global budget, then nobody has.
	if _, err := e.g.Start(context.Background(), factors.StartRequest{Phone: "+33644444444", ClientID: "other", Locale: "en"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.g.Start(context.Background(), factors.StartRequest{Phone: "+33655555555", ClientID: "third", Locale: "en"})
	refusedBy(t, err, guard.ReasonBudget)
	logs := e.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "limit=budget") || !strings.Contains(logs, "limit=client_budget") {
		t.Errorf("spent budgets not logged as errors:\n%s", logs)
	}
	if strings.Contains(logs, "+336") {
		t.Errorf("a phone number is in the logs:\n%s", logs)
	}
}

// A send refused by one limit, or not made by the factor, counts against none.
func TestRefusedSendCountsNothing(t *testing.T) {
	p := open()
	p.Limits.IP = guard.Limit{Count: 2, Window: time.Hour}
	p.Limits.Phone = guard.Limit{Count: 1, Window: time.Hour}
	e := newEnv(t, p)
	e.mustStart(mobileFR, "192.0.2.1")
	for range 5 {
		refusedBy(t, func() error { _, err := e.start(mobileFR, "192.0.2.1"); return err }(), guard.ReasonPhone)
	}
	// The IP has one send, not six.
	e.mustStart(mobileFR2, "192.0.2.1")
	refusedBy(t, func() error { _, err := e.start("+33611111111", "192.0.2.1"); return err }(), guard.ReasonIP)

	// A resend the factor refuses (cooldown) counts nothing either.
	p = open()
	p.Limits.Phone = guard.Limit{Count: 2, Window: time.Hour}
	e = newEnv(t, p)
	ch := e.mustStart(mobileFR, "")
	for range 3 {
		_, err := e.g.Resend(context.Background(), factors.ResendRequest{ChallengeID: ch.ID, Locale: "en"})
		var rl *factors.RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("early resend: %v, want the factor's cooldown", err)
		}
	}
	e.clock.Advance(time.Minute)
	if _, err := e.g.Resend(context.Background(), factors.ResendRequest{ChallengeID: ch.ID, Locale: "en"}); err != nil {
		t.Fatalf("resend after the cooldown: %v", err)
	}
	e.clock.Advance(time.Minute)
	_, err := e.g.Resend(context.Background(), factors.ResendRequest{ChallengeID: ch.ID, Locale: "en"})
	refusedBy(t, err, guard.ReasonPhone)
	if n := e.sent(); n != 2 {
		t.Errorf("%d SMS sent, want 2", n)
	}
}

func TestAttemptsPerPhoneAcrossChallenges(t *testing.T) {
	p := open()
	p.Limits.Attempts = guard.Limit{Count: 7, Window: time.Hour}
	e := newEnv(t, p)
	ctx := context.Background()
	verify := func(ch factors.Challenge, answer string) error {
		_, err := e.g.Verify(ctx, ch.ID, answer)
		return err
	}

	// Right answers use up nothing.
	for range 10 {
		ch := e.mustStart(mobileFR, "")
		if err := verify(ch, e.code(mobileFR)); err != nil {
			t.Fatalf("right code: %v", err)
		}
	}
	// Five wrong answers lock the first challenge (the factor's own limit).
	first := e.mustStart(mobileFR, "")
	for range 5 {
		if err := verify(first, "000000"); err == nil {
			t.Fatal("a wrong code was accepted")
		}
	}
	// A new challenge does not give the guesser a new budget: two more wrong
	// answers reach 7, and then even the right code is refused.
	second := e.mustStart(mobileFR, "")
	right := e.code(mobileFR)
	for range 2 {
		var invalid *factors.InvalidCodeError
		if err := verify(second, wrong(right)); !errors.As(err, &invalid) {
			t.Fatalf("wrong code: %v", err)
		}
	}
	lim := refusedBy(t, verify(second, right), guard.ReasonAttempts)
	// The sliding window's previous fixed window may add up to window/count.
	if !errors.Is(lim, factors.ErrTooManyAttempts) || lim.RetryAfter <= 0 || lim.RetryAfter > time.Hour+time.Hour/7 {
		t.Errorf("attempts refusal: %v (retry after %v)", lim, lim.RetryAfter)
	}
	// Another number is not affected.
	other := e.mustStart(mobileFR2, "")
	if err := verify(other, e.code(mobileFR2)); err != nil {
		t.Fatalf("another number: %v", err)
	}
	// Once the window has passed, the right code works (the challenge has not
	// counted the refused answers).
	e.clock.Advance(lim.RetryAfter)
	third := e.mustStart(mobileFR, "")
	if err := verify(third, e.code(mobileFR)); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
}

// 100 parallel wrong answers over several challenges of one number are
// judged exactly as many times as the limit allows.
func TestParallelGuessesCountedExactly(t *testing.T) {
	const limit = 10
	p := open()
	p.Limits.Attempts = guard.Limit{Count: limit, Window: time.Hour}
	e := newEnv(t, p)
	var chs []factors.Challenge
	for range 4 {
		chs = append(chs, e.mustStart(mobileFR, ""))
	}
	var (
		wg                     sync.WaitGroup
		mu                     sync.Mutex
		judged, limited, other int
	)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.g.Verify(context.Background(), chs[i%len(chs)].ID, "000000")
			var lim *factors.LimitError
			var invalid *factors.InvalidCodeError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.As(err, &lim):
				limited++
			case errors.As(err, &invalid), errors.Is(err, factors.ErrTooManyAttempts):
				judged++
			default:
				other++
				t.Errorf("guess: %v", err)
			}
		}()
	}
	wg.Wait()
	if judged != limit || limited != 100-limit {
		t.Errorf("%d guesses judged, %d refused by the limit (other %d); want %d and %d", judged, limited, other, limit, 100-limit)
	}
}

func TestBreaker(t *testing.T) {
	p := open()
	p.Breaker = guard.Breaker{Window: time.Hour, MinSends: 5, MinConversion: 0.5, Cooldown: 30 * time.Minute, Exempt: []string{"ng"}}
	e := newEnv(t, p)
	ctx := context.Background()

	// France converts: every code is used. It never trips.
	for i := range 12 {
		ph := fmt.Sprintf("+3361111%04d", i)
		ch := e.mustStart(ph, "")
		if _, err := e.g.Verify(ctx, ch.ID, e.code(ph)); err != nil {
			t.Fatal(err)
		}
	}
	// Jamaica is pumped: codes go out and nobody answers. The fifth send
	// trips the breaker.
	for i := range 4 {
		e.mustStart(fmt.Sprintf("+1876210%04d", i), "")
	}
	sentBefore := e.sent()
	lim := refusedBy(t, func() error { _, err := e.start("+18762109999", ""); return err }(), guard.ReasonBreaker)
	if !errors.Is(lim, factors.ErrCountryUnavailable) || lim.RetryAfter != 30*time.Minute {
		t.Errorf("breaker refusal: %v, retry after %v", lim, lim.RetryAfter)
	}
	if e.sent() != sentBefore {
		t.Error("the send that tripped the breaker went out")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "breaker opened") || !strings.Contains(logs, "region=JM") {
		t.Errorf("the breaker did not log an error naming the region:\n%s", logs)
	}
	// While open, Jamaica is refused with the time left; France and the rest
	// of +1 still get codes.
	e.clock.Advance(10 * time.Minute)
	lim = refusedBy(t, func() error { _, err := e.start("+18762105555", ""); return err }(), guard.ReasonBreaker)
	if lim.RetryAfter != 20*time.Minute {
		t.Errorf("retry after %v, want the 20m left", lim.RetryAfter)
	}
	e.mustStart(mobileFR, "")
	e.mustStart(fixedOrMobUS, "")
	// Exempt Nigeria never trips.
	for i := range 10 {
		e.mustStart(fmt.Sprintf("+234802123%04d", i), "")
	}
	// After the cool-down the counts start again: four more sends, then it
	// trips again.
	e.clock.Advance(20 * time.Minute)
	for i := range 4 {
		e.mustStart(fmt.Sprintf("+1876211%04d", i), "")
	}
	refusedBy(t, func() error { _, err := e.start("+18762119999", ""); return err }(), guard.ReasonBreaker)
}

func TestStoreFailureIsAnErrorNotARefusal(t *testing.T) {
	e := newEnv(t, guard.DefaultPolicy())
	e.store.Close()
	_, err := e.g.Start(context.Background(), factors.StartRequest{Phone: mobileFR, ClientID: "rp", IP: "192.0.2.1", Locale: "en"})
	var lim *factors.LimitError
	if err == nil || errors.As(err, &lim) {
		t.Fatalf("Start on a closed store: %v, want a plain error", err)
	}
	if _, err := e.g.Verify(context.Background(), "some-challenge", "123456"); err == nil {
		t.Fatal("Verify on a closed store succeeded")
	}
}

func TestUnknownChallengeIsTheFactorsAnswer(t *testing.T) {
	e := newEnv(t, guard.DefaultPolicy())
	if _, err := e.g.Verify(context.Background(), "nope", "123456"); !errors.Is(err, factors.ErrNotFound) {
		t.Errorf("Verify(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := e.g.Resend(context.Background(), factors.ResendRequest{ChallengeID: "nope"}); !errors.Is(err, factors.ErrNotFound) {
		t.Errorf("Resend(unknown) = %v, want ErrNotFound", err)
	}
}

func TestPhoneHash(t *testing.T) {
	a, b := guard.PhoneHash(key, mobileFR), guard.PhoneHash(key, mobileFR2)
	if a == b || len(a) != 22 || strings.Contains(a, "612345678") {
		t.Errorf("PhoneHash: %q, %q", a, b)
	}
	if a != guard.PhoneHash(key, mobileFR) || a == guard.PhoneHash(bytes.Repeat([]byte("x"), 32), mobileFR) {
		t.Error("PhoneHash is not a keyed, deterministic hash")
	}
}

// The store never sees a phone number or an address in clear.
func TestKeysHoldNoPersonalData(t *testing.T) {
	rec := &recordingStore{Store: memory.New()}
	defer rec.Close()
	f, err := smsotp.New(rec, sms.NewOutbox(rec, 10, nil), smsotp.Options{HashKey: key, Origin: "x.example"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.Wrap(f, rec, key, guard.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := g.Start(context.Background(), factors.StartRequest{Phone: mobileFR, ClientID: "rp", IP: "192.0.2.77", Locale: "en"})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = g.Verify(context.Background(), ch.ID, "000000")
	if len(rec.keys) < 8 {
		t.Fatalf("only %d counter keys seen: %v", len(rec.keys), rec.keys)
	}
	for _, k := range rec.keys {
		for _, personal := range []string{"612345678", "192.0.2", "3361234"} {
			if strings.Contains(k, personal) {
				t.Errorf("key %q contains %q", k, personal)
			}
		}
	}
}

// recordingStore records the keys of the counters the guard touches.
type recordingStore struct {
	*memory.Store
	mu   sync.Mutex
	keys []string
}

func (r *recordingStore) record(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, key)
}

func (r *recordingStore) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	r.record(key)
	return r.Store.Allow(ctx, key, limit, window)
}

func (r *recordingStore) AllowEach(ctx context.Context, checks []storage.RateCheck) ([]storage.RateResult, error) {
	for _, c := range checks {
		r.record(c.Key)
	}
	return r.Store.AllowEach(ctx, checks)
}

func (r *recordingStore) AddCounts(ctx context.Context, changes []storage.CountChange) ([]float64, error) {
	for _, c := range changes {
		r.record(c.Key)
	}
	return r.Store.AddCounts(ctx, changes)
}

func (r *recordingStore) AddCount(ctx context.Context, key string, delta int64, window time.Duration) (float64, error) {
	r.record(key)
	return r.Store.AddCount(ctx, key, delta, window)
}

var _ storage.Store = (*recordingStore)(nil)
