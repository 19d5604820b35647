// Package guard puts abuse limits in front of any factors.Factor: it decides,
// before a code is sent (Start, Resend), whether this SMS may leave, and,
// before an answer is judged (Verify), whether this phone number may be
// guessed at again.
//
// It enforces the number-type policy (no premium-rate or shared-cost numbers,
// nothing that cannot receive an SMS), rate limits per client IP, phone
// number, number prefix, OAuth client and country calling code, SMS budgets
// per client and for the whole service, wrong answers per phone number across
// challenges, and a breaker per region that stops sending where codes are
// sent but never used (SMS pumping). All counts live in the store, so the
// limits hold across instances. Refusals are *factors.LimitError values whose
// Reason names the limit for logs only. For metrics, refusals and the sends
// the budgets count go to an observer, and Budgets reads how much of each SMS
// budget is spent.
//
// Personal data never reaches the store in clear: phone numbers, prefixes and
// IP addresses in counter keys are HMACs under a key the caller derives from
// the system secret.
//
// guard imports factors and storage; it never imports provider or cmd.
package guard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/storage"
)

// Store is what the guard keeps its counts in, and where it reads the phone
// number of a challenge it is asked to resend or verify. storage.Store has it.
type Store interface {
	storage.RateLimiter
	storage.Counters
	GetChallenge(ctx context.Context, id string) (storage.Challenge, error)
}

// MinKeyLength is the shortest HMAC key Wrap accepts, in bytes.
const MinKeyLength = 32

// Guard is a factors.Factor that applies a Policy around another one. It is
// safe for concurrent use.
type Guard struct {
	next   factors.Factor
	store  Store
	key    []byte
	policy Policy
	types  map[phonenumbers.PhoneNumberType]bool
	exempt map[string]bool
	log    *slog.Logger
	obs    factors.Observer // nil: none
	// budgetObs is obs when it also counts budget use (nil: none).
	budgetObs BudgetObserver
	// clients are the ids of the clients whose budget this guard has
	// counted a send against, for Budgets: the registered clients the
	// provider serves, so the set stays small.
	clients sync.Map
}

var _ factors.Factor = (*Guard)(nil)

// Option configures a Guard.
type Option func(*Guard) error

// WithLogger sets where the guard reports what operators must act on: an SMS
// budget spent, a breaker opened, a store failure while taking a count back
// (default slog.Default()). Ordinary refusals are not logged here: they are
// returned, and the caller audits them.
func WithLogger(l *slog.Logger) Option {
	return func(g *Guard) error {
		if l == nil {
			return errors.New("guard: WithLogger: nil logger")
		}
		g.log = l
		return nil
	}
}

// WithObserver reports every refused send (its calling code and the limit's
// Reason) to o and, if o is also a BudgetObserver, every send counted against
// an SMS budget.
func WithObserver(o factors.Observer) Option {
	return func(g *Guard) error {
		g.obs = o
		g.budgetObs, _ = o.(BudgetObserver)
		return nil
	}
}

