package redis

import (
	"context"
	"encoding/json"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/storage"
)

// Clients live under the {clients} hash tag with a sorted-set index of their
// ids (all scores 0, so the set is ordered by id): creation and deletion update
// both in one script, and listing is one ZRANGE BYLEX plus one MGET on the same
// slot. Clients do not expire.

// CreateClient stores c; ErrAlreadyExists when the id is taken.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	if c.ID == "" {
		return fmt.Errorf("redis: create client: %w", errEmptyID)
	}
	b, err := json.Marshal(toClientWire(c, 1))
	if err != nil {
		return fmt.Errorf("redis: create client %s: encode: %w", c.ID, err)
	}
	created, err := s.runScript(ctx, createIndexed, []string{s.clientKey(c.ID), s.clientIndexKey()}, b, 0, c.ID, 0).Int()
	if err != nil {
		return fail(err, "create client %s", c.ID)
	}
	if created == 0 {
		return fmt.Errorf("redis: create client %s: %w", c.ID, storage.ErrAlreadyExists)
	}
	return nil
}

// GetClient returns the client; ErrNotFound when absent.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	var w clientWire
	if err := s.getJSON(ctx, s.clientKey(id), &w, "get client %s", id); err != nil {
		return storage.Client{}, err
	}
	return w.client(), nil
}

// ListClients returns at most limit clients ordered by id, starting after the
// id after ("" for the first page). Two round trips: ZRANGE BYLEX, MGET.
func (s *Store) ListClients(ctx context.Context, after string, limit int) ([]storage.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: list clients: %w", err)
	}
	if limit <= 0 {
		return []storage.Client{}, nil
	}
	start := "-"
	if after != "" {
		start = "(" + after
	}
	ids, err := s.c.ZRangeByLex(ctx, s.clientIndexKey(), &goredis.ZRangeBy{Min: start, Max: "+", Count: int64(limit)}).Result()
	if err != nil {
		return nil, fail(err, "list clients")
	}
	clients := make([]storage.Client, 0, len(ids))
	if len(ids) == 0 {
		return clients, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.clientKey(id)
	}
	vals, err := s.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fail(err, "list clients")
	}
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // deleted between the two reads
		}
		var w clientWire
		if err := json.Unmarshal([]byte(str), &w); err != nil {
			return nil, fmt.Errorf("redis: list clients: decode %s: %w", ids[i], err)
		}
		clients = append(clients, w.client())
	}
	return clients, nil
}

// UpdateClient applies update with compare-and-swap on the client's version;
// the id cannot change.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	key := s.clientKey(id)
	for try := range casTries {
		var w clientWire
		if err := s.getJSON(ctx, key, &w, "update client %s", id); err != nil {
			return storage.Client{}, err
		}
		c, err := update(w.client())
		if err != nil {
			return storage.Client{}, err
		}
		c.ID = id
		b, err := json.Marshal(toClientWire(c, w.V+1))
		if err != nil {
			return storage.Client{}, fmt.Errorf("redis: update client %s: encode: %w", id, err)
		}
		ok, err := s.swap(ctx, []string{key}, w.V, b, 0, "", 0)
		if err != nil {
			return storage.Client{}, fail(err, "update client %s", id)
		}
		if ok {
			return c, nil
		}
		if err := backoff(ctx, try); err != nil {
			return storage.Client{}, fail(err, "update client %s", id)
		}
	}
	return storage.Client{}, conflict("update client %s", id)
}

// DeleteClient removes the client and its index entry; ErrNotFound when absent.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	n, err := s.runScript(ctx, deleteIndexed, []string{s.clientKey(id), s.clientIndexKey()}, id).Int()
	if err == nil && n == 0 {
		err = goredis.Nil
	}
	return fail(err, "delete client %s", id)
}
