package redis

import (
	cryptorand "crypto/rand"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/redis/redistest"
)

func TestOptionsUniversal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		o     Options
		mode  string
		check func(t *testing.T, u *goredis.UniversalOptions)
	}{
		{"standalone", Options{URL: "rediss://user:pw@redis.example:6380/2?pool_size=7&read_timeout=2s"}, "standalone",
			func(t *testing.T, u *goredis.UniversalOptions) {
				if !slices.Equal(u.Addrs, []string{"redis.example:6380"}) || u.DB != 2 || u.Username != "user" || u.Password != "pw" ||
					u.TLSConfig == nil || u.PoolSize != 7 || u.ReadTimeout != 2*time.Second || u.MasterName != "" || u.IsClusterMode {
					t.Errorf("%+v", u)
				}
			}},
		{"explicit options win over the URL's", Options{URL: "redis://r:6379?pool_size=7&max_retries=5",
			PoolSize: 50, DialTimeout: time.Second, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: -1}, "standalone",
			func(t *testing.T, u *goredis.UniversalOptions) {
				if u.PoolSize != 50 || u.DialTimeout != time.Second || u.ReadTimeout != 200*time.Millisecond ||
					u.WriteTimeout != 300*time.Millisecond || u.MaxRetries != -1 {
					t.Errorf("%+v", u)
				}
			}},
		{"sentinel", Options{URL: "redis://:pw@mymaster/1", SentinelMaster: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26379"}}, "sentinel",
			func(t *testing.T, u *goredis.UniversalOptions) {
				if u.MasterName != "mymaster" || !slices.Equal(u.Addrs, []string{"s1:26379", "s2:26379"}) || u.DB != 1 || u.Password != "pw" ||
					u.SentinelUsername != "" || u.SentinelPassword != "" {
					t.Errorf("%+v", u)
				}
			}},
		{"sentinel credentials apart from the master's", Options{URL: "redis://app:pw@mymaster/0", SentinelMaster: "mymaster", SentinelAddrs: []string{"s1:26379"},
			SentinelUsername: "sentinel-user", SentinelPassword: "sentinel-pw"}, "sentinel",
			func(t *testing.T, u *goredis.UniversalOptions) {
				if u.SentinelUsername != "sentinel-user" || u.SentinelPassword != "sentinel-pw" || u.Username != "app" || u.Password != "pw" {
					t.Errorf("%+v", u)
				}
				// What go-redis hands its Sentinel client.
				if f := u.Failover(); f.SentinelUsername != "sentinel-user" || f.SentinelPassword != "sentinel-pw" || f.Password != "pw" {
					t.Errorf("failover options: %+v", f)
				}
			}},
		{"cluster from ?addr=", Options{URL: "redis://:pw@n1:7000?addr=n2:7000&addr=n3:7000&dial_timeout=2s"}, "cluster",
			func(t *testing.T, u *goredis.UniversalOptions) {
				if !u.IsClusterMode || !slices.Equal(u.Addrs, []string{"n1:7000", "n2:7000", "n3:7000"}) || u.Password != "pw" || u.DialTimeout != 2*time.Second {
					t.Errorf("%+v", u)
				}
			}},
		{"cluster from cluster_addrs, duplicates dropped", Options{URL: "redis://n1:7000", ClusterAddrs: []string{"n1:7000", " n2:7000"}}, "cluster",
			func(t *testing.T, u *goredis.UniversalOptions) {
				if !u.IsClusterMode || !slices.Equal(u.Addrs, []string{"n1:7000", "n2:7000"}) {
					t.Errorf("%+v", u)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m := tc.o.Mode(); m != tc.mode {
				t.Errorf("Mode() = %q, want %q", m, tc.mode)
			}
			u, err := tc.o.universal()
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, u)
		})
	}
}

func TestOptionsUniversalRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"sentinel and cluster", Options{URL: "redis://r?addr=n2:1", SentinelMaster: "m", SentinelAddrs: []string{"s:1"}}, "not both"},
		{"sentinel without addresses", Options{URL: "redis://r", SentinelMaster: "m"}, "at least one Sentinel"},
		{"sentinel addresses without a master", Options{URL: "redis://r", SentinelAddrs: []string{"s:1"}}, "need sentinel_master"},
		{"sentinel password without a master", Options{URL: "redis://r", SentinelPassword: "hunter2"}, "credentials need sentinel_master"},
		{"sentinel user without a password", Options{URL: "redis://r", SentinelMaster: "m", SentinelAddrs: []string{"s:1"}, SentinelUsername: "u"}, "needs a Sentinel password"},
		{"cluster on database 1", Options{URL: "redis://r/1", ClusterAddrs: []string{"n2:1"}}, "only database 0"},
		{"scheme", Options{URL: "http://:hunter2@r"}, "invalid URL scheme"},
		{"bad url", Options{URL: "redis://:hunter2@r:bad\x7f"}, "not a valid URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.o.universal()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}

// checkRoundTrip runs a script (challenge verification) and a plain record
// through s, proving the client reaches a writable master.
func checkRoundTrip(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	now := time.Now()
	c := storage.Challenge{ID: "c-" + cryptorand.Text(), FlowID: "f", Phone: "+33612345678", CodeHash: hash("123456"),
		MaxAttempts: 3, Sends: 1, LastSentAt: now, ExpiresAt: now.Add(time.Minute), CreatedAt: now}
	if err := s.CreateChallenge(ctx, c); err != nil {
		t.Fatalf("CreateChallenge: %v", err)
	}
	res, err := s.VerifyChallenge(ctx, c.ID, hash("123456"), now)
	if err != nil || res.Outcome != storage.VerifyOK {
		t.Fatalf("VerifyChallenge = %v, %v; want ok", res.Outcome, err)
	}
	if ok, _, err := s.Allow(ctx, "k-"+cryptorand.Text(), 1, time.Minute); err != nil || !ok {
		t.Fatalf("Allow = %v, %v", ok, err)
	}
}

func TestOpenUniversalStandalone(t *testing.T) {
	srv := redistest.StartServer(t)
	s, err := OpenUniversal(t.Context(), Options{URL: srv.URL(), PoolSize: 3, ReadTimeout: 500 * time.Millisecond, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := s.c.(*goredis.Client)
	if !ok {
		t.Fatalf("client is a %T, want *goredis.Client", s.c)
	}
	if o := c.Options(); o.PoolSize != 3 || o.ReadTimeout != 500*time.Millisecond || o.MaxRetries != 0 {
		t.Errorf("options not applied: pool %d, read timeout %v, retries %d", o.PoolSize, o.ReadTimeout, o.MaxRetries)
	}
	checkRoundTrip(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()).Err(); err == nil {
		t.Error("Close left the client OpenUniversal opened open")
	}
}

func TestOpenUniversalSentinel(t *testing.T) {
	master := redistest.StartServer(t)
	sentinel := redistest.StartSentinel(t, "otpgate-test", master)
	s, err := OpenUniversal(t.Context(), Options{URL: "redis://otpgate-test/0", SentinelMaster: "otpgate-test", SentinelAddrs: []string{sentinel.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.c.(*goredis.Client); !ok { // go-redis's failover client is a *Client
		t.Fatalf("client is a %T, want *goredis.Client", s.c)
	}
	checkRoundTrip(t, s)
	// The keys landed on the master the Sentinel named, not on the URL's host.
	direct := goredis.NewClient(&goredis.Options{Addr: master.Addr})
	defer direct.Close()
	if n, err := direct.DBSize(t.Context()).Result(); err != nil || n == 0 {
		t.Errorf("master holds %d keys (%v), want the round trip's", n, err)
	}
}

// TestOpenUniversalSentinelPassword runs against a Sentinel with
// requirepass: without sentinel_password the client cannot ask it where the
// master is; with it, it can, and the master itself needs no password.
func TestOpenUniversalSentinelPassword(t *testing.T) {
	const password = "sentinel-secret-0123456789"
	master := redistest.StartServer(t)
	sentinel := redistest.StartSentinel(t, "otpgate-test", master, redistest.WithRequirePass(password))
	o := Options{URL: "redis://otpgate-test/0", SentinelMaster: "otpgate-test", SentinelAddrs: []string{sentinel.Addr},
		DialTimeout: time.Second, MaxRetries: -1}

	// The Sentinel really refuses an unauthenticated client.
	direct := goredis.NewSentinelClient(&goredis.Options{Addr: sentinel.Addr})
	defer direct.Close()
	if _, err := direct.GetMasterAddrByName(t.Context(), "otpgate-test").Result(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("unauthenticated SENTINEL get-master-addr-by-name: %v, want NOAUTH", err)
	}

	for _, tc := range []struct{ name, password, want string }{
		{"without the password", "", "NOAUTH"},
		{"with a wrong password", "wrong-" + password, "WRONGPASS"},
	} {
		o := o
		o.SentinelPassword = tc.password
		s, err := OpenUniversal(t.Context(), o)
		if err == nil {
			_ = s.Close()
			t.Errorf("%s: connected, want a refusal", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want the Sentinel's %s", tc.name, err, tc.want)
		}
		if tc.password != "" && strings.Contains(err.Error(), tc.password) {
			t.Errorf("%s: the error repeats the password: %v", tc.name, err)
		}
	}

	o.SentinelPassword = password
	s, err := OpenUniversal(t.Context(), o)
	if err != nil {
		t.Fatalf("with the Sentinel password: %v", err)
	}
	defer s.Close()
	checkRoundTrip(t, s)
}

func TestOpenUniversalUnreachable(t *testing.T) {
	srv := redistest.StartServer(t)
	srv.Stop()
	_, err := OpenUniversal(t.Context(), Options{URL: "redis://:hunter2@" + srv.Addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	if err == nil || !strings.Contains(err.Error(), "ping standalone "+srv.Addr) {
		t.Fatalf("err = %v, want a ping error naming the address", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error repeats the password: %v", err)
	}
}

// TestOpenUniversalCluster runs on the Cluster that .ci/run starts
// (OTPGATE_TEST_REDIS_CLUSTER=true with a URL listing its nodes).
func TestOpenUniversalCluster(t *testing.T) {
	if os.Getenv(redistest.EnvCluster) != "true" {
		t.Skip("not a Cluster: run with " + redistest.EnvCluster + "=true (see .ci/redis-cluster)")
	}
	_, prefix := redistest.New(t) // its cleanup deletes the keys under prefix
	s, err := OpenUniversal(t.Context(), Options{URL: os.Getenv(redistest.EnvURL)}, WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.c.(*goredis.ClusterClient); !ok {
		t.Fatalf("client is a %T, want *goredis.ClusterClient", s.c)
	}
	for range 20 { // random ids: the keys spread over the masters
		checkRoundTrip(t, s)
	}
}
