package smsotp_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
)

const (
	phone  = "+33612345678"
	origin = "localhost:8080"
)

var hashKey = bytes.Repeat([]byte("k"), 32)

// clock is a settable time source shared by the factor, the store and the outbox.
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

type env struct {
	f     *smsotp.Factor
	store *memory.Store
	clock *clock
}

// newEnv builds the factor on a memory store with the outbox sender (unless
// sender is given) and a deterministic random source.
func newEnv(t testing.TB, sender sms.Sender, opts smsotp.Options) *env {
	t.Helper()
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	store := memory.New(memory.WithNow(clk.Now))
	t.Cleanup(func() { store.Close() })
	if sender == nil {
		sender = sms.NewOutbox(store, 50, clk.Now)
	}
	opts.HashKey = hashKey
	opts.Origin = origin
	opts.Now = clk.Now
	if opts.Rand == nil {
		opts.Rand = rand.NewChaCha8([32]byte{1})
	}
	f, err := smsotp.New(store, sender, opts)
	if err != nil {
		t.Fatalf("smsotp.New: %v", err)
	}
	return &env{f: f, store: store, clock: clk}
}

func (e *env) start(t testing.TB) factors.Challenge {
	t.Helper()
	c, err := e.f.Start(context.Background(), factors.StartRequest{FlowID: "flow1", Phone: phone, Locale: "en", ClientID: "app"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return c
}

// lastSMS returns the newest outbox message and the code on its last line.
func (e *env) lastSMS(t testing.TB) (storage.OutboxMessage, string) {
	t.Helper()
	msgs, err := e.store.ListOutbox(context.Background(), 1)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("ListOutbox: %v, %d messages", err, len(msgs))
	}
	m := msgs[0]
	last := m.Body[strings.LastIndex(m.Body, "\n")+1:]
	prefix := "@" + origin + " #"
	if !strings.HasPrefix(last, prefix) {
		t.Fatalf("last line %q does not start with %q", last, prefix)
	}
	return m, strings.TrimPrefix(last, prefix)
}

func (e *env) outboxLen(t testing.TB) int {
	t.Helper()
	msgs, err := e.store.ListOutbox(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(msgs)
}

// noSecrets fails when an error message carries the code or the full number.
func noSecrets(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		return
	}
	if s := err.Error(); strings.Contains(s, phone) || (code != "" && strings.Contains(s, code)) {
		t.Errorf("error %q reveals the number or the code", s)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	store := memory.New()
	defer store.Close()
	sender := sms.NewOutbox(store, 10, nil)
	ok := smsotp.Options{HashKey: hashKey, Origin: "login.example.com"}
	if _, err := smsotp.New(store, sender, ok); err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*smsotp.Options)
		want   string
	}{
		{"short code", func(o *smsotp.Options) { o.CodeLength = 3 }, "code_length"},
		{"long code", func(o *smsotp.Options) { o.CodeLength = 11 }, "code_length"},
		{"negative ttl", func(o *smsotp.Options) { o.TTL = -time.Minute }, "'ttl'"},
		{"ttl too long", func(o *smsotp.Options) { o.TTL = 2 * time.Hour }, "'ttl'"},
		{"attempts", func(o *smsotp.Options) { o.MaxAttempts = -1 }, "max_attempts"},
		{"cooldown longer than ttl", func(o *smsotp.Options) { o.TTL = 2 * time.Minute; o.ResendCooldown = 3 * time.Minute }, "resend_cooldown"},
		{"resends", func(o *smsotp.Options) { o.MaxResends = 11 }, "max_resends"},
		{"no hash key", func(o *smsotp.Options) { o.HashKey = nil }, "hash_key"},
		{"short hash key", func(o *smsotp.Options) { o.HashKey = hashKey[:31] }, "hash_key"},
		{"no origin", func(o *smsotp.Options) { o.Origin = "" }, "origin"},
		{"origin with scheme", func(o *smsotp.Options) { o.Origin = "https://login.example.com" }, "origin"},
		{"origin with path", func(o *smsotp.Options) { o.Origin = "login.example.com/x" }, "origin"},
		{"origin with space", func(o *smsotp.Options) { o.Origin = "login example" }, "origin"},
		{"unknown policy region", func(o *smsotp.Options) { o.Policy.Allowed = []string{"XX"} }, "policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mutate(&o)
			_, err := smsotp.New(store, sender, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: err = %v, want one naming %s", err, tt.want)
			}
		})
	}
	if _, err := smsotp.New(nil, nil, smsotp.Options{}); err == nil ||
		!strings.Contains(err.Error(), "store") || !strings.Contains(err.Error(), "sender") || !strings.Contains(err.Error(), "hash_key") {
		t.Errorf("New(nil, nil, zero) = %v: want every problem reported at once", err)
	}
}

