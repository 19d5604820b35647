package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"

	"github.com/otpgate/otpgate/config"
	"github.com/otpgate/otpgate/provider"
)

// adminToken returns the admin API token: the configured one or, in dev mode
// with an admin listener, a random one for this run (generated reports which).
// Outside dev mode without a token the admin API refuses every call; that is
// logged so the refusals are not a mystery.
func adminToken(cfg config.Config, dev bool, log *slog.Logger) (token string, generated bool) {
	switch {
	case cfg.Admin.Token != "":
		return cfg.Admin.Token, false
	case cfg.AdminListen == "":
		return "", false
	case dev:
		return rand.Text() + rand.Text(), true // 2 × 128 random bits, base32
	}
	log.Warn("admin API: no admin token is configured (admin.token, admin.token_file or OTPGATE_ADMIN_TOKEN): every /admin call is refused")
	return "", false
}

// adminBanner is the dev banner's admin line; it shows a generated token, never
// a configured one.
func adminBanner(adminListen, token string, generated bool) string {
	switch {
	case adminListen == "":
		return ""
	case generated:
		return fmt.Sprintf("  Admin API:    http://%s/admin (for otpgate clients/keys: export OTPGATE_ADMIN_TOKEN=%s)\n", adminListen, token)
	case token != "":
		return fmt.Sprintf("  Admin API:    http://%s/admin (token from the configuration)\n", adminListen)
	}
	return ""
}

// startKeyRotation runs the provider's key rotation scheduler until ctx ends
// or the returned stop is called; stop waits for it to finish, so the store
// is not closed under a rotation.
func startKeyRotation(ctx context.Context, p *provider.Provider) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.RunKeyRotation(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
