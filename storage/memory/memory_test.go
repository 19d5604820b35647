package memory_test

import (
	"testing"

	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
	"github.com/otpgate/otpgate/storage/storagetest"
)

func TestStore(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}