func TestNameAndAMR(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{})
	if e.f.Name() != "sms" || !slices.Equal(e.f.AMR(), []string{"sms"}) {
		t.Errorf("Name() = %q, AMR() = %q", e.f.Name(), e.f.AMR())
	}
	e.f.AMR()[0] = "pwd"
	if e.f.AMR()[0] != "sms" {
		t.Error("AMR() exposes internal state")
	}
}

func TestStartVerifyThroughOutbox(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{})
	now := e.clock.Now()
	c := e.start(t)

	if id, err := base64.RawURLEncoding.DecodeString(c.ID); err != nil || len(id) != 16 {
		t.Errorf("challenge id %q: want 128 bits, base64url (%v)", c.ID, err)
	}
	want := factors.Challenge{ID: c.ID, Phone: phone, ExpiresAt: now.Add(5 * time.Minute), ResendAt: now.Add(30 * time.Second), ResendsLeft: 3, AttemptsLeft: 5}
	if c != want {
		t.Errorf("Start = %+v, want %+v", c, want)
	}

	m, code := e.lastSMS(t)
	if m.To != phone || m.Locale != "en" || m.ClientID != "app" || !m.SentAt.Equal(now) {
		t.Errorf("outbox message = %+v", m)
	}
	wantBody := code + " is your otpgate sign-in code. It expires in 5 minutes.\n\n@localhost:8080 #" + code
	if m.Body != wantBody {
		t.Errorf("SMS body = %q, want %q", m.Body, wantBody)
	}
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		t.Fatalf("code %q: want 6 digits", code)
	}

	stored, err := e.store.GetChallenge(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.FlowID != "flow1" || stored.Phone != phone || stored.Sends != 1 || stored.MaxAttempts != 5 || !stored.LastSentAt.Equal(now) {
		t.Errorf("stored challenge = %+v", stored)
	}

	res, err := e.f.Verify(context.Background(), c.ID, code)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Phone != phone || !slices.Equal(res.AMR, []string{"sms"}) {
		t.Errorf("Verify = %+v", res)
	}
	// Single use.
	_, err = e.f.Verify(context.Background(), c.ID, code)
	if !errors.Is(err, factors.ErrNotFound) {
		t.Errorf("second Verify: err = %v, want ErrNotFound", err)
	}
	noSecrets(t, err, code)
}

func TestVerifyIgnoresSpaces(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{CodeLength: 8})
	c := e.start(t)
	_, code := e.lastSMS(t)
	if len(code) != 8 {
		t.Fatalf("code %q: want 8 digits", code)
	}
	if _, err := e.f.Verify(context.Background(), c.ID, " "+code[:4]+" "+code[4:]+"\n"); err != nil {
		t.Errorf("Verify with spaces: %v", err)
	}
}

