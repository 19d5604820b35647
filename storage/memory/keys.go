package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// CreateKey stores k until k.ExpiresAt, or until deleted when ExpiresAt is zero.
func (s *Store) CreateKey(ctx context.Context, k storage.SigningKey) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: create key %s: %w", k.ID, err)
	}
	defer s.mu.Unlock()
	if k.ID == "" {
		return fmt.Errorf("memory: create key: %w", errEmptyID)
	}
	if _, ok := s.key(k.ID); ok {
		return fmt.Errorf("memory: create key %s: %w", k.ID, storage.ErrAlreadyExists)
	}
	s.keys[k.ID] = cloneKey(k)
	return nil
}

// ListKeys returns every unexpired key, newest first (CreatedAt descending,
// then id ascending).
func (s *Store) ListKeys(ctx context.Context) ([]storage.SigningKey, error) {
	if err := s.lock(ctx); err != nil {
		return nil, fmt.Errorf("memory: list keys: %w", err)
	}
	defer s.mu.Unlock()
	now := s.now()
	out := make([]storage.SigningKey, 0, len(s.keys))
	for id, k := range s.keys {
		if keyExpired(k, now) {
			delete(s.keys, id)
			continue
		}
		out = append(out, cloneKey(k))
	}
	slices.SortFunc(out, func(a, b storage.SigningKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// UpdateKey applies update to the key atomically: update runs with the store
// locked, so it must not call the store. update may not change the id; the key
// then lives until whatever ExpiresAt update leaves.
func (s *Store) UpdateKey(ctx context.Context, id string, update func(storage.SigningKey) (storage.SigningKey, error)) (storage.SigningKey, error) {
	if err := s.lock(ctx); err != nil {
		return storage.SigningKey{}, fmt.Errorf("memory: update key %s: %w", id, err)
	}
	defer s.mu.Unlock()
	k, ok := s.key(id)
	if !ok {
		return storage.SigningKey{}, fmt.Errorf("memory: update key %s: %w", id, storage.ErrNotFound)
	}
	k, err := update(cloneKey(k))
	if err != nil {
		return storage.SigningKey{}, err
	}
	if k.ID != id {
		return storage.SigningKey{}, fmt.Errorf("memory: update key %s: the update changed the id to %q", id, k.ID)
	}
	s.keys[id] = cloneKey(k)
	return k, nil
}

// DeleteKey removes the key; ErrNotFound when absent.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: delete key %s: %w", id, err)
	}
	defer s.mu.Unlock()
	if _, ok := s.key(id); !ok {
		return fmt.Errorf("memory: delete key %s: %w", id, storage.ErrNotFound)
	}
	delete(s.keys, id)
	return nil
}

func (s *Store) key(id string) (storage.SigningKey, bool) {
	k, ok := s.keys[id]
	if !ok {
		return storage.SigningKey{}, false
	}
	if keyExpired(k, s.now()) {
		delete(s.keys, id)
		return storage.SigningKey{}, false
	}
	return k, true
}

// keyExpired reports whether k is gone at now; a zero ExpiresAt never expires.
func keyExpired(k storage.SigningKey, now time.Time) bool {
	return !k.ExpiresAt.IsZero() && expired(k.ExpiresAt, now)
}

func cloneKey(k storage.SigningKey) storage.SigningKey {
	k.Encrypted = slices.Clone(k.Encrypted)
	k.Public = slices.Clone(k.Public)
	return k
}
