package sms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/otpgate/otpgate/factors"
)

// Breaker defaults.
const (
	DefaultBreakerFailures = 3
	DefaultBreakerCooldown = 30 * time.Second
)

// Breaker configures the circuit breaker each provider of a Failover has.
// After Failures consecutive failures (FailureUnavailable or FailureUnknown;
// a rejected message says nothing bad about the provider) the provider is
// skipped for Cooldown; then one message is let through as a trial: success
// closes the breaker, failure opens it for another Cooldown. Zero values take
// the defaults.
type Breaker struct {
	Failures int
	Cooldown time.Duration
}

func (b Breaker) withDefaults() Breaker {
	if b.Failures == 0 {
		b.Failures = DefaultBreakerFailures
	}
	if b.Cooldown == 0 {
		b.Cooldown = DefaultBreakerCooldown
	}
	return b
}

func (b Breaker) check() error {
	var errs []error
	if b.Failures < 0 {
		errs = append(errs, fmt.Errorf("sms: breaker failures must not be negative, got %d", b.Failures))
	}
	if b.Cooldown < 0 {
		errs = append(errs, fmt.Errorf("sms: breaker cooldown must not be negative, got %s", b.Cooldown))
	}
	return errors.Join(errs...)
}

// Member is one provider of a Failover.
type Member struct {
	Name   string // unique; what routes name
	Type   string // its sender type, for logs
	Sender Sender
}

// FailoverOptions configures NewFailover.
type FailoverOptions struct {
	// Routes maps a calling-code prefix ("+33") or "*" to member names, in
	// order. The longest matching prefix wins; a number that matches none and
	// no "*" is refused. Without routes, every message tries every member in
	// order.
	Routes  map[string][]string
	Breaker Breaker
	Now     func() time.Time // nil: time.Now
	Logger  *slog.Logger     // nil: slog.Default()
	Tracer  trace.Tracer     // nil: no spans (see Trace)
}

// Failover is a Sender that tries providers in order of preference. A
// message moves on to the next provider only when the failure proves it was
// not accepted (Retryable); after any other failure it stops there and
// returns the error, because trying again could text the same code twice.
// Providers that keep failing are skipped for a while (Breaker).
type Failover struct {
	members []*member
	routes  []route // longest prefix first
	dflt    []*member
	routed  bool
	now     func() time.Time
	log     *slog.Logger
	tracer  trace.Tracer
}

var (
	_ Sender         = (*Failover)(nil)
	_ StartupChecker = (*Failover)(nil)
)

type member struct {
	Member
	breaker *breaker
}

type route struct {
	prefix  string
	members []*member
}

// ErrNoRoute is returned (as a FailureRejected *SendError) when routes are
// configured and none matches the number.
var ErrNoRoute = errors.New("sms: no provider route for this number")

// NewFailover returns a Failover over members, which it tries in the given order.
func NewFailover(members []Member, opts FailoverOptions) (*Failover, error) {
	if len(members) == 0 {
		return nil, errors.New("sms failover: no provider")
	}
	if err := opts.Breaker.check(); err != nil {
		return nil, err
	}
	b := opts.Breaker.withDefaults()
	f := &Failover{now: opts.Now, log: opts.Logger, tracer: opts.Tracer}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	byName := map[string]*member{}
	for _, m := range members {
		if m.Sender == nil {
			return nil, fmt.Errorf("sms failover: provider %q has no sender", m.Name)
		}
		if _, dup := byName[m.Name]; dup {
			return nil, fmt.Errorf("sms failover: provider name %q used twice", m.Name)
		}
		mm := &member{Member: m, breaker: &breaker{threshold: b.Failures, cooldown: b.Cooldown}}
		byName[m.Name] = mm
		f.members = append(f.members, mm)
	}
	names := map[string]string{}
	for name := range byName {
		names[name] = name
	}
	if err := checkRoutes(opts.Routes, names, "routes"); err != nil {
		return nil, err
	}
	f.dflt = f.members
	if len(opts.Routes) > 0 {
		f.routed, f.dflt = true, nil
	}
	for _, prefix := range slices.Sorted(maps.Keys(opts.Routes)) {
		var list []*member
		for _, name := range opts.Routes[prefix] {
			list = append(list, byName[name])
		}
		if prefix == "*" {
			f.dflt = list
			continue
		}
		f.routes = append(f.routes, route{prefix: prefix, members: list})
	}
	slices.SortStableFunc(f.routes, func(a, b route) int { return len(b.prefix) - len(a.prefix) })
	return f, nil
}

// route returns the members to try for an E.164 number.
func (f *Failover) route(to string) []*member {
	for _, r := range f.routes {
		if strings.HasPrefix(to, r.prefix) {
			return r.members
		}
	}
	return f.dflt
}

// Send tries the route's providers in order until one accepts msg. The error,
// when every provider failed, is a *SendError summing them up: FailureUnknown
// as soon as one of them may have sent the message (and no later provider was
// tried), FailureRejected when every one that answered refused the message,
// FailureUnavailable otherwise.
func (f *Failover) Send(ctx context.Context, msg Message) (string, error) {
	if f.tracer != nil {
		return f.traceFailover(ctx, msg)
	}
	return f.send(ctx, msg)
}

