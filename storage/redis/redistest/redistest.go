// Package redistest connects tests to a real Redis: storage/redis's own tests
// and the provider's end-to-end tests use it alike.
//
// The server comes from OTPGATE_TEST_REDIS_URL (default
// redis://127.0.0.1:6379/0). With OTPGATE_TEST_REDIS_CLUSTER=true the URL names
// a Redis Cluster instead (goredis.ParseClusterURL: more nodes with ?addr=), so
// the same tests prove that every script stays in one slot. When the server
// does not answer the test is skipped, with
// a message saying how to run it, except under CI=true where a missing Redis is
// a failure. Each test gets its own random key prefix, and its keys are deleted
// when it ends, so tests never see each other's data and never flush a database.
//
// Tests that must stop and restart Redis, or need a Sentinel, start a
// redis-server of their own with StartServer and StartSentinel.
//
// This package imports go-redis and testing only.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// EnvURL names the environment variable holding the Redis URL for tests.
const EnvURL = "OTPGATE_TEST_REDIS_URL"

// EnvCluster names the environment variable that, set to "true", makes EnvURL a
// Redis Cluster URL.
const EnvCluster = "OTPGATE_TEST_REDIS_CLUSTER"

// DefaultURL is used when EnvURL is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

// New returns a client on the test Redis and a fresh key prefix
// ("otpgate-test:<random>:") for t. At cleanup it deletes every key under the
// prefix and closes the client.
func New(t testing.TB) (goredis.UniversalClient, string) {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url == "" {
		url = DefaultURL
	}
	client, addr, err := dial(url)
	if err != nil {
		t.Fatalf("redistest: %s: %v", EnvURL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		msg := "redistest: no Redis at " + addr + " (" + err.Error() + "). " +
			"Start one (redis-server, or docker run -p 6379:6379 redis:7) " +
			"or point " + EnvURL + " at one, e.g. " + EnvURL + "=redis://127.0.0.1:6379/0"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix := "otpgate-test:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := Clear(ctx, client, prefix); err != nil {
			t.Errorf("redistest: delete keys %s*: %v", prefix, err)
		}
		_ = client.Close()
	})
	return client, prefix
}

// dial builds the client for url, a cluster client under EnvCluster=true.
func dial(url string) (goredis.UniversalClient, string, error) {
	if os.Getenv(EnvCluster) == "true" {
		opts, err := goredis.ParseClusterURL(url)
		if err != nil {
			return nil, "", err
		}
		return goredis.NewClusterClient(opts), strings.Join(opts.Addrs, ","), nil
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, "", err
	}
	return goredis.NewClient(opts), opts.Addr, nil
}

// Keys lists every key that starts with prefix, on every master of a cluster.
// prefix must not contain glob characters (* ? [ ] \).
func Keys(ctx context.Context, client goredis.UniversalClient, prefix string) ([]string, error) {
	var mu sync.Mutex
	var keys []string
	err := eachNode(ctx, client, func(ctx context.Context, node goredis.UniversalClient) error {
		iter := node.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	})
	return keys, err
}

// Clear deletes every key that starts with prefix, on every master of a
// cluster. prefix must not contain glob characters (* ? [ ] \).
func Clear(ctx context.Context, client goredis.UniversalClient, prefix string) error {
	return eachNode(ctx, client, func(ctx context.Context, node goredis.UniversalClient) error {
		keys, err := Keys(ctx, node, prefix)
		if err != nil || len(keys) == 0 {
			return err
		}
		// One UNLINK per key: on a cluster the keys of a node span slots.
		_, err = node.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, k := range keys {
				p.Unlink(ctx, k)
			}
			return nil
		})
		return err
	})
}

// eachNode runs fn on every master of a cluster, or on client itself.
func eachNode(ctx context.Context, client goredis.UniversalClient, fn func(ctx context.Context, node goredis.UniversalClient) error) error {
	if cc, ok := client.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
			return fn(ctx, node)
		})
	}
	return fn(ctx, client)
}
