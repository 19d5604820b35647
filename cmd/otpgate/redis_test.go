package main

import (
	"slices"
	"testing"
	"time"

	"github.com/otpgate/otpgate/config"
)

func TestRedisOptions(t *testing.T) {
	env := map[string]string{
		"OTPGATE_REDIS_URL":             "redis://n1:7000",
		"OTPGATE_REDIS_CLUSTER_ADDRS":   "n2:7000,n3:7000",
		"OTPGATE_REDIS_POOL_SIZE":       "40",
		"OTPGATE_REDIS_READ_TIMEOUT":    "250ms",
		"OTPGATE_REDIS_MAX_RETRIES":     "0",
		"OTPGATE_REDIS_SENTINEL_MASTER": "",
	}
	cfg, err := config.Load("", true, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	o := redisOptions(cfg.Redis)
	if o.Mode() != "cluster" || !slices.Equal(o.ClusterAddrs, []string{"n2:7000", "n3:7000"}) || o.PoolSize != 40 ||
		o.ReadTimeout != 250*time.Millisecond || o.WriteTimeout != 3*time.Second || o.DialTimeout != 5*time.Second {
		t.Errorf("options = %+v", o)
	}
	if o.MaxRetries != -1 {
		t.Errorf("max_retries 0 became %d, want -1 (go-redis: no retries; 0 would mean its default of 3)", o.MaxRetries)
	}
	cfg.Redis.MaxRetries = 2
	if o := redisOptions(cfg.Redis); o.MaxRetries != 2 {
		t.Errorf("max_retries 2 became %d", o.MaxRetries)
	}
}

func TestRedisOptionsSentinelCredentials(t *testing.T) {
	env := map[string]string{
		"OTPGATE_REDIS_URL":               "redis://:master-pw@mymaster/0",
		"OTPGATE_REDIS_SENTINEL_MASTER":   "mymaster",
		"OTPGATE_REDIS_SENTINEL_ADDRS":    "s1:26379,s2:26379",
		"OTPGATE_REDIS_SENTINEL_USERNAME": "watcher",
		"OTPGATE_REDIS_SENTINEL_PASSWORD": "sentinel-pw",
	}
	cfg, err := config.Load("", true, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	o := redisOptions(cfg.Redis)
	if o.Mode() != "sentinel" || o.SentinelUsername != "watcher" || o.SentinelPassword != "sentinel-pw" || o.URL != env["OTPGATE_REDIS_URL"] {
		t.Errorf("options = %+v", o)
	}
}
