package redis_test

import (
	"testing"

	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/redis"
	"github.com/otpgate/otpgate/storage/redis/redistest"
	"github.com/otpgate/otpgate/storage/storagetest"
)

func TestStore(t *testing.T) {
	storagetest.Run(t, newStore)
}

// newStore returns a Store on the test Redis under a prefix of its own; the
// keys are deleted and the client closed when t ends.
func newStore(t *testing.T) storage.Store {
	client, prefix := redistest.New(t)
	return redis.New(client, redis.WithPrefix(prefix))
}
