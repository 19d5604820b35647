package provider_test

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/storage/redis/redistest"
)

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
			rt := &redistest.RoundTrips{}
			opts := []envOption{withRedisHook(rt)}
			if c.guard {
				opts = append(opts, withGuard(guard.DefaultPolicy()))
			}
			e := newEnv(t, "redis", opts...)
			r := e.newRP(clientTrusted, "openid", "phone")
			// A first login loads every script on the server (EVALSHA then
			// EVAL the first time) and fills the signing-key cache.
			e.newBrowser().loginTokens(r, phoneA, phoneA)

			before := rt.Count()
			e.newBrowser().loginTokens(r, phoneB, phoneB)
			got := rt.Count() - before - 1 // the test's own outbox read (codeFor)
			t.Logf("%s: %d round trips per login", c.name, got)
			if got != c.want {
				t.Errorf("a login makes %d round trips to Redis, want %d: if this change saves some, lower the number (and docs/benchmarks.md)", got, c.want)
			}
		})
	}
}
