package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/otpgate/otpgate/config"
	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/orange"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/storage"
)

// openFactor builds the factor the factor key names: smsotp, which texts its
// codes through the sender of the sms section, or orange, on the orange_otp
// section. Either way otpgate's own limits come from the sms section. Like
// openSender it checks credentials before anything listens, unless
// sms.skip_startup_check is set.
func openFactor(ctx context.Context, cfg config.Config, dev bool, store storage.Store, secret []byte, log *slog.Logger, metrics *provider.Metrics, tracer trace.Tracer) (factors.Factor, error) {
	iss, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	policy := factors.PhonePolicy{Allowed: cfg.Phone.AllowedRegions, Denied: cfg.Phone.DeniedRegions}
	if cfg.Factor == "orange" {
		return openOrangeFactor(ctx, cfg, store, iss.Host, policy, log, metrics, tracer)
	}
	sender, err := openSender(ctx, cfg, dev, store, log, metrics, tracer)
	if err != nil {
		return nil, err
	}
	f, err := smsotp.New(store, sender, smsotp.Options{
		CodeLength:     cfg.SMS.CodeLength,
		TTL:            time.Duration(cfg.SMS.CodeTTL),
		MaxAttempts:    cfg.SMS.MaxAttempts,
		ResendCooldown: time.Duration(cfg.SMS.ResendCooldown),
		MaxResends:     cfg.SMS.MaxResends,
		HashKey:        provider.CodeHashKey(secret),
		Origin:         iss.Host,
		Policy:         policy,
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

func openOrangeFactor(ctx context.Context, cfg config.Config, store storage.Store, origin string, policy factors.PhonePolicy, log *slog.Logger, metrics *provider.Metrics, tracer trace.Tracer) (factors.Factor, error) {
	o := cfg.OrangeOTP
	f, err := orange.New(store, orange.Options{
		BaseURL:        o.BaseURL,
		ClientID:       o.ClientID,
		ClientSecret:   o.ClientSecret,
		Service:        o.Service,
		PartnerID:      o.PartnerID,
		Message:        o.Message,
		SenderName:     o.SenderName,
		CodeLength:     o.CodeLength,
		ValidateInfo:   o.ValidateInfo,
		Origin:         origin,
		TTL:            time.Duration(cfg.SMS.CodeTTL),
		MaxAttempts:    cfg.SMS.MaxAttempts,
		ResendCooldown: time.Duration(cfg.SMS.ResendCooldown),
		MaxResends:     cfg.SMS.MaxResends,
		Policy:         policy,
		Timeout:        time.Duration(o.Timeout),
		Observer:       metrics,
		Tracer:         tracer,
	})
	if err != nil {
		return nil, fmt.Errorf("invalid orange_otp configuration:\n%s", indent(err))
	}
	if cfg.SMS.SkipStartupCheck {
		log.Warn("orange_otp: startup check skipped (sms.skip_startup_check)")
		return f, nil
	}
	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := f.StartupCheck(checkCtx); err != nil {
		return nil, fmt.Errorf("orange_otp: startup check: %w\n(to start anyway, set sms.skip_startup_check: true or OTPGATE_SMS_SKIP_STARTUP_CHECK=true)", err)
	}
	log.Info("orange_otp: credentials accepted; codes are made, texted and checked by Orange", "base_url", o.BaseURL)
	return f, nil
}

// codeLength is the length of the codes the factor in use sends, for the
// code page.
func codeLength(cfg config.Config) int {
	if cfg.Factor == "orange" {
		return cfg.OrangeOTP.CodeLength
	}
	return cfg.SMS.CodeLength
}