func TestStartInFrench(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{TTL: 10 * time.Minute})
	if _, err := e.f.Start(context.Background(), factors.StartRequest{Phone: phone, Locale: "fr-FR"}); err != nil {
		t.Fatal(err)
	}
	m, code := e.lastSMS(t)
	want := code + " est votre code de connexion otpgate. Il expire dans 10 minutes.\n\n@localhost:8080 #" + code
	if m.Body != want {
		t.Errorf("SMS body = %q, want %q", m.Body, want)
	}
}

// fixedRand yields a known challenge id (16 bytes of 0x11) then the code 987654.
func fixedRand() io.Reader {
	return io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{0x11}, 16)), bytes.NewReader([]byte{9, 8, 7, 6, 5, 4}))
}

func TestStoredChallengeNeverHoldsTheCode(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{Rand: fixedRand()})
	c := e.start(t)
	_, code := e.lastSMS(t)
	if code != "987654" || c.ID != base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x11}, 16)) {
		t.Fatalf("code %q, id %q: the random source was not used as expected", code, c.ID)
	}
	stored, err := e.store.GetChallenge(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range [][]byte{j, fmt.Appendf(nil, "%#v", stored), stored.CodeHash, stored.SealedCode} {
		if bytes.Contains(form, []byte(code)) {
			t.Errorf("stored challenge contains the code in clear: %s", form)
		}
	}

	mac := func(id, code string) []byte {
		m := hmac.New(sha256.New, hashKey)
		m.Write([]byte(id + "\x00" + code))
		return m.Sum(nil)
	}
	if !bytes.Equal(stored.CodeHash, mac(c.ID, code)) {
		t.Error("CodeHash is not HMAC-SHA256(key, id \\x00 code)")
	}
	if bytes.Equal(stored.CodeHash, mac("other", code)) {
		t.Error("CodeHash is not bound to the challenge id")
	}
	// SealedCode is AES-256-GCM under HKDF-SHA256(HashKey, "otpgate sms code
	// seal v1"), nonce ‖ ciphertext ‖ tag, bound to the challenge id.
	key, err := hkdf.Key(sha256.New, hashKey, nil, "otpgate sms code seal v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	ns := gcm.NonceSize()
	if len(stored.SealedCode) != ns+len(code)+gcm.Overhead() {
		t.Fatalf("sealed code of %d bytes, want %d", len(stored.SealedCode), ns+len(code)+gcm.Overhead())
	}
	if plain, err := gcm.Open(nil, stored.SealedCode[:ns], stored.SealedCode[ns:], []byte(c.ID)); err != nil || string(plain) != code {
		t.Errorf("sealed code does not open to the code under the derived key: %v", err)
	}
	if _, err := gcm.Open(nil, stored.SealedCode[:ns], stored.SealedCode[ns:], []byte("other")); err == nil {
		t.Error("sealed code is not bound to the challenge id")
	}
	unkeyed := sha256.Sum256([]byte(code))
	if bytes.Equal(stored.CodeHash, unkeyed[:]) {
		t.Error("CodeHash is an unkeyed hash")
	}
}

func TestWrongCodeCountsDownThenLocks(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{})
	c := e.start(t)
	_, code := e.lastSMS(t)
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
	// Malformed answers are wrong answers: they cost an attempt too.
	answers := []string{wrong, "abc", "", "12345"}
	for i, a := range answers {
		_, err := e.f.Verify(context.Background(), c.ID, a)
		var ic *factors.InvalidCodeError
		if !errors.As(err, &ic) || ic.Remaining != 4-i {
			t.Fatalf("Verify(%q) #%d: err = %v, want InvalidCodeError{Remaining: %d}", a, i+1, err, 4-i)
		}
		noSecrets(t, err, code)
	}
	_, err := e.f.Verify(context.Background(), c.ID, "1234567")
	if !errors.Is(err, factors.ErrTooManyAttempts) {
		t.Fatalf("fifth wrong answer: err = %v, want ErrTooManyAttempts", err)
	}
	_, err = e.f.Verify(context.Background(), c.ID, code)
	if !errors.Is(err, factors.ErrTooManyAttempts) {
		t.Errorf("right code after lock: err = %v, want ErrTooManyAttempts", err)
	}
	_, err = e.f.Resend(context.Background(), factors.ResendRequest{ChallengeID: c.ID})
	if !errors.Is(err, factors.ErrTooManyAttempts) {
		t.Errorf("Resend after lock: err = %v, want ErrTooManyAttempts", err)
	}
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}

