package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/otpgate/otpgate/storage"
)

// CreateClient stores c; clients never expire.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: create client %s: %w", c.ID, err)
	}
	defer s.mu.Unlock()
	if c.ID == "" {
		return fmt.Errorf("memory: create client: %w", errEmptyID)
	}
	if _, ok := s.clients[c.ID]; ok {
		return fmt.Errorf("memory: create client %s: %w", c.ID, storage.ErrAlreadyExists)
	}
	s.clients[c.ID] = cloneClient(c)
	return nil
}

// GetClient returns the client with the given id.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	if err := s.lock(ctx); err != nil {
		return storage.Client{}, fmt.Errorf("memory: get client %s: %w", id, err)
	}
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return storage.Client{}, fmt.Errorf("memory: get client %s: %w", id, storage.ErrNotFound)
	}
	return cloneClient(c), nil
}

// ListClients returns at most limit clients ordered by id, starting after the
// id after; a non-positive limit returns none.
func (s *Store) ListClients(ctx context.Context, after string, limit int) ([]storage.Client, error) {
	if err := s.lock(ctx); err != nil {
		return nil, fmt.Errorf("memory: list clients: %w", err)
	}
	defer s.mu.Unlock()
	if limit <= 0 {
		return []storage.Client{}, nil
	}
	ids := make([]string, 0, len(s.clients))
	for id := range s.clients {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]storage.Client, len(ids))
	for i, id := range ids {
		out[i] = cloneClient(s.clients[id])
	}
	return out, nil
}

// UpdateClient applies update to the client atomically: update runs with the
// store locked, so it must not call the store, and it never sees a conflict.
// update may not change the id.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	if err := s.lock(ctx); err != nil {
		return storage.Client{}, fmt.Errorf("memory: update client %s: %w", id, err)
	}
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return storage.Client{}, fmt.Errorf("memory: update client %s: %w", id, storage.ErrNotFound)
	}
	c, err := update(cloneClient(c))
	if err != nil {
		return storage.Client{}, err
	}
	if c.ID != id {
		return storage.Client{}, fmt.Errorf("memory: update client %s: the update changed the id to %q", id, c.ID)
	}
	s.clients[id] = cloneClient(c)
	return c, nil
}

// DeleteClient removes the client; ErrNotFound when absent.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: delete client %s: %w", id, err)
	}
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return fmt.Errorf("memory: delete client %s: %w", id, storage.ErrNotFound)
	}
	delete(s.clients, id)
	return nil
}

func cloneClient(c storage.Client) storage.Client {
	c.SecretHash = slices.Clone(c.SecretHash)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.ResponseTypes = slices.Clone(c.ResponseTypes)
	c.Scopes = slices.Clone(c.Scopes)
	return c
}
