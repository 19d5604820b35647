package provider

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpgate/otpgate/factors/guard"
)

// The SMS budget metrics (docs/observability.md, "SMS budgets"). The budget
// label is "service" (limits.budget) or "client" (limits.client_budget); the
// client label, on the client budget only, is a registered client's id.

var _ guard.BudgetObserver = (*Metrics)(nil) // the guard finds it by type assertion

// newBudgetUsed registers otpgate_sms_budget_used_total in reg.
func newBudgetUsed(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "otpgate_sms_budget_used_total",
		Help: "SMS sends this instance counted against an SMS budget, by budget (service, client) and client (the client budget's owner; empty for the service budget).",
	}, []string{"budget", "client"})
	reg.MustRegister(c)
	return c
}

// SMSBudgetUsed implements guard.BudgetObserver.
func (m *Metrics) SMSBudgetUsed(budget, clientID string) {
	if m == nil {
		return
	}
	m.budgetUsed.WithLabelValues(budgetLabel(budget), clientID).Inc()
}

// SMSBudgets is what WatchSMSBudgets reads; *guard.Guard has it.
type SMSBudgets interface {
	Limits() guard.Limits
	Budgets(ctx context.Context) ([]guard.Budget, error)
}

// budgetReadTimeout bounds the store reads of one scrape: a slow store must
// not make the whole of /metrics time out.
const budgetReadTimeout = 2 * time.Second

// WatchSMSBudgets exports the SMS budgets of b: their limits and windows from
// its policy, and how much of each is spent, read from the store at each
// scrape (otpgate_sms_budget_limit, _window_seconds, _spent).
func (m *Metrics) WatchSMSBudgets(b SMSBudgets) {
	if m == nil || b == nil {
		return
	}
	if b.Limits().Budget.Count > 0 {
		// The series exists from the start, so that increase() sees the
		// first send; client series appear with their first send.
		m.budgetUsed.WithLabelValues(budgetLabel(guard.ReasonBudget), "")
	}
	m.reg.MustRegister(budgetCollector{b})
}

var (
	budgetLimitDesc = prometheus.NewDesc("otpgate_sms_budget_limit",
		"SMS sends an SMS budget allows in any window, by budget (service, client: each client's). Absent when the budget is off.",
		[]string{"budget"}, nil)
	budgetWindowDesc = prometheus.NewDesc("otpgate_sms_budget_window_seconds",
		"The window of an SMS budget, by budget (service, client).",
		[]string{"budget"}, nil)
	budgetSpentDesc = prometheus.NewDesc("otpgate_sms_budget_spent",
		"SMS sends counted in an SMS budget's window across all instances, read from the store at scrape: the guard's own sliding-window estimate, which it compares with the limit. By budget (service, client) and client (empty for the service budget).",
		[]string{"budget", "client"}, nil)
)

type budgetCollector struct{ b SMSBudgets }

func (budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- budgetLimitDesc
	ch <- budgetWindowDesc
	ch <- budgetSpentDesc
}

func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	l := c.b.Limits()
	for name, limit := range map[string]guard.Limit{guard.ReasonBudget: l.Budget, guard.ReasonClientBudget: l.ClientBudget} {
		if limit.Count <= 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(budgetLimitDesc, prometheus.GaugeValue, float64(limit.Count), budgetLabel(name))
		ch <- prometheus.MustNewConstMetric(budgetWindowDesc, prometheus.GaugeValue, limit.Window.Seconds(), budgetLabel(name))
	}
	ctx, cancel := context.WithTimeout(context.Background(), budgetReadTimeout)
	defer cancel()
	// When the store cannot be read, the spent budgets are left out rather
	// than failing the scrape: the other metrics matter most when the store
	// is in trouble, which every request that needs it reports anyway.
	budgets, _ := c.b.Budgets(ctx)
	for _, b := range budgets {
		ch <- prometheus.MustNewConstMetric(budgetSpentDesc, prometheus.GaugeValue, b.Spent, budgetLabel(b.Name), b.ClientID)
	}
}

// budgetLabel is the budget label's value for a guard limit's name.
func budgetLabel(reason string) string {
	switch reason {
	case guard.ReasonBudget:
		return "service"
	case guard.ReasonClientBudget:
		return "client"
	}
	return reason
}
