package guard

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// BudgetObserver is an ability the observer given to WithObserver may have:
// being told of each send the SMS budgets count. It is found by type
// assertion, so factors.Observer, which every factor and sender reports to,
// does not grow a method only the guard calls. provider.Metrics has it.
type BudgetObserver interface {
	// SMSBudgetUsed: one send counts against budget, ReasonBudget (clientID
	// "") or ReasonClientBudget (the budget of clientID). It is called once
	// the count is kept, that is once the factor sent the SMS or may have, so
	// that a process adding these up gets what the store's budget holds.
	SMSBudgetUsed(budget, clientID string)
}

// Budget is one SMS budget and how much of it is spent.
type Budget struct {
	Name     string // ReasonBudget or ReasonClientBudget
	ClientID string // whose budget, for ReasonClientBudget
	Limit    Limit
	// Spent is the store's sliding-window estimate of the sends in the last
	// Limit.Window, across instances: the number Allow compares with
	// Limit.Count before the next send.
	Spent float64
}

// serviceBudget is the counter key's value for the service-wide budget.
const serviceBudget = "all"

// Limits returns the limits the guard enforces.
func (g *Guard) Limits() Limits { return g.policy.Limits }

// Budgets reads how much of each SMS budget that is on is spent: the
// service's, then the budget of each client this guard has counted a send
// for since it was made, sorted by client. Another instance reports the
// clients it served; every instance reads the same counts. Each budget is
// one store read that only reads. A budget that cannot be read is left out
// and its error joined into err; reading stops when ctx ends.
func (g *Guard) Budgets(ctx context.Context) ([]Budget, error) {
	var (
		out  []Budget
		errs []error
	)
	read := func(name, clientID, value string, l Limit) {
		if ctx.Err() != nil {
			return
		}
		spent, err := g.store.AddCount(ctx, limitKey(name, l, value), 0, l.Window)
		if err != nil {
			errs = append(errs, fmt.Errorf("guard: read %s: %w", name, err))
			return
		}
		out = append(out, Budget{Name: name, ClientID: clientID, Limit: l, Spent: spent})
	}
	if l := g.policy.Limits.Budget; l.on() {
		read(ReasonBudget, "", serviceBudget, l)
	}
	if l := g.policy.Limits.ClientBudget; l.on() {
		var clients []string
		g.clients.Range(func(k, _ any) bool {
			clients = append(clients, k.(string))
			return true
		})
		slices.Sort(clients)
		for _, c := range clients {
			read(ReasonClientBudget, c, c, l)
		}
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("guard: read budgets: %w", err))
	}
	return out, errors.Join(errs...)
}

// spend reports the budgets held counted a send against, now that its counts
// are kept, and remembers the client for Budgets.
func (g *Guard) spend(held *reservation) {
	for _, name := range held.budgets {
		clientID := ""
		if name == ReasonClientBudget {
			clientID = held.clientID
			g.clients.Store(clientID, struct{}{})
		}
		if g.budgetObs != nil {
			g.budgetObs.SMSBudgetUsed(name, clientID)
		}
	}
}
