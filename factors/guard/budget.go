package guard

import (
	"context"
	"fmt"
	"slices"

	"github.com/otpgate/otpgate/storage"
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
// clients it served; every instance reads the same counts. It is one store
// round trip that only reads; on error no budget is returned.
func (g *Guard) Budgets(ctx context.Context) ([]Budget, error) {
	var out []Budget
	if l := g.policy.Limits.Budget; l.on() {
		out = append(out, Budget{Name: ReasonBudget, Limit: l})
	}
	if l := g.policy.Limits.ClientBudget; l.on() {
		var clients []string
		g.clients.Range(func(k, _ any) bool {
			clients = append(clients, k.(string))
			return true
		})
		slices.Sort(clients)
		for _, c := range clients {
			out = append(out, Budget{Name: ReasonClientBudget, ClientID: c, Limit: l})
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	reads := make([]storage.CountChange, len(out))
	for i, b := range out {
		value := serviceBudget
		if b.Name == ReasonClientBudget {
			value = b.ClientID
		}
		reads[i] = storage.CountChange{Key: limitKey(b.Name, b.Limit, value), Delta: 0, Window: b.Limit.Window}
	}
	spent, err := g.store.AddCounts(ctx, reads)
	if err != nil {
		return nil, fmt.Errorf("guard: read budgets: %w", err)
	}
	for i := range out {
		out[i].Spent = spent[i]
	}
	return out, nil
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
