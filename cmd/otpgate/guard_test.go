package main

import (
	"bytes"
	"log/slog"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpgate/otpgate/config"
	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/storage/memory"
)

// The configuration's defaults are the guard's: one place documents them
// (otpgate.example.yaml, docs/security.md), two hold them.
func TestGuardPolicyDefaults(t *testing.T) {
	if got, want := guardPolicy(config.Defaults(false)), guard.DefaultPolicy(); !reflect.DeepEqual(got, want) {
		t.Errorf("production defaults differ:\nconfig: %+v\nguard:  %+v", got, want)
	}
	dev := guardPolicy(config.Defaults(true))
	if dev.Limits != (guard.Limits{}) || dev.Breaker.MinConversion != 0 {
		t.Errorf("--dev: limits %+v, breaker %+v; want them off", dev.Limits, dev.Breaker)
	}
	if !reflect.DeepEqual(dev.NumberTypes, guard.DefaultNumberTypes) {
		t.Errorf("--dev number types %v, want the defaults", dev.NumberTypes)
	}
}

// Every number type the guard knows is accepted by the configuration.
func TestGuardNumberTypesAccepted(t *testing.T) {
	c := config.Defaults(true)
	c.Phone.NumberTypes = guard.NumberTypeNames()
	if err := c.Validate(true); err != nil {
		t.Errorf("config refuses a number type the guard knows: %v", err)
	}
	if err := guardPolicy(c).Validate(); err != nil {
		t.Errorf("guard refuses: %v", err)
	}
}

// serve exports the SMS budgets the guard enforces, from the limits section.
func TestGuardBudgetMetrics(t *testing.T) {
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	f, err := smsotp.New(store, sms.NewOutbox(store, 10, nil), smsotp.Options{HashKey: bytes.Repeat([]byte("k"), 32), Origin: "id.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults(false)
	cfg.Limits.Budget.Count = 1234
	reg := prometheus.NewRegistry()
	if _, err := guardFactor(f, cfg, store, bytes.Repeat([]byte("s"), 32), slog.New(slog.DiscardHandler), provider.NewMetrics(reg)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "otpgate_sms_budget_limit" || mf.GetName() == "otpgate_sms_budget_window_seconds" {
				got[mf.GetName()+" "+m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	want := map[string]float64{
		"otpgate_sms_budget_limit service": 1234, "otpgate_sms_budget_window_seconds service": 86400,
		"otpgate_sms_budget_limit client": 5000, "otpgate_sms_budget_window_seconds client": 86400,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("budget metrics %v, want %v", got, want)
	}
}