func TestExpired(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{})
	c := e.start(t)
	_, code := e.lastSMS(t)
	e.clock.Advance(5*time.Minute + time.Second)
	if _, err := e.f.Verify(context.Background(), c.ID, code); !errors.Is(err, factors.ErrExpired) {
		t.Errorf("Verify after TTL: err = %v, want ErrExpired", err)
	}
	e.clock.Advance(storage.ChallengeGrace)
	if _, err := e.f.Verify(context.Background(), c.ID, code); !errors.Is(err, factors.ErrNotFound) {
		t.Errorf("Verify after the grace period: err = %v, want ErrNotFound", err)
	}
}

func TestResendCooldownThenSameCode(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{})
	ctx := context.Background()
	c := e.start(t)
	_, oldCode := e.lastSMS(t)

	_, err := e.f.Resend(ctx, factors.ResendRequest{ChallengeID: c.ID, Locale: "fr", ClientID: "app"})
	var rl *factors.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 30*time.Second {
		t.Fatalf("immediate Resend: err = %v, want RateLimitedError{30s}", err)
	}
	e.clock.Advance(12 * time.Second)
	_, err = e.f.Resend(ctx, factors.ResendRequest{ChallengeID: c.ID})
	if !errors.As(err, &rl) || rl.RetryAfter != 18*time.Second {
		t.Fatalf("Resend after 12s: err = %v, want RateLimitedError{18s}", err)
	}
	if n := e.outboxLen(t); n != 1 {
		t.Fatalf("refused resends sent SMS: %d in the outbox", n)
	}

	e.clock.Advance(18 * time.Second)
	now := e.clock.Now()
	c2, err := e.f.Resend(ctx, factors.ResendRequest{ChallengeID: c.ID, Locale: "fr", ClientID: "app"})
	if err != nil {
		t.Fatalf("Resend after the cooldown: %v", err)
	}
	// The code and its expiry are the first send's; only the send is counted.
	want := factors.Challenge{ID: c.ID, Phone: phone, ExpiresAt: c.ExpiresAt, ResendAt: now.Add(30 * time.Second), ResendsLeft: 2, AttemptsLeft: 5}
	if c2 != want {
		t.Errorf("Resend = %+v, want %+v", c2, want)
	}
	m, code := e.lastSMS(t)
	if m.To != phone || m.Locale != "fr" || !strings.Contains(m.Body, "est votre code") {
		t.Errorf("resent message = %+v", m)
	}
	if code != oldCode {
		t.Fatalf("resend within the validity texted %s, want the same code %s", code, oldCode)
	}
	// 4m30s left: the SMS promises whole minutes only.
	if !strings.Contains(m.Body, "expire dans 4 minutes") {
		t.Errorf("resent message does not give the time left: %q", m.Body)
	}
	if n := e.outboxLen(t); n != 2 {
		t.Fatalf("%d SMS in the outbox, want 2", n)
	}
	if _, err := e.f.Verify(ctx, c.ID, code); err != nil {
		t.Errorf("the resent code: %v", err)
	}
}

