package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/otpgate/otpgate/storage"
)

// CreateFlow stores f until f.ExpiresAt, with the Version it carries.
func (s *Store) CreateFlow(ctx context.Context, f storage.Flow) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: create flow %s: %w", f.ID, err)
	}
	defer s.mu.Unlock()
	switch {
	case f.ID == "":
		return fmt.Errorf("memory: create flow: %w", errEmptyID)
	case f.ExpiresAt.IsZero():
		return fmt.Errorf("memory: create flow %s: %w", f.ID, errMissingExpiry)
	}
	if _, ok := s.flow(f.ID); ok {
		return fmt.Errorf("memory: create flow %s: %w", f.ID, storage.ErrAlreadyExists)
	}
	s.flows[f.ID] = cloneFlow(f)
	return nil
}

// GetFlow returns the flow with the given id.
func (s *Store) GetFlow(ctx context.Context, id string) (storage.Flow, error) {
	if err := s.lock(ctx); err != nil {
		return storage.Flow{}, fmt.Errorf("memory: get flow %s: %w", id, err)
	}
	defer s.mu.Unlock()
	f, ok := s.flow(id)
	if !ok {
		return storage.Flow{}, fmt.Errorf("memory: get flow %s: %w", id, storage.ErrNotFound)
	}
	return cloneFlow(f), nil
}

// UpdateFlow applies update to the flow atomically and bumps its Version
// (whatever Version update returns is ignored). update runs with the store
// locked, so it must not call the store. update may not change the id and must
// leave an expiry.
func (s *Store) UpdateFlow(ctx context.Context, id string, update func(storage.Flow) (storage.Flow, error)) (storage.Flow, error) {
	if err := s.lock(ctx); err != nil {
		return storage.Flow{}, fmt.Errorf("memory: update flow %s: %w", id, err)
	}
	defer s.mu.Unlock()
	old, ok := s.flow(id)
	if !ok {
		return storage.Flow{}, fmt.Errorf("memory: update flow %s: %w", id, storage.ErrNotFound)
	}
	f, err := update(cloneFlow(old))
	if err != nil {
		return storage.Flow{}, err
	}
	switch {
	case f.ID != id:
		return storage.Flow{}, fmt.Errorf("memory: update flow %s: the update changed the id to %q", id, f.ID)
	case f.ExpiresAt.IsZero():
		return storage.Flow{}, fmt.Errorf("memory: update flow %s: %w", id, errMissingExpiry)
	}
	f.Version = old.Version + 1
	s.flows[id] = cloneFlow(f)
	return f, nil
}

// ReplaceFlow writes f if the stored flow is still at f.Version, bumping it.
func (s *Store) ReplaceFlow(ctx context.Context, f storage.Flow) (storage.Flow, error) {
	if f.ExpiresAt.IsZero() {
		return storage.Flow{}, fmt.Errorf("memory: replace flow %s: %w", f.ID, errMissingExpiry)
	}
	if err := s.lock(ctx); err != nil {
		return storage.Flow{}, fmt.Errorf("memory: replace flow %s: %w", f.ID, err)
	}
	defer s.mu.Unlock()
	old, ok := s.flow(f.ID)
	if !ok {
		return storage.Flow{}, fmt.Errorf("memory: replace flow %s: %w", f.ID, storage.ErrNotFound)
	}
	if old.Version != f.Version {
		return storage.Flow{}, fmt.Errorf("memory: replace flow %s: version %d is now %d: %w", f.ID, f.Version, old.Version, storage.ErrConflict)
	}
	f.Version++
	s.flows[f.ID] = cloneFlow(f)
	return cloneFlow(f), nil
}

// DeleteFlow removes the flow; ErrNotFound when absent.
func (s *Store) DeleteFlow(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: delete flow %s: %w", id, err)
	}
	defer s.mu.Unlock()
	if _, ok := s.flow(id); !ok {
		return fmt.Errorf("memory: delete flow %s: %w", id, storage.ErrNotFound)
	}
	delete(s.flows, id)
	return nil
}

// flow returns the live flow with the given id, deleting it if it has expired.
func (s *Store) flow(id string) (storage.Flow, bool) {
	f, ok := s.flows[id]
	if !ok {
		return storage.Flow{}, false
	}
	if expired(f.ExpiresAt, s.now()) {
		delete(s.flows, id)
		return storage.Flow{}, false
	}
	return f, true
}

func cloneFlow(f storage.Flow) storage.Flow {
	f.Request = slices.Clone(f.Request)
	f.AMR = slices.Clone(f.AMR)
	return f
}
