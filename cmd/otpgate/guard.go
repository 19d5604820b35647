package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/otpgate/otpgate/config"
	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/storage"
)

// guardFactor puts the abuse guard in front of the factor: phone.number_types
// always, the limits and the pumping breaker when limits.enabled.
func guardFactor(f factors.Factor, cfg config.Config, store storage.Store, secret []byte, log *slog.Logger, metrics *provider.Metrics) (factors.Factor, error) {
	g, err := guard.Wrap(f, store, provider.GuardKey(secret), guardPolicy(cfg), guard.WithLogger(log), guard.WithObserver(metrics))
	if err != nil {
		return nil, fmt.Errorf("invalid limits configuration:\n%s", indent(err))
	}
	metrics.WatchSMSBudgets(g)
	if !cfg.Limits.Enabled {
		log.Warn("limits: off (limits.enabled: false): no send, attempt or budget limit and no pumping breaker; only phone.number_types applies")
	}
	return g, nil
}

// guardPolicy translates the limits section and phone.number_types.
func guardPolicy(cfg config.Config) guard.Policy {
	p := guard.Policy{NumberTypes: cfg.Phone.NumberTypes}
	l := cfg.Limits
	if !l.Enabled {
		return p
	}
	lim := func(c config.LimitConfig) guard.Limit {
		return guard.Limit{Count: c.Count, Window: time.Duration(c.Window)}
	}
	p.Limits = guard.Limits{
		IP: lim(l.IP), Phone: lim(l.Phone), PhoneDaily: lim(l.PhoneDaily), Prefix: lim(l.Prefix),
		Client: lim(l.Client), Country: lim(l.Country), ClientBudget: lim(l.ClientBudget),
		Budget: lim(l.Budget), Attempts: lim(l.Attempts),
	}
	b := l.Breaker
	p.Breaker = guard.Breaker{
		Window:        time.Duration(b.Window),
		MinSends:      b.MinSends,
		MinConversion: float64(b.MinConversionPercent) / 100,
		Cooldown:      time.Duration(b.Cooldown),
		Exempt:        b.ExemptRegions,
	}
	return p
}
