package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRedisDeployment(t *testing.T) {
	sentinelPasswordFile := writeFile(t, "sentinel-password", "from-a-file\n")
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, r RedisConfig)
		want  []string
	}{
		{name: "defaults", env: map[string]string{"OTPGATE_REDIS_URL": "redis://redis:6379/0"}, check: func(t *testing.T, r RedisConfig) {
			if r.PoolSize != 0 || r.DialTimeout != seconds(5) || r.ReadTimeout != seconds(3) || r.WriteTimeout != seconds(3) || r.MaxRetries != 3 ||
				r.SentinelMaster != "" || r.SentinelAddrs != nil || r.ClusterAddrs != nil {
				t.Errorf("%+v", r)
			}
		}},
		{name: "sentinel from the file",
			yaml: "redis:\n  url: redis://:pw@mymaster/0\n  sentinel_master: mymaster\n  sentinel_addrs: [s1:26379, s2:26379]\n  pool_size: 50\n  read_timeout: 500ms\n  max_retries: 0\n",
			check: func(t *testing.T, r RedisConfig) {
				if r.SentinelMaster != "mymaster" || !slices.Equal(r.SentinelAddrs, []string{"s1:26379", "s2:26379"}) ||
					r.PoolSize != 50 || r.ReadTimeout != Duration(500*time.Millisecond) || r.MaxRetries != 0 {
					t.Errorf("%+v", r)
				}
			}},
		{name: "sentinel credentials from the environment",
			yaml: "redis:\n  url: redis://:pw@mymaster/0\n  sentinel_master: mymaster\n  sentinel_addrs: [s1:26379]\n",
			env:  map[string]string{"OTPGATE_REDIS_SENTINEL_USERNAME": "watcher", "OTPGATE_REDIS_SENTINEL_PASSWORD": "sentinel-pw"},
			check: func(t *testing.T, r RedisConfig) {
				if r.SentinelUsername != "watcher" || r.SentinelPassword != "sentinel-pw" {
					t.Errorf("%+v", r)
				}
				if s := r.String(); strings.Contains(s, "sentinel-pw") || !strings.Contains(s, "sentinel_password: REDACTED") {
					t.Errorf("the rendered section shows the Sentinel password:\n%s", s)
				}
			}},
		{name: "sentinel password from a file",
			yaml: "redis:\n  url: redis://mymaster/0\n  sentinel_master: mymaster\n  sentinel_addrs: [s1:26379]\n  sentinel_password_file: " + sentinelPasswordFile + "\n",
			check: func(t *testing.T, r RedisConfig) {
				if r.SentinelPassword != "from-a-file" || r.SentinelUsername != "" {
					t.Errorf("%+v", r)
				}
			}},
		{name: "sentinel credentials without sentinel",
			env: map[string]string{"OTPGATE_REDIS_URL": "redis://r", "OTPGATE_REDIS_SENTINEL_USERNAME": "u", "OTPGATE_REDIS_SENTINEL_PASSWORD": "hunter2"}, want: []string{
				"redis: option 'sentinel_username' is only used with 'sentinel_master': it authenticates to the Sentinels; the Redis password goes in 'url' (redis://:password@host:6379/0)",
				"redis: option 'sentinel_password' is only used with 'sentinel_master': it authenticates to the Sentinels; the Redis password goes in 'url' (redis://:password@host:6379/0)",
			}},
		{name: "sentinel user without a password",
			yaml: "redis:\n  url: redis://mymaster/0\n  sentinel_master: mymaster\n  sentinel_addrs: [s1:26379]\n  sentinel_username: watcher\n", want: []string{
				"redis: option 'sentinel_username' needs 'sentinel_password' (or 'sentinel_password_file'): a Sentinel ACL user authenticates with a password",
			}},
		{name: "sentinel password twice",
			yaml: "redis:\n  url: redis://mymaster/0\n  sentinel_master: mymaster\n  sentinel_addrs: [s1:26379]\n  sentinel_password: a\n  sentinel_password_file: " + sentinelPasswordFile + "\n", want: []string{
				"redis: option 'sentinel_password' and 'sentinel_password_file' are both set: set only one",
			}},
		{name: "cluster from the environment",
			env: map[string]string{"OTPGATE_REDIS_URL": "redis://n1:7000", "OTPGATE_REDIS_CLUSTER_ADDRS": "n2:7000, n3:7000",
				"OTPGATE_REDIS_DIAL_TIMEOUT": "1s", "OTPGATE_REDIS_WRITE_TIMEOUT": "250ms"},
			check: func(t *testing.T, r RedisConfig) {
				if !slices.Equal(r.ClusterAddrs, []string{"n2:7000", "n3:7000"}) || r.DialTimeout != seconds(1) || r.WriteTimeout != Duration(250*time.Millisecond) {
					t.Errorf("%+v", r)
				}
			}},
		{name: "cluster nodes in the url", env: map[string]string{"OTPGATE_REDIS_URL": "redis://n1:7000?addr=n2:7000&addr=n3:7000"}},
		{name: "sentinel without sentinels", yaml: "redis:\n  url: redis://m\n  sentinel_master: mymaster\n", want: []string{
			"redis: option 'sentinel_addrs' is required when 'sentinel_master' is set: list the Sentinels, e.g. [sentinel-1:26379, sentinel-2:26379]",
		}},
		{name: "sentinels without a master", yaml: "redis:\n  url: redis://m\n  sentinel_addrs: [s1:26379]\n", want: []string{
			"redis: option 'sentinel_master' is required when 'sentinel_addrs' is set: the name of the master the Sentinels monitor, e.g. 'mymaster'",
		}},
		{name: "sentinel and cluster", yaml: "redis:\n  url: redis://m?addr=n2:1\n  sentinel_master: mymaster\n  sentinel_addrs: [s1:26379]\n", want: []string{
			"redis: option 'sentinel_master' and 'cluster_addrs' (or ?addr= in 'url') are both set: a deployment is Sentinel or Cluster, not both",
		}},
		{name: "bad addresses", yaml: "redis:\n  url: redis://m\n  cluster_addrs: [n2]\n", env: map[string]string{"OTPGATE_REDIS_SENTINEL_ADDRS": "s1:x"}, want: []string{
			"redis: option 'sentinel_master' is required when 'sentinel_addrs' is set: the name of the master the Sentinels monitor, e.g. 'mymaster'",
			"redis: option 'sentinel_addrs[0]' must be a host:port address like ':8080' or '127.0.0.1:8081', got 's1:x'",
			"redis: option 'cluster_addrs[0]' must be a host:port address like ':8080' or '127.0.0.1:8081', got 'n2'",
		}},
		{name: "ranges", yaml: "redis:\n  url: redis://m\n  pool_size: -1\n  dial_timeout: 2m\n  read_timeout: 0s\n  write_timeout: 1ms\n  max_retries: 11\n", want: []string{
			"redis: option 'pool_size' must be between 0 and 10000, got '-1'",
			"redis: option 'dial_timeout' must be between 10ms and 1m, got '2m'",
			"redis: option 'read_timeout' must be between 10ms and 1m, got '0s'",
			"redis: option 'write_timeout' must be between 10ms and 1m, got '1ms'",
			"redis: option 'max_retries' must be between 0 and 10, got '11'",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = writeFile(t, "otpgate.yaml", tt.yaml)
			}
			c, err := Load(path, true, env(tt.env))
			wantProblems(t, err, tt.want...)
			if err != nil {
				return
			}
			if c.Storage != "redis" {
				t.Errorf("storage = %q, want redis", c.Storage)
			}
			if tt.check != nil {
				tt.check(t, c.Redis)
			}
		})
	}
}