// A resend never resets the attempts: wrong answers before and after it count
// down one budget.
func TestResendKeepsAttempts(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{MaxAttempts: 3})
	ctx := context.Background()
	c := e.start(t)
	_, code := e.lastSMS(t)
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
	var ic *factors.InvalidCodeError
	if _, err := e.f.Verify(ctx, c.ID, wrong); !errors.As(err, &ic) || ic.Remaining != 2 {
		t.Fatalf("first wrong answer: %v, want 2 remaining", err)
	}
	e.clock.Advance(30 * time.Second)
	c2, err := e.f.Resend(ctx, factors.ResendRequest{ChallengeID: c.ID})
	if err != nil || c2.AttemptsLeft != 2 {
		t.Fatalf("Resend = %+v, %v; want AttemptsLeft 2", c2, err)
	}
	if _, resent := e.lastSMS(t); resent != code {
		t.Fatalf("resend within the validity texted %s, want %s", resent, code)
	}
	if _, err := e.f.Verify(ctx, c.ID, wrong); !errors.As(err, &ic) || ic.Remaining != 1 {
		t.Fatalf("wrong answer after the resend: %v, want 1 remaining", err)
	}
	e.clock.Advance(30 * time.Second)
	c3, err := e.f.Resend(ctx, factors.ResendRequest{ChallengeID: c.ID})
	if err != nil || c3.AttemptsLeft != 1 {
		t.Fatalf("second Resend = %+v, %v; want AttemptsLeft 1", c3, err)
	}
	if _, err := e.f.Verify(ctx, c.ID, wrong); !errors.Is(err, factors.ErrTooManyAttempts) {
		t.Fatalf("last wrong answer: %v, want ErrTooManyAttempts", err)
	}
	e.clock.Advance(30 * time.Second)
	if _, err := e.f.Resend(ctx, factors.ResendRequest{ChallengeID: c.ID}); !errors.Is(err, factors.ErrTooManyAttempts) {
		t.Errorf("Resend of a locked challenge: %v, want ErrTooManyAttempts", err)
	}
	if _, err := e.f.Verify(ctx, c.ID, code); !errors.Is(err, factors.ErrTooManyAttempts) {
		t.Errorf("right code on a locked challenge: %v, want ErrTooManyAttempts", err)
	}
}

func TestResendLimit(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{MaxResends: 2})
	c := e.start(t)
	for i := range 2 {
		e.clock.Advance(30 * time.Second)
		c2, err := e.f.Resend(context.Background(), factors.ResendRequest{ChallengeID: c.ID})
		if err != nil || c2.ResendsLeft != 1-i {
			t.Fatalf("Resend #%d = %+v, %v; want ResendsLeft %d", i+1, c2, err, 1-i)
		}
	}
	e.clock.Advance(time.Minute)
	_, err := e.f.Resend(context.Background(), factors.ResendRequest{ChallengeID: c.ID})
	if !errors.Is(err, factors.ErrTooManyResends) {
		t.Errorf("third Resend: err = %v, want ErrTooManyResends", err)
	}
	if n := e.outboxLen(t); n != 3 {
		t.Errorf("%d SMS sent, want 3", n)
	}
	// The last code still works.
	_, code := e.lastSMS(t)
	if _, err := e.f.Verify(context.Background(), c.ID, code); err != nil {
		t.Errorf("Verify last code: %v", err)
	}
}

func TestResendAfterExpiryRenewsTheCode(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{})
	ctx := context.Background()
	c := e.start(t)
	_, oldCode := e.lastSMS(t)
	wrong := fmt.Sprintf("%06d", (atoi(oldCode)+1)%1000000)
	var ic *factors.InvalidCodeError
	if _, err := e.f.Verify(ctx, c.ID, wrong); !errors.As(err, &ic) || ic.Remaining != 4 {
		t.Fatalf("wrong answer: %v, want 4 remaining", err)
	}
	e.clock.Advance(6 * time.Minute)
	now := e.clock.Now()
	c2, err := e.f.Resend(ctx, factors.ResendRequest{ChallengeID: c.ID})
	if err != nil {
		t.Fatalf("Resend after expiry: %v", err)
	}
	if !c2.ExpiresAt.Equal(now.Add(5*time.Minute)) || c2.AttemptsLeft != 4 {
		t.Errorf("Resend = %+v; want a new 5-minute code and the 4 attempts left", c2)
	}
	m, code := e.lastSMS(t)
	if code == oldCode {
		t.Fatalf("resend after expiry texted the expired code %s", code)
	}
	if !strings.Contains(m.Body, "expires in 5 minutes") {
		t.Errorf("renewed code message: %q", m.Body)
	}
	if _, err := e.f.Verify(ctx, c.ID, oldCode); !errors.As(err, &ic) || ic.Remaining != 3 {
		t.Errorf("expired code after the renewal: %v, want InvalidCodeError{Remaining: 3}", err)
	}
	if _, err := e.f.Verify(ctx, c.ID, code); err != nil {
		t.Errorf("Verify renewed code: %v", err)
	}
}

