package provider_test

import (
	"context"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/factors/guard"
)

// roundTrips counts the network round trips of a Redis client: one per
// command, one per pipeline.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// withRedisHook puts hook on the Redis store's client.
func withRedisHook(hook goredis.Hook) envOption {
	return func(c *envConfig) { c.redisHook = hook }
}

// Round trips to Redis are most of a login's latency and much of its CPU
// (docs/benchmarks.md). This pins how many one complete login makes, so that
// a change that adds one is a choice, not an accident. Numbers measured at
// the time of writing; lower them when a change saves one.
func TestLoginRoundTrips(t *testing.T) {
	for _, c := range []struct {
		name  string
		guard bool
		want  int64
	}{
		{"limits off", false, 22},
		{"default limits and breaker", true, 28},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := &roundTrips{}
			opts := []envOption{withRedisHook(rt)}
			if c.guard {
				opts = append(opts, withGuard(guard.DefaultPolicy()))
			}
			e := newEnv(t, "redis", opts...)
			r := e.newRP(clientTrusted, "openid", "phone")
			// A first login loads every script on the server (EVALSHA then
			// EVAL the first time) and fills the signing-key cache.
			e.newBrowser().loginTokens(r, phoneA, phoneA)

			before := rt.n.Load()
			e.newBrowser().loginTokens(r, phoneB, phoneB)
			got := rt.n.Load() - before - 1 // the test's own outbox read (codeFor)
			t.Logf("%s: %d round trips per login", c.name, got)
			if got != c.want {
				t.Errorf("a login makes %d round trips to Redis, want %d: if this change saves some, lower the number (and docs/benchmarks.md)", got, c.want)
			}
		})
	}
}
