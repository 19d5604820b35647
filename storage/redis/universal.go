package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Options describe a Redis deployment for OpenUniversal: standalone, Sentinel
// or Cluster. Zero values mean go-redis's defaults.
type Options struct {
	// URL is a redis:// or rediss:// (TLS) URL, as goredis.ParseURL reads it:
	// credentials, database, TLS and connection parameters, and the address
	// of a standalone server or of a first Cluster node. Each ?addr=host:port
	// in its query adds a Cluster node, as in goredis.ParseClusterURL. With
	// SentinelMaster its host is not dialled (rediss:// still uses it as the
	// TLS server name): the Sentinels say where the master is.
	URL string

	// SentinelMaster is the name of the master the Sentinels at SentinelAddrs
	// monitor (Redis Sentinel: the client follows failovers).
	SentinelMaster string
	SentinelAddrs  []string // host:port of each Sentinel
	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// themselves (their requirepass or ACL user, Redis 6.2+); the master's
	// credentials stay in URL. Sentinel only.
	SentinelUsername string
	SentinelPassword string

	// ClusterAddrs are Redis Cluster nodes besides the URL's host. Any Cluster
	// node address (here or as ?addr= in URL) selects Cluster mode.
	ClusterAddrs []string

	PoolSize     int           // connections per node; 0: 10 per GOMAXPROCS
	DialTimeout  time.Duration // 0: 5s
	ReadTimeout  time.Duration // 0: 3s
	WriteTimeout time.Duration // 0: ReadTimeout
	MaxRetries   int           // retries of a failed command; 0: 3, -1: none
}

// Mode names the kind of deployment Options describe.
func (o Options) Mode() string {
	switch {
	case o.SentinelMaster != "":
		return "sentinel"
	case len(o.ClusterAddrs) > 0 || hasAddrParam(o.URL):
		return "cluster"
	}
	return "standalone"
}

// hasAddrParam reports whether a URL carries ?addr= (more Cluster nodes).
func hasAddrParam(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Query().Has("addr")
}

// universal translates o into go-redis's options. Errors never quote the URL:
// it may carry a password.
func (o Options) universal() (*goredis.UniversalOptions, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, errors.New("parse url: not a valid URL")
	}
	// goredis.ParseURL refuses ?addr= (only its Cluster parser knows it):
	// take the extra nodes out first.
	q := u.Query()
	extra := q["addr"]
	q.Del("addr")
	u.RawQuery = q.Encode()
	so, err := goredis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}

	sentinel := o.SentinelMaster != ""
	cluster := len(o.ClusterAddrs) > 0 || len(extra) > 0
	switch {
	case sentinel && cluster:
		return nil, errors.New("choose Sentinel (sentinel_master) or Cluster (cluster_addrs, ?addr=), not both")
	case sentinel && len(o.SentinelAddrs) == 0:
		return nil, errors.New("sentinel_master needs at least one Sentinel address")
	case !sentinel && len(o.SentinelAddrs) > 0:
		return nil, errors.New("Sentinel addresses need sentinel_master, the name of the monitored master")
	case !sentinel && (o.SentinelUsername != "" || o.SentinelPassword != ""):
		return nil, errors.New("Sentinel credentials need sentinel_master: they authenticate to the Sentinels only")
	case o.SentinelUsername != "" && o.SentinelPassword == "":
		return nil, errors.New("a Sentinel user name needs a Sentinel password")
	case cluster && so.DB != 0:
		return nil, fmt.Errorf("Redis Cluster has only database 0, the URL selects %d", so.DB)
	}

	uo := &goredis.UniversalOptions{
		Addrs:           []string{so.Addr},
		ClientName:      so.ClientName,
		Protocol:        so.Protocol,
		Username:        so.Username,
		Password:        so.Password,
		DB:              so.DB,
		MaxRetries:      so.MaxRetries,
		MinRetryBackoff: so.MinRetryBackoff,
		MaxRetryBackoff: so.MaxRetryBackoff,
		DialTimeout:     so.DialTimeout,
		ReadTimeout:     so.ReadTimeout,
		WriteTimeout:    so.WriteTimeout,
		PoolFIFO:        so.PoolFIFO,
		PoolSize:        so.PoolSize,
		PoolTimeout:     so.PoolTimeout,
		MinIdleConns:    so.MinIdleConns,
		MaxIdleConns:    so.MaxIdleConns,
		MaxActiveConns:  so.MaxActiveConns,
		ConnMaxIdleTime: so.ConnMaxIdleTime,
		ConnMaxLifetime: so.ConnMaxLifetime,
		TLSConfig:       so.TLSConfig,
	}
	switch {
	case sentinel:
		uo.MasterName = o.SentinelMaster
		uo.Addrs = slices.Clone(o.SentinelAddrs)
		uo.SentinelUsername = o.SentinelUsername
		uo.SentinelPassword = o.SentinelPassword
	case cluster:
		uo.IsClusterMode = true // even with a single seed node
		for _, a := range slices.Concat(extra, o.ClusterAddrs) {
			if a = strings.TrimSpace(a); a != "" && !slices.Contains(uo.Addrs, a) {
				uo.Addrs = append(uo.Addrs, a)
			}
		}
	}
	// Explicit options win over URL parameters.
	if o.PoolSize != 0 {
		uo.PoolSize = o.PoolSize
	}
	if o.DialTimeout != 0 {
		uo.DialTimeout = o.DialTimeout
	}
	if o.ReadTimeout != 0 {
		uo.ReadTimeout = o.ReadTimeout
	}
	if o.WriteTimeout != 0 {
		uo.WriteTimeout = o.WriteTimeout
	}
	if o.MaxRetries != 0 {
		uo.MaxRetries = o.MaxRetries
	}
	return uo, nil
}

// OpenUniversal connects to the deployment o describes through a
// goredis.UniversalClient (a Client, a Sentinel-backed FailoverClient or a
// ClusterClient), checks it with PING and returns a Store that owns the
// client: Close closes it.
func OpenUniversal(ctx context.Context, o Options, opts ...Option) (*Store, error) {
	uo, err := o.universal()
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	client := goredis.NewUniversalClient(uo)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis: ping %s %s: %w", o.Mode(), strings.Join(uo.Addrs, ","), err)
	}
	s := New(client, opts...)
	s.owned = true
	return s, nil
}
