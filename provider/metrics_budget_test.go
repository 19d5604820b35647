package provider_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/storage"
)

// gathered is every sample of reg whose name starts with prefix, keyed as the
// exposition format writes it: name{label="value",...}, labels sorted.
func gathered(t *testing.T, reg prometheus.Gatherer, prefix string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), prefix) {
			continue
		}
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			v := s.GetGauge().GetValue() + s.GetCounter().GetValue()
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

// budgetInstance is one otpgate's guard on a shared store, reporting to m
// as serve wires it.
func budgetInstance(t *testing.T, m *provider.Metrics, store storage.Store, p guard.Policy) *guard.Guard {
	t.Helper()
	f, err := smsotp.New(store, sms.NewOutbox(store, 100, time.Now), smsotp.Options{HashKey: provider.CodeHashKey(testSecret), Origin: "id.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.Wrap(f, store, provider.GuardKey(testSecret), p, guard.WithObserver(m), guard.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	m.WatchSMSBudgets(g)
	return g
}

// Each instance counts the budget sends it made; every instance reports the
// budgets as the store holds them, sends of all instances included.
func TestMetricsSMSBudgets(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		store := newStore(t, kind)
		p := guard.Policy{Limits: guard.Limits{
			ClientBudget: guard.Limit{Count: 2, Window: time.Hour},
			Budget:       guard.Limit{Count: 10, Window: 24 * time.Hour},
		}}
		regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
		a := budgetInstance(t, provider.NewMetrics(regA), store, p)
		b := budgetInstance(t, provider.NewMetrics(regB), store, p)
		send := func(g *guard.Guard, phone, client string) error {
			_, err := g.Start(context.Background(), factors.StartRequest{Phone: phone, ClientID: client, Locale: "en"})
			return err
		}
		for _, err := range []error{send(a, "+33611111111", "rp"), send(a, "+33622222222", "rp"), send(b, "+33644444444", "other")} {
			if err != nil {
				t.Fatal(err)
			}
		}
		var lim *factors.LimitError
		if err := send(b, "+33633333333", "rp"); !errors.As(err, &lim) || lim.Reason != guard.ReasonClientBudget {
			t.Fatalf("third send of rp: %v, want its client budget spent", err)
		}

		limits := map[string]float64{
			`otpgate_sms_budget_limit{budget="service"}`:           10,
			`otpgate_sms_budget_limit{budget="client"}`:            2,
			`otpgate_sms_budget_window_seconds{budget="service"}`:  86400,
			`otpgate_sms_budget_window_seconds{budget="client"}`:   3600,
			`otpgate_sms_budget_spent{budget="service",client=""}`: 3,
		}
		for name, tc := range map[string]struct {
			reg  *prometheus.Registry
			want map[string]float64
		}{
			"instance A": {regA, map[string]float64{
				`otpgate_sms_budget_used_total{budget="service",client=""}`:  2,
				`otpgate_sms_budget_used_total{budget="client",client="rp"}`: 2,
				`otpgate_sms_budget_spent{budget="client",client="rp"}`:      2,
			}},
			"instance B": {regB, map[string]float64{
				`otpgate_sms_budget_used_total{budget="service",client=""}`:     1,
				`otpgate_sms_budget_used_total{budget="client",client="other"}`: 1,
				`otpgate_sms_budget_spent{budget="client",client="other"}`:      1,
			}},
		} {
			for k, v := range limits {
				tc.want[k] = v
			}
			got := gathered(t, tc.reg, "otpgate_sms_budget_")
			for k, v := range tc.want {
				// A window may turn during the test: the estimate then
				// weighs the sends just made a hair below 1 each.
				if g, ok := got[k]; !ok || math.Abs(g-v) > 0.01 {
					t.Errorf("%s: %s = %v (present: %v), want %v", name, k, g, ok, v)
				}
			}
			for k := range got {
				if _, ok := tc.want[k]; !ok {
					t.Errorf("%s: unexpected sample %s = %v", name, k, got[k])
				}
			}
		}

		if kind != "memory" {
			return
		}
		// A store that cannot be read leaves the spent budgets out of the
		// scrape, not the scrape out.
		store.Close()
		got := gathered(t, regA, "otpgate_sms_budget_")
		if _, ok := got[`otpgate_sms_budget_limit{budget="service"}`]; !ok {
			t.Errorf("store closed: the limits are gone: %v", got)
		}
		for k := range got {
			if strings.HasPrefix(k, "otpgate_sms_budget_spent") {
				t.Errorf("store closed: %s = %v is still reported", k, got[k])
			}
		}
	})
}

// With the budgets off there is no limit to report and nothing spent.
func TestMetricsSMSBudgetsOff(t *testing.T) {
	store := newStore(t, "memory")
	reg := prometheus.NewRegistry()
	g := budgetInstance(t, provider.NewMetrics(reg), store, guard.Policy{})
	if _, err := g.Start(context.Background(), factors.StartRequest{Phone: "+33611111111", ClientID: "rp", Locale: "en"}); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, reg, "otpgate_sms_budget_"); len(got) != 0 {
		t.Errorf("budgets off: %v, want no sample", got)
	}
	var m *provider.Metrics
	m.SMSBudgetUsed(guard.ReasonBudget, "")
	m.WatchSMSBudgets(g)
}
