package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/storage"
)

// Signing keys live under the {keys} hash tag with a sorted-set index of their
// ids (score: creation time). A key with an ExpiresAt expires by itself; its
// index member is pruned by the next ListKeys that notices.

// CreateKey stores k; ErrAlreadyExists when the kid is taken.
func (s *Store) CreateKey(ctx context.Context, k storage.SigningKey) error {
	if k.ID == "" {
		return fmt.Errorf("redis: create key: %w", errEmptyID)
	}
	b, err := json.Marshal(toKeyWire(k, 1))
	if err != nil {
		return fmt.Errorf("redis: create key %s: encode: %w", k.ID, err)
	}
	created, err := s.runScript(ctx, createIndexed, []string{s.signingKey(k.ID), s.keyIndexKey()},
		b, optionalExpiryArg(k.ExpiresAt), k.ID, ms(k.CreatedAt)).Int()
	if err != nil {
		return fail(err, "create key %s", k.ID)
	}
	if created == 0 {
		return fmt.Errorf("redis: create key %s: %w", k.ID, storage.ErrAlreadyExists)
	}
	return nil
}

// ListKeys returns every unexpired key, newest first (by CreatedAt, then kid).
// Two round trips (ZRANGE, MGET), three when expired members are pruned.
func (s *Store) ListKeys(ctx context.Context) ([]storage.SigningKey, error) {
	index := s.keyIndexKey()
	ids, err := s.c.ZRange(ctx, index, 0, -1).Result()
	if err != nil {
		return nil, fail(err, "list keys")
	}
	keys := []storage.SigningKey{}
	if len(ids) == 0 {
		return keys, nil
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = s.signingKey(id)
	}
	vals, err := s.c.MGet(ctx, names...).Result()
	if err != nil {
		return nil, fail(err, "list keys")
	}
	now := s.now()
	var goneKeys []string
	var goneIDs []any
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			goneKeys = append(goneKeys, names[i])
			goneIDs = append(goneIDs, ids[i])
			continue
		}
		var w keyWire
		if err := json.Unmarshal([]byte(str), &w); err != nil {
			return nil, fmt.Errorf("redis: list keys: decode %s: %w", ids[i], err)
		}
		k := w.key()
		if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
			continue // Redis has not dropped it yet (or the clocks differ)
		}
		keys = append(keys, k)
	}
	if len(goneKeys) > 0 {
		err := s.runScript(ctx, pruneIndex, append([]string{index}, goneKeys...), goneIDs...).Err()
		if err != nil {
			return nil, fail(err, "list keys: prune index")
		}
	}
	slices.SortFunc(keys, func(a, b storage.SigningKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return keys, nil
}

// UpdateKey applies update with compare-and-swap on the key's version; the kid
// cannot change. The key then expires at whatever ExpiresAt update left (never,
// when zero).
func (s *Store) UpdateKey(ctx context.Context, id string, update func(storage.SigningKey) (storage.SigningKey, error)) (storage.SigningKey, error) {
	key := s.signingKey(id)
	for try := range casTries {
		var w keyWire
		if err := s.getJSON(ctx, key, &w, "update key %s", id); err != nil {
			return storage.SigningKey{}, err
		}
		k, err := update(w.key())
		if err != nil {
			return storage.SigningKey{}, err
		}
		k.ID = id
		b, err := json.Marshal(toKeyWire(k, w.V+1))
		if err != nil {
			return storage.SigningKey{}, fmt.Errorf("redis: update key %s: encode: %w", id, err)
		}
		ok, err := s.swap(ctx, []string{key, s.keyIndexKey()}, w.V, b, optionalExpiryArg(k.ExpiresAt), id, ms(k.CreatedAt))
		if err != nil {
			return storage.SigningKey{}, fail(err, "update key %s", id)
		}
		if ok {
			return k, nil
		}
		if err := backoff(ctx, try); err != nil {
			return storage.SigningKey{}, fail(err, "update key %s", id)
		}
	}
	return storage.SigningKey{}, conflict("update key %s", id)
}

// DeleteKey removes the key and its index entry; ErrNotFound when absent.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	n, err := s.runScript(ctx, deleteIndexed, []string{s.signingKey(id), s.keyIndexKey()}, id).Int()
	if err == nil && n == 0 {
		err = goredis.Nil
	}
	return fail(err, "delete key %s", id)
}