// send is Send without its span.
func (f *Failover) send(ctx context.Context, msg Message) (string, error) {
	if err := msg.check(); err != nil {
		return "", rejected(err)
	}
	members := f.route(msg.To)
	if len(members) == 0 {
		return "", rejected(ErrNoRoute)
	}
	to := factors.MaskPhone(msg.To)
	var errs []error
	allRejected := true
	for i, m := range members {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			allRejected = false
			break
		}
		allowed, trial := m.breaker.acquire(f.now())
		if !allowed {
			errs = append(errs, fmt.Errorf("%s: skipped: circuit open after repeated failures", m.Name))
			allRejected = false
			continue
		}
		id, err := m.Sender.Send(ctx, msg)
		m.breaker.record(trial, health(ctx, err), f.now())
		if err == nil {
			if i > 0 {
				f.log.LogAttrs(ctx, slog.LevelInfo, "sms: sent by a fallback provider",
					slog.String("provider", m.Name), slog.String("to", to), slog.String("client_id", msg.ClientID))
			}
			return id, nil
		}
		failure := FailureOf(err)
		errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
		if failure == FailureUnknown {
			f.log.LogAttrs(ctx, slog.LevelError, "sms: provider failed after the message may have been accepted; not trying another provider",
				slog.String("provider", m.Name), slog.String("type", m.Type), slog.String("to", to),
				slog.String("client_id", msg.ClientID), slog.String("err", err.Error()))
			return "", unknown(failoverError(errs))
		}
		if failure != FailureRejected {
			allRejected = false
		}
		f.log.LogAttrs(ctx, slog.LevelWarn, "sms: provider did not accept the message",
			slog.String("provider", m.Name), slog.String("type", m.Type), slog.String("to", to),
			slog.String("client_id", msg.ClientID), slog.String("failure", failure.String()),
			slog.Bool("next", i+1 < len(members)), slog.String("err", err.Error()))
	}
	if allRejected {
		return "", rejected(failoverError(errs))
	}
	return "", unavailable(failoverError(errs))
}

// health is what a send result says about the provider.
func health(ctx context.Context, err error) outcome {
	switch {
	case err == nil || FailureOf(err) == FailureRejected:
		return healthy
	case ctx.Err() != nil:
		return neutral // the caller gave up: says nothing about the provider
	}
	return failed
}

// failoverError joins the providers' errors on one line.
type failoverErrors []error

func failoverError(errs []error) error { return failoverErrors(slices.Clone(errs)) }

func (e failoverErrors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return "sms: " + strings.Join(parts, "; ")
}

func (e failoverErrors) Unwrap() []error { return e }

// StartupCheck runs the startup check of every provider that has one and
// reports each failure naming the provider.
func (f *Failover) StartupCheck(ctx context.Context) error {
	var errs []error
	for _, m := range f.members {
		c, ok := m.Sender.(StartupChecker)
		if !ok {
			continue
		}
		if err := c.StartupCheck(ctx); err != nil {
			errs = append(errs, fmt.Errorf("sms: provider %q (type %s) failed its startup check: %w", m.Name, m.Type, err))
		}
	}
	return errors.Join(errs...)
}

// BreakerState describes one provider's breaker, for health pages and tests.
type BreakerState struct {
	Provider  string
	State     string // "closed", "open", "half-open"
	Failures  int    // consecutive failures counted
	OpenUntil time.Time
}

// Breakers returns the state of every provider's breaker, in provider order.
func (f *Failover) Breakers() []BreakerState {
	now := f.now()
	out := make([]BreakerState, len(f.members))
	for i, m := range f.members {
		out[i] = m.breaker.state(m.Name, now)
	}
	return out
}

type outcome int

const (
	healthy outcome = iota
	failed
	neutral
)

// breaker is a small consecutive-failure circuit breaker.
type breaker struct {
	threshold int
	cooldown  time.Duration

	mu        sync.Mutex
	failures  int
	openUntil time.Time // zero: closed
	trial     bool      // a half-open trial is in flight
}

// acquire says whether a message may go to the provider now, and whether it
// is the half-open trial (only one at a time).
func (b *breaker) acquire(now time.Time) (allowed, trial bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openUntil.IsZero():
		return true, false
	case now.Before(b.openUntil), b.trial:
		return false, false
	}
	b.trial = true
	return true, true
}

func (b *breaker) record(trial bool, o outcome, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if trial {
		b.trial = false
	}
	switch o {
	case healthy:
		b.failures, b.openUntil = 0, time.Time{}
	case failed:
		b.failures++
		if trial || b.failures >= b.threshold {
			b.openUntil = now.Add(b.cooldown)
		}
	}
}

func (b *breaker) state(name string, now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BreakerState{Provider: name, Failures: b.failures, OpenUntil: b.openUntil, State: "closed"}
	switch {
	case b.openUntil.IsZero():
	case now.Before(b.openUntil):
		s.State = "open"
	default:
		s.State = "half-open"
	}
	return s
}
