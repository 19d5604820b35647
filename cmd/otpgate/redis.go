package main

import (
	"time"

	"github.com/otpgate/otpgate/config"
	"github.com/otpgate/otpgate/storage/redis"
)

// redisOptions maps the redis section onto the store's options.
func redisOptions(c config.RedisConfig) redis.Options {
	retries := c.MaxRetries
	if retries == 0 {
		retries = -1 // go-redis reads 0 as "its default" (3); the config means none
	}
	return redis.Options{
		URL:            c.URL,
		SentinelMaster: c.SentinelMaster,
		SentinelAddrs:  c.SentinelAddrs,
		// The Sentinels' own credentials, apart from the master's in URL.
		SentinelUsername: c.SentinelUsername,
		SentinelPassword: c.SentinelPassword,
		ClusterAddrs:     c.ClusterAddrs,
		PoolSize:         c.PoolSize,
		DialTimeout:      time.Duration(c.DialTimeout),
		ReadTimeout:      time.Duration(c.ReadTimeout),
		WriteTimeout:     time.Duration(c.WriteTimeout),
		MaxRetries:       retries,
	}
}