// Less than a minute before its expiry a code is not worth re-sending (the SMS
// could not promise a whole minute): a new one goes out.
func TestResendNearExpiryRenewsTheCode(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{})
	c := e.start(t)
	_, oldCode := e.lastSMS(t)
	e.clock.Advance(4*time.Minute + 30*time.Second)
	c2, err := e.f.Resend(context.Background(), factors.ResendRequest{ChallengeID: c.ID})
	if err != nil || !c2.ExpiresAt.After(c.ExpiresAt) {
		t.Fatalf("Resend 30s before expiry = %+v, %v; want a new code", c2, err)
	}
	if _, code := e.lastSMS(t); code == oldCode {
		t.Errorf("resend 30s before expiry texted the old code")
	}
}

// A sealed code that does not open (another hash key, or copied from another
// challenge) is never texted: the resend falls back to a new code.
func TestResendWithUnopenableSealRenewsTheCode(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{})
	c := e.start(t)
	_, oldCode := e.lastSMS(t)
	other, err := smsotp.New(e.store, sms.NewOutbox(e.store, 50, e.clock.Now), smsotp.Options{
		HashKey: bytes.Repeat([]byte("o"), 32), Origin: origin, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * time.Second)
	if _, err := other.Resend(context.Background(), factors.ResendRequest{ChallengeID: c.ID}); err != nil {
		t.Fatalf("Resend under another key: %v", err)
	}
	if _, code := e.lastSMS(t); code == oldCode {
		t.Errorf("a factor with another key texted the code sealed under the first")
	}
}

func TestUnknownChallenge(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{})
	for _, id := range []string{"", "nope", strings.Repeat("x", 10000)} {
		if _, err := e.f.Verify(context.Background(), id, "123456"); !errors.Is(err, factors.ErrNotFound) {
			t.Errorf("Verify(%.10q): err = %v, want ErrNotFound", id, err)
		}
		if _, err := e.f.Resend(context.Background(), factors.ResendRequest{ChallengeID: id}); !errors.Is(err, factors.ErrNotFound) {
			t.Errorf("Resend(%.10q): err = %v, want ErrNotFound", id, err)
		}
	}
	if n := e.outboxLen(t); n != 0 {
		t.Errorf("%d SMS sent for unknown challenges", n)
	}
}

func TestStartRefusesBadNumbers(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{Policy: factors.PhonePolicy{Allowed: []string{"FR"}}})
	tests := []struct {
		phone string
		want  error
	}{
		{"0612345678", factors.ErrInvalidPhone},
		{"+33 6 12 34 56 78", factors.ErrInvalidPhone}, // not E.164
		{"+3361234", factors.ErrInvalidPhone},
		{"", factors.ErrInvalidPhone},
		{"+12015550123", factors.ErrRegionNotAllowed},
	}
	for _, tt := range tests {
		_, err := e.f.Start(context.Background(), factors.StartRequest{Phone: tt.phone})
		if !errors.Is(err, tt.want) {
			t.Errorf("Start(%q): err = %v, want %v", tt.phone, err, tt.want)
		}
	}
	if n := e.outboxLen(t); n != 0 {
		t.Errorf("%d SMS sent to refused numbers", n)
	}
}

