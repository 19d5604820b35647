package guard_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/storage/memory"
)

// budgetTally is a factors.Observer and a guard.BudgetObserver that keeps
// the budget sends it is told of.
type budgetTally struct {
	mu     sync.Mutex
	events []string
}

func (b *budgetTally) SMSSent(string, int)           {}
func (b *budgetTally) SMSFailed(string, int, string) {}
func (b *budgetTally) SMSRefused(int, string)        {}
func (b *budgetTally) Challenge(string, string)      {}
func (b *budgetTally) SMSBudgetUsed(budget, clientID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, budget+" "+clientID)
}

func (b *budgetTally) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.events
	b.events = nil
	return out
}

// failing is the outbox, or a sender that is down while down is set.
type failing struct {
	sms.Sender
	down atomic.Bool
}

func (f *failing) Send(ctx context.Context, m sms.Message) (string, error) {
	if f.down.Load() {
		return "", errors.New("provider down")
	}
	return f.Sender.Send(ctx, m)
}

// The observer hears of exactly the sends the budgets keep counted: not the
// ones a limit refuses, not the ones a later limit or the factor undoes, but
// those a provider may have billed. Budgets then reads the same numbers back.
func TestBudgetUseReported(t *testing.T) {
	p := open()
	p.Limits.IP = guard.Limit{Count: 1, Window: time.Hour}
	p.Limits.ClientBudget = guard.Limit{Count: 3, Window: 24 * time.Hour}
	p.Limits.Budget = guard.Limit{Count: 4, Window: 24 * time.Hour}
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	store := memory.New(memory.WithNow(clk.Now))
	t.Cleanup(func() { store.Close() })
	sender := &failing{Sender: sms.NewOutbox(store, 100, clk.Now)}
	f, err := smsotp.New(store, sender, smsotp.Options{HashKey: key, Origin: "id.example.com", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	obs := &budgetTally{}
	g, err := guard.Wrap(f, store, key, p, guard.WithObserver(obs), guard.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Each send comes from its own address, but for one the IP limit refuses.
	start := func(phone, client, ip string) error {
		_, err := g.Start(ctx, factors.StartRequest{Phone: phone, ClientID: client, Locale: "en", IP: ip})
		return err
	}
	step := func(what string, err error, want ...string) {
		t.Helper()
		got := obs.take()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s (err %v): reported %q, want %q", what, err, got, want)
		}
	}

	err = start("+33611111111", "rp", "192.0.2.1")
	step("a first send", err, "client_budget rp", "budget ")
	err = start("+33677777777", "rp", "192.0.2.1")
	refusedBy(t, err, guard.ReasonIP)
	step("a send the IP limit refuses, before the budgets", err)

	ch, err := g.Start(ctx, factors.StartRequest{Phone: "+33622222222", ClientID: "rp", Locale: "en", IP: "192.0.2.2"})
	step("a second send", err, "client_budget rp", "budget ")
	_, err = g.Resend(ctx, factors.ResendRequest{ChallengeID: ch.ID, ClientID: "rp", Locale: "en", IP: "192.0.2.3"})
	var cooldown *factors.RateLimitedError
	if !errors.As(err, &cooldown) {
		t.Fatalf("early resend: %v, want the factor's cooldown", err)
	}
	step("a resend the factor refuses after the guard admitted it", err)

	sender.down.Store(true)
	err = start("+33633333333", "rp", "192.0.2.4")
	var delivery *factors.DeliveryError
	if !errors.As(err, &delivery) {
		t.Fatalf("send with the provider down: %v, want a DeliveryError", err)
	}
	step("a failed delivery, which the provider may have billed", err, "client_budget rp", "budget ")
	sender.down.Store(false)

	err = start("+33644444444", "rp", "192.0.2.5")
	refusedBy(t, err, guard.ReasonClientBudget)
	step("a send the client budget refuses", err)
	err = start("+33655555555", "other", "192.0.2.6")
	step("another client's send", err, "client_budget other", "budget ")
	err = start("+33666666666", "third", "192.0.2.7")
	refusedBy(t, err, guard.ReasonBudget)
	step("a send the service budget refuses after the client budget admitted it", err)

	got, err := g.Budgets(ctx)
	if err != nil {
		t.Fatalf("Budgets: %v", err)
	}
	want := []guard.Budget{
		{Name: guard.ReasonBudget, Limit: p.Limits.Budget, Spent: 4},
		{Name: guard.ReasonClientBudget, ClientID: "other", Limit: p.Limits.ClientBudget, Spent: 1},
		{Name: guard.ReasonClientBudget, ClientID: "rp", Limit: p.Limits.ClientBudget, Spent: 3},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Budgets = %+v\nwant %+v", got, want)
	}
	if g.Limits() != p.Limits {
		t.Errorf("Limits = %+v, want the policy's %+v", g.Limits(), p.Limits)
	}

	// Spent is the sliding window's estimate, not a count since some start:
	// at 15:04 the next day (windows start at 00:00 UTC), yesterday's 4
	// sends weigh for the 8h56m of yesterday still in the last 24 hours.
	clk.Advance(36 * time.Hour)
	got, err = g.Budgets(ctx)
	if want := 4 * (8*time.Hour + 55*time.Minute + 55*time.Second).Hours() / 24; err != nil || len(got) != 3 || math.Abs(got[0].Spent-want) > 1e-9 {
		t.Errorf("Budgets a day and a half later = %+v, %v; want the service budget at %v", got, err, want)
	}
}

// Off budgets are not read; a store that fails is an error, not a zero.
func TestBudgetsOffAndStoreFailure(t *testing.T) {
	e := newEnv(t, open())
	e.mustStart(mobileFR, "")
	if got, err := e.g.Budgets(context.Background()); len(got) != 0 || err != nil {
		t.Errorf("Budgets with the budgets off = %+v, %v; want none", got, err)
	}

	p := open()
	p.Limits.Budget = guard.Limit{Count: 10, Window: time.Hour}
	p.Limits.ClientBudget = guard.Limit{Count: 5, Window: time.Hour}
	e = newEnv(t, p)
	e.mustStart(mobileFR, "")
	e.store.Close()
	got, err := e.g.Budgets(context.Background())
	if err == nil || len(got) != 0 {
		t.Errorf("Budgets on a closed store = %+v, %v; want an error and no budget", got, err)
	}
}
