package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"

	"github.com/otpgate/otpgate/config"
	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/provider/keys"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
	"github.com/otpgate/otpgate/storage/observe"
	"github.com/otpgate/otpgate/storage/redis"
)

func serveCommand() *cobra.Command {
	var (
		dev        bool
		configPath string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the OpenID Connect provider",
		Long: "Run the OpenID Connect provider.\n\n" +
			"--dev starts with no account anywhere: memory storage (Redis when OTPGATE_REDIS_URL is set),\n" +
			"SMS written to an outbox at /dev/outbox, generated keys and a demo relying party at /dev/demo.\n" +
			"--config FILE loads a YAML file on top of the defaults (on top of the dev defaults with --dev).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath, dev, os.Getenv)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "invalid configuration:\n%s\n", indent(err))
				return errors.New("cannot start")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, cfg, dev, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&dev, "dev", false, "development mode: no external account needed")
	cmd.Flags().StringVar(&configPath, "config", "", "YAML configuration file")
	return cmd
}

// serve wires the packages together and runs both listeners until ctx ends.
func serve(ctx context.Context, cfg config.Config, dev bool, out io.Writer) error {
	log := newLogger(cfg.Log, os.Stderr)
	gin.SetMode(gin.ReleaseMode)

	secret := []byte(cfg.SystemSecret)
	if len(secret) == 0 && dev {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		log.Warn("dev: generated a random system secret; keys, sessions and subjects change at every restart (set system_secret to keep them)")
	}

	// Opened before the store so that stopTracing, deferred first, flushes
	// the spans last, after every store call.
	tracer, stopTracing, err := openTracing(ctx, cfg.Tracing, log)
	if err != nil {
		return err
	}
	defer stopTracing()

	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if cfg.Storage == "memory" && !dev {
		log.Warn("storage: memory keeps state in this process only; use redis to run more than one instance or survive a restart")
	}
	// One registry per process, served at /metrics on the admin listener;
	// never the global default one.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := provider.NewMetrics(reg)
	// From here on every store call is timed, and traced when tracing is on.
	store = observe.Wrap(store, observe.WithRecorder(metrics), observe.WithTracer(tracer), observe.WithSystem(cfg.Storage))

	// Before any key is generated: a provider misconfiguration stops here.
	factor, err := openFactor(ctx, cfg, dev, store, secret, log, metrics, tracer)
	if err != nil {
		return err
	}
	if factor, err = guardFactor(factor, cfg, store, secret, log, metrics); err != nil {
		return err
	}
	factor = factors.Observe(factor, metrics)

	retire := provider.KeyRetireAfter(time.Duration(cfg.Tokens.IDTokenTTL), time.Duration(cfg.Tokens.AccessTokenTTL))
	km, err := keys.NewManager(store, secret, keys.WithLogger(log), keys.WithRetireAfter(retire))
	if err != nil {
		return err
	}
	if err := km.Ensure(ctx); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}

	policy := factors.PhonePolicy{Allowed: cfg.Phone.AllowedRegions, Denied: cfg.Phone.DeniedRegions}

	adminTok, adminTokGenerated := adminToken(cfg, dev, log)
	clients := staticClients(cfg.Clients)
	if dev {
		clients = append(clients, provider.DevClients(cfg.Issuer)...)
	}
	p, err := provider.New(ctx, provider.Options{
		Issuer: cfg.Issuer, Secret: secret,
		Store: store, Keys: km, Factor: factor,
		DefaultRegion: cfg.Phone.DefaultRegion, PhonePolicy: policy,
		CodeLength: codeLength(cfg), ResendAfter: time.Duration(cfg.SMS.ResendCooldown), MaxResends: cfg.SMS.MaxResends,
		FlowTTL:          time.Duration(cfg.Login.FlowTTL),
		SessionTTL:       time.Duration(cfg.Login.SessionTTL),
		ConsentTTL:       time.Duration(cfg.Login.ConsentTTL),
		AuthorizeCodeTTL: time.Duration(cfg.Tokens.AuthorizeCodeTTL),
		AccessTokenTTL:   time.Duration(cfg.Tokens.AccessTokenTTL),
		IDTokenTTL:       time.Duration(cfg.Tokens.IDTokenTTL),
		RefreshTokenTTL:  time.Duration(cfg.Tokens.RefreshTokenTTL),
		DefaultLocale:    cfg.Login.DefaultLocale,
		TrustedProxies:   cfg.HTTP.TrustedProxies,
		MaxBodyBytes:     int64(cfg.HTTP.MaxBodyBytes),
		Dev:              dev,
		StaticClients:    clients,
		Metrics:          metrics,
		Pprof:            cfg.Admin.Pprof,
		Tracer:           tracer,
		Logger:           log,

		AdminToken:          adminTok,
		KeyRotationInterval: time.Duration(cfg.Admin.KeyRotationInterval),
	})
	if err != nil {
		return err
	}

	defer startKeyRotation(ctx, p)() // stopped on return, before the store closes

	servers := []*http.Server{newServer(cfg.Listen, p.Handler())}
	if cfg.AdminListen != "" {
		servers = append(servers, newServer(cfg.AdminListen, p.AdminHandler()))
	}
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", srv.Addr, err)
		}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	log.Info("otpgate started", "version", version, "issuer", cfg.Issuer, "listen", cfg.Listen,
		"admin_listen", cfg.AdminListen, "storage", cfg.Storage, "factor", cfg.Factor, "sms_sender", cfg.SMS.Sender, "dev", dev)
	if dev {
		fmt.Fprintf(out, "\notpgate is running in development mode.\n"+
			"  Start page:   %[1]s/\n"+
			"  Demo login:   %[1]s/dev/demo\n"+
			"  SMS outbox:   %[1]s/dev/outbox (JSON: %[1]s/dev/outbox.json)\n"+
			"  Discovery:    %[1]s/.well-known/openid-configuration\n"+
			"  Health:       http://%[2]s/healthz, /readyz\n"+
			"%[3]s\n", cfg.Issuer, cfg.AdminListen, adminBanner(cfg.AdminListen, adminTok, adminTokGenerated))
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("listener failed", "err", err)
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(shutdownCtx)
	}
	return nil
}

func newServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

func newLogger(c config.LogConfig, out io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

func openStore(ctx context.Context, cfg config.Config) (storage.Store, error) {
	if cfg.Storage != "redis" {
		return memory.New(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := redis.OpenUniversal(ctx, redisOptions(cfg.Redis), redis.WithPrefix(cfg.Redis.KeyPrefix))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// openSender builds the SMS sender from the sms section: the development
// shorthand sms.sender, or the providers behind one failover sender. Provider
// options are decoded strictly here, before anything listens, and each
// provider's startup check (credentials usable) runs unless
// sms.skip_startup_check is set.
// smsSetup describes the configured SMS providers for the sender registry.
func smsSetup(s config.SMSConfig) sms.Setup {
	setup := sms.Setup{
		Routes:    s.Routes,
		Breaker:   sms.Breaker{Failures: s.Breaker.Failures, Cooldown: time.Duration(s.Breaker.Cooldown)},
		RoutesKey: "sms.routes",
	}
	for i, p := range s.Providers {
		setup.Providers = append(setup.Providers, sms.ProviderSpec{
			Key: fmt.Sprintf("sms.providers[%d]", i), Name: p.Name, Type: p.Type, Config: p.Config.Node,
		})
	}
	return setup
}

func openSender(ctx context.Context, cfg config.Config, dev bool, store storage.Store, log *slog.Logger, metrics *provider.Metrics, tracer trace.Tracer) (sms.Sender, error) {
	s := cfg.SMS
	deps := sms.Deps{Logger: log, Store: store, Dev: dev, Observer: metrics, Tracer: tracer}
	if len(s.Providers) == 0 {
		var c sms.Config
		switch s.Sender {
		case "outbox":
			if !dev {
				log.Warn("sms: the outbox sender texts nobody; configure sms.providers to send real SMS")
			}
			c = &sms.OutboxConfig{Size: s.OutboxSize}
		case "log":
			c = &sms.LogConfig{}
		default:
			return nil, fmt.Errorf("sms: unknown sender %q", s.Sender)
		}
		sender, err := c.Open(deps)
		if err != nil {
			return nil, err
		}
		return sms.Trace(s.Sender, sms.Observe(s.Sender, sender, metrics), tracer), nil
	}
	setup := smsSetup(s)
	names := make([]string, len(s.Providers))
	for i, p := range s.Providers {
		names[i] = p.Name + " (" + p.Type + ")"
	}
	sender, err := setup.Open(deps)
	if err != nil {
		return nil, fmt.Errorf("invalid sms configuration:\n%s", indent(err))
	}
	metrics.WatchBreakers(sender.Breakers)
	if s.SkipStartupCheck {
		log.Warn("sms: provider startup checks skipped (sms.skip_startup_check)", "providers", names)
		return sender, nil
	}
	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sender.StartupCheck(checkCtx); err != nil {
		return nil, fmt.Errorf("%w\n(to start anyway, set sms.skip_startup_check: true or OTPGATE_SMS_SKIP_STARTUP_CHECK=true)", err)
	}
	log.Info("sms: providers ready", "providers", names)
	return sender, nil
}

func staticClients(list []config.ClientConfig) []provider.StaticClient {
	out := make([]provider.StaticClient, 0, len(list))
	for _, c := range list {
		out = append(out, provider.StaticClient{
			Client: storage.Client{
				ID:                       c.ClientID,
				Name:                     c.ClientName,
				LogoURI:                  c.LogoURI,
				RedirectURIs:             c.RedirectURIs,
				PostLogoutRedirectURIs:   c.PostLogoutRedirectURIs,
				GrantTypes:               c.GrantTypes,
				ResponseTypes:            c.ResponseTypes,
				Scopes:                   c.Scopes(),
				TokenEndpointAuthMethod:  c.TokenEndpointAuthMethod,
				IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
				SkipConsent:              c.SkipConsent,
			},
			Secret: c.ClientSecret,
		})
	}
	return out
}