// failingSender is a provider that is down, or down from its nth call on.
type failingSender struct {
	next  sms.Sender
	okFor int32 // calls that succeed before failures start
	calls atomic.Int32
}

var errProviderDown = errors.New("provider: 503 service unavailable")

func (s *failingSender) Send(ctx context.Context, m sms.Message) (string, error) {
	if s.calls.Add(1) > s.okFor {
		return "", errProviderDown
	}
	return s.next.Send(ctx, m)
}

func TestStartDeliveryFailureLeavesNoChallenge(t *testing.T) {
	e := newEnv(t, &failingSender{}, smsotp.Options{Rand: rand.NewChaCha8([32]byte{7})})
	_, err := e.f.Start(context.Background(), factors.StartRequest{Phone: phone})
	var de *factors.DeliveryError
	if !errors.As(err, &de) || !errors.Is(err, errProviderDown) {
		t.Fatalf("Start: err = %v, want DeliveryError wrapping the provider's error", err)
	}
	noSecrets(t, err, "")
	// The same seed gives the id the factor drew first.
	var id [16]byte
	rand.NewChaCha8([32]byte{7}).Read(id[:])
	_, err = e.store.GetChallenge(context.Background(), base64.RawURLEncoding.EncodeToString(id[:]))
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("challenge after a failed delivery: err = %v, want ErrNotFound", err)
	}
}

func TestResendDeliveryFailure(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{})
	sender := &failingSender{next: sms.NewOutbox(e.store, 10, e.clock.Now), okFor: 1}
	f, err := smsotp.New(e.store, sender, smsotp.Options{HashKey: hashKey, Origin: origin, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Start(context.Background(), factors.StartRequest{Phone: phone})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * time.Second)
	_, err = f.Resend(context.Background(), factors.ResendRequest{ChallengeID: c.ID})
	var de *factors.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("Resend: err = %v, want DeliveryError", err)
	}
	stored, err := e.store.GetChallenge(context.Background(), c.ID)
	if err != nil || stored.Sends != 2 {
		t.Errorf("challenge after a failed resend = %+v, %v; want it kept with the send counted", stored, err)
	}
}

// Of many parallel correct answers exactly one succeeds.
func TestConcurrentVerify(t *testing.T) {
	e := newEnv(t, nil, smsotp.Options{})
	c := e.start(t)
	_, code := e.lastSMS(t)
	var ok, notFound atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			_, err := e.f.Verify(context.Background(), c.ID, code)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, factors.ErrNotFound):
				notFound.Add(1)
			default:
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || notFound.Load() != 31 {
		t.Errorf("%d successes, %d not found; want 1 and 31", ok.Load(), notFound.Load())
	}
}

func BenchmarkVerify(b *testing.B) {
	e := newEnv(b, nil, smsotp.Options{})
	ctx := context.Background()
	now := e.clock.Now()
	code := "123456"
	mac := func(id, code string) []byte {
		m := hmac.New(sha256.New, hashKey)
		m.Write([]byte(id + "\x00" + code))
		return m.Sum(nil)
	}
	seq := 0
	create := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			seq++
			ids[i] = fmt.Sprintf("bench-%d", seq)
			err := e.store.CreateChallenge(ctx, storage.Challenge{
				ID: ids[i], Phone: phone, CodeHash: mac(ids[i], code),
				MaxAttempts: 5, Sends: 1, LastSentAt: now, ExpiresAt: now.Add(time.Hour), CreatedAt: now,
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		return ids
	}
	b.Run("correct", func(b *testing.B) {
		ids := create(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := e.f.Verify(ctx, ids[i], code); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wrong", func(b *testing.B) {
		ids := create(b.N/4 + 1)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			// Four wrong answers per challenge stay under the lock-out.
			var ic *factors.InvalidCodeError
			if _, err := e.f.Verify(ctx, ids[i/4], "654321"); !errors.As(err, &ic) {
				b.Fatal(err)
			}
		}
	})
}