// Wrap returns next behind the limits of p. key (at least MinKeyLength bytes)
// keys the HMACs that stand for phone numbers and addresses in the store.
func Wrap(next factors.Factor, store Store, key []byte, p Policy, opts ...Option) (*Guard, error) {
	var errs []error
	if next == nil {
		errs = append(errs, errors.New("guard: a factor is required"))
	}
	if store == nil {
		errs = append(errs, errors.New("guard: a store is required"))
	}
	if len(key) < MinKeyLength {
		errs = append(errs, fmt.Errorf("guard: the key must be at least %d bytes, got %d", MinKeyLength, len(key)))
	}
	if p.NumberTypes == nil {
		p.NumberTypes = DefaultNumberTypes
	}
	errs = append(errs, p.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	g := &Guard{
		next:   next,
		store:  store,
		key:    append([]byte(nil), key...),
		policy: p,
		types:  map[phonenumbers.PhoneNumberType]bool{},
		exempt: map[string]bool{},
		log:    slog.Default(),
	}
	for _, t := range p.NumberTypes {
		g.types[numberTypes[strings.ToLower(strings.TrimSpace(t))]] = true
	}
	for _, r := range p.Breaker.Exempt {
		g.exempt[strings.ToUpper(strings.TrimSpace(r))] = true
	}
	for _, o := range opts {
		if err := o(g); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Name returns the wrapped factor's name.
func (g *Guard) Name() string { return g.next.Name() }

// AMR returns the wrapped factor's method references.
func (g *Guard) AMR() []string { return g.next.AMR() }

// Start checks the number's type, the breaker of its region and every send
// limit, then starts the wrapped factor. Refusals are *factors.LimitError
// (or factors.ErrNumberTypeNotAllowed); a refused send counts against no limit.
func (g *Guard) Start(ctx context.Context, req factors.StartRequest) (factors.Challenge, error) {
	n, err := parseNumber(req.Phone)
	if err != nil {
		return factors.Challenge{}, err
	}
	held, err := g.beforeSend(ctx, n, req.ClientID, req.IP)
	if err != nil {
		return factors.Challenge{}, err
	}
	ch, err := g.next.Start(ctx, req)
	g.afterSend(ctx, held, err)
	return ch, err
}

// Resend applies Start's checks to the challenge's number, then asks the
// wrapped factor for a new code.
func (g *Guard) Resend(ctx context.Context, req factors.ResendRequest) (factors.Challenge, error) {
	c, err := g.store.GetChallenge(ctx, req.ChallengeID)
	if errors.Is(err, storage.ErrNotFound) {
		return g.next.Resend(ctx, req) // it answers for unknown challenges
	}
	if err != nil {
		return factors.Challenge{}, fmt.Errorf("guard: read challenge: %w", err)
	}
	n, err := parseNumber(c.Phone)
	if err != nil {
		return factors.Challenge{}, err
	}
	held, err := g.beforeSend(ctx, n, req.ClientID, req.IP)
	if err != nil {
		return factors.Challenge{}, err
	}
	ch, err := g.next.Resend(ctx, req)
	g.afterSend(ctx, held, err)
	return ch, err
}

// Verify counts the answer against the challenge's phone number before the
// wrapped factor judges it, so that parallel guesses are counted exactly, and
// takes it back unless it was a wrong (or refused) answer: only failures use
// up the number's attempts. A success counts as a conversion for the breaker.
func (g *Guard) Verify(ctx context.Context, challengeID, answer string) (factors.Result, error) {
	var held *reservation
	if l := g.policy.Limits.Attempts; l.on() {
		c, err := g.store.GetChallenge(ctx, challengeID)
		switch {
		case errors.Is(err, storage.ErrNotFound): // the factor answers for unknown challenges
		case err != nil:
			return factors.Result{}, fmt.Errorf("guard: read challenge: %w", err)
		default:
			key := limitKey(ReasonAttempts, l, g.hash("phone", c.Phone))
			ok, retry, err := g.store.Allow(ctx, key, l.Count, l.Window)
			if err != nil {
				return factors.Result{}, fmt.Errorf("guard: limit %s: %w", ReasonAttempts, err)
			}
			if !ok {
				return factors.Result{}, &factors.LimitError{Reason: ReasonAttempts, RetryAfter: retry, Err: factors.ErrTooManyAttempts}
			}
			held = &reservation{}
			held.add(key, l.Window)
		}
	}
	res, err := g.next.Verify(ctx, challengeID, answer)
	var changes []storage.CountChange
	if held != nil && (err == nil || errors.Is(err, factors.ErrExpired) || errors.Is(err, factors.ErrNotFound)) {
		// Right, or never compared with a live code: not a guess.
		changes = held.takeBack()
	}
	if err == nil {
		if c, ok := g.verifiedChange(res.Phone); ok {
			changes = append(changes, c) // for the pumping breaker
		}
	}
	g.addCounts(ctx, changes)
	return res, err
}

// reservation is what one request counted, to be taken back if it sends nothing.
type reservation struct {
	counts   []heldCount
	budgets  []string // the SMS budgets among counts (ReasonBudget, ReasonClientBudget)
	clientID string   // whose client budget
}

type heldCount struct {
	key    string
	window time.Duration
}

func (r *reservation) add(key string, window time.Duration) {
	r.counts = append(r.counts, heldCount{key, window})
}

// beforeSend decides whether an SMS may go to n, counting it against every
// limit. It returns what it counted, or a refusal, having taken back what it
// counted.
func (g *Guard) beforeSend(ctx context.Context, n number, clientID, ip string) (*reservation, error) {
	held, err := g.checkSend(ctx, n, clientID, ip)
	var lerr *factors.LimitError
	if g.obs != nil && errors.As(err, &lerr) {
		g.obs.SMSRefused(n.countryCode, lerr.Reason)
	}
	return held, err
}

// checkSend is beforeSend before the refusal is reported.
func (g *Guard) checkSend(ctx context.Context, n number, clientID, ip string) (*reservation, error) {
	if !g.types[n.typ] {
		return nil, &factors.LimitError{Reason: ReasonNumberType, Err: factors.ErrNumberTypeNotAllowed}
	}
	b := g.policy.Breaker
	breaker := b.on() && !g.exempt[n.region]
	if breaker {
		left, err := g.store.Latch(ctx, breakerKey(n.region))
		if err != nil {
			return nil, fmt.Errorf("guard: read breaker: %w", err)
		}
		if left > 0 {
			return nil, &factors.LimitError{Reason: ReasonBreaker, RetryAfter: left, Err: factors.ErrCountryUnavailable}
		}
	}
	held := &reservation{clientID: clientID}
	counters := g.sendCounters(n, clientID, ip)
	checks := make([]storage.RateCheck, len(counters))
	for i, c := range counters {
		checks[i] = storage.RateCheck{Key: c.key, Limit: c.limit.Count, Window: c.limit.Window}
	}
	// Every limit in one round trip. Each counts on its own, so when one
	// refuses, the others that counted this send take it back. After a store
	// error the checks known to have counted take it back too; the others
	// keep what they may have counted, which errs on the side of refusing.
	results, err := g.store.AllowEach(ctx, checks)
	if err != nil {
		for i, r := range results {
			if r.Allowed {
				held.add(counters[i].key, counters[i].limit.Window)
			}
		}
		g.release(ctx, held)
		return nil, fmt.Errorf("guard: limits: %w", err)
	}
	var refused *factors.LimitError
	for i, c := range counters {
		if !results[i].Allowed {
			if refused == nil { // the first in checking order names the refusal
				refused = &factors.LimitError{Reason: c.name, RetryAfter: results[i].RetryAfter}
				if c.name == ReasonBudget || c.name == ReasonClientBudget {
					refused.Err = factors.ErrSMSUnavailable
					g.log.ErrorContext(ctx, "guard: SMS budget spent, sending stopped", "limit", c.name,
						"budget", c.limit.String(), "client", clientID, "retry_after", results[i].RetryAfter.Round(time.Second))
				}
			}
			continue
		}
		held.add(c.key, c.limit.Window)
		if c.name == ReasonBudget || c.name == ReasonClientBudget {
			held.budgets = append(held.budgets, c.name)
		}
	}
	if refused != nil {
		g.release(ctx, held)
		return nil, refused
	}
	if breaker {
		// Count the send and read the verifications in one round trip.
		counts, err := g.store.AddCounts(ctx, []storage.CountChange{
			{Key: sentKey(n.region, b.Window), Delta: 1, Window: b.Window},
			{Key: verifiedKey(n.region, b.Window), Delta: 0, Window: b.Window},
		})
		if err != nil {
			if len(counts) > 0 && !math.IsNaN(counts[0]) {
				held.add(sentKey(n.region, b.Window), b.Window) // it counted: take it back too
			}
			g.release(ctx, held)
			return nil, fmt.Errorf("guard: breaker counts: %w", err)
		}
		held.add(sentKey(n.region, b.Window), b.Window)
		sent, verified := counts[0], counts[1]
		if sent >= float64(b.MinSends) && verified < b.MinConversion*sent {
			g.trip(ctx, n.region, sent, verified)
			g.release(ctx, held)
			return nil, &factors.LimitError{Reason: ReasonBreaker, RetryAfter: b.Cooldown, Err: factors.ErrCountryUnavailable}
		}
	}
	return held, nil
}

// afterSend takes back the counts of a send that did not happen, and reports
// the budgets a kept one spent. A delivery failure keeps them: the provider
// may have delivered (and billed) it anyway.
func (g *Guard) afterSend(ctx context.Context, held *reservation, err error) {
	var delivery *factors.DeliveryError
	if err != nil && !errors.As(err, &delivery) {
		g.release(ctx, held)
		return
	}
	g.spend(held)
}

// release takes back every count of held, in one round trip.
func (g *Guard) release(ctx context.Context, held *reservation) {
	if held == nil {
		return
	}
	g.addCounts(ctx, held.takeBack())
}

// takeBack returns the changes that undo what r counted, and forgets it.
func (r *reservation) takeBack() []storage.CountChange {
	changes := make([]storage.CountChange, len(r.counts))
	for i, c := range r.counts {
		changes[i] = storage.CountChange{Key: c.key, Delta: -1, Window: c.window}
	}
	r.counts, r.budgets = nil, nil
	return changes
}

// addCounts applies changes in one round trip, even when ctx has ended: the
// request is over, and what it counted must not outlive it (nor a
// verification go uncounted). A failure is logged: the caller's answer stands.
func (g *Guard) addCounts(ctx context.Context, changes []storage.CountChange) {
	if len(changes) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if _, err := g.store.AddCounts(ctx, changes); err != nil {
		g.log.WarnContext(ctx, "guard: cannot update counts", "changes", len(changes), "err", err)
	}
}

// trip opens the breaker of region for the cool-down and starts its counts
// again from zero, so that the next evaluation sees only traffic sent after
// the cool-down.
func (g *Guard) trip(ctx context.Context, region string, sent, verified float64) {
	b := g.policy.Breaker
	ctx = context.WithoutCancel(ctx)
	if err := g.store.SetLatch(ctx, breakerKey(region), b.Cooldown); err != nil {
		g.log.ErrorContext(ctx, "guard: cannot open the pumping breaker", "region", region, "err", err)
	}
	if _, err := g.store.AddCounts(ctx, []storage.CountChange{
		{Key: sentKey(region, b.Window), Delta: -int64(math.Ceil(sent)), Window: b.Window},
		{Key: verifiedKey(region, b.Window), Delta: -int64(math.Ceil(verified)), Window: b.Window},
	}); err != nil {
		g.log.WarnContext(ctx, "guard: cannot reset the breaker counts", "region", region, "err", err)
	}
	g.log.ErrorContext(ctx, "guard: SMS pumping breaker opened: codes sent to this region are not being used; sending there stops for the cool-down",
		"region", region, "sent", int(math.Round(sent)), "verified", int(math.Round(verified)),
		"conversion", fmt.Sprintf("%.2f", verified/sent), "min_conversion", b.MinConversion,
		"window", b.Window, "cooldown", b.Cooldown)
}

// verifiedChange is the change that counts a successful verification of
// e164 for the pumping breaker, when the breaker watches its region.
func (g *Guard) verifiedChange(e164 string) (storage.CountChange, bool) {
	b := g.policy.Breaker
	if !b.on() {
		return storage.CountChange{}, false
	}
	n, err := parseNumber(e164)
	if err != nil || g.exempt[n.region] {
		return storage.CountChange{}, false
	}
	return storage.CountChange{Key: verifiedKey(n.region, b.Window), Delta: 1, Window: b.Window}, true
}

// counter is one send limit applied to one request: its name, limit and key.
type counter struct {
	name  string
	limit Limit
	key   string
}

// sendCounters lists the send limits that apply to an SMS to n requested by
// clientID from ip, in checking order.
func (g *Guard) sendCounters(n number, clientID, ip string) []counter {
	phone := g.hash("phone", n.e164)
	values := map[string]string{
		ReasonPhone:        phone,
		ReasonPhoneDaily:   phone,
		ReasonPrefix:       g.hash("prefix", n.prefix()),
		ReasonClient:       clientID,
		ReasonCountry:      strconv.Itoa(n.countryCode),
		ReasonClientBudget: clientID,
		ReasonBudget:       serviceBudget,
	}
	if bucket, ok := ipBucket(ip); ok {
		values[ReasonIP] = g.hash("ip", bucket)
	}
	var out []counter
	for _, nl := range g.policy.Limits.sends() {
		v, ok := values[nl.name]
		if !nl.limit.on() || !ok {
			continue
		}
		out = append(out, counter{nl.name, nl.limit, limitKey(nl.name, nl.limit, v)})
	}
	return out
}

// hash is the HMAC that stands for personal data in store keys.
func (g *Guard) hash(kind, value string) string {
	h := hmac.New(sha256.New, g.key)
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// PhoneHash is the HMAC that stands for an E.164 number in the guard's
// counter keys, under key: 22 characters that logs can carry to correlate
// events about one number without holding the number.
func PhoneHash(key []byte, e164 string) string {
	return (&Guard{key: key}).hash("phone", e164)
}

// Key layout: the window is part of every key (a backend may keep one counter
// per key whatever the window), so a changed window starts a new count.
func limitKey(name string, l Limit, value string) string {
	return "guard:" + name + ":" + l.Window.String() + ":" + value
}

func sentKey(region string, window time.Duration) string {
	return "guard:sent:" + window.String() + ":" + region
}

func verifiedKey(region string, window time.Duration) string {
	return "guard:verified:" + window.String() + ":" + region
}

func breakerKey(region string) string { return "guard:breaker:" + region }

// ipBucket is the address a per-IP limit counts: the address itself for IPv4,
// its /64 for IPv6 (one subscriber's usual allocation). ok is false for an
// empty ip: a caller that does not know the address is not limited per IP.
func ipBucket(ip string) (string, bool) {
	ip = strings.TrimSpace(ip)
	if ip == "" {
		return "", false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "?" + ip, true // unparsable: still one bucket per distinct value
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.String(), true
		}
	}
	return a.String(), true
}

// number is a parsed phone number with what the limits need to know of it.
type number struct {
	e164        string
	region      string // ISO 3166-1 alpha-2, "001" for non-geographic
	countryCode int
	typ         phonenumbers.PhoneNumberType
}

// prefix is the number minus its last 4 digits: the block a number range
// bought for pumping shares.
func (n number) prefix() string {
	if len(n.e164) <= 5 {
		return n.e164
	}
	return n.e164[:len(n.e164)-4]
}

func parseNumber(e164 string) (number, error) {
	p, err := factors.ParsePhone(e164, "")
	if err != nil {
		return number{}, err
	}
	if p.E164 != e164 {
		return number{}, fmt.Errorf("%w: not in E.164 form", factors.ErrInvalidPhone)
	}
	return number{e164: p.E164, region: p.Region, countryCode: p.CountryCode, typ: numberType(p.E164)}, nil
}

// numberType asks the library for the type of a valid E.164 number; a panic
// on hostile input counts as UNKNOWN.
func numberType(e164 string) (t phonenumbers.PhoneNumberType) {
	defer func() {
		if recover() != nil {
			t = phonenumbers.UNKNOWN
		}
	}()
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return phonenumbers.UNKNOWN
	}
	return phonenumbers.GetNumberType(num)
}
