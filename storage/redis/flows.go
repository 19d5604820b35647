package redis

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/otpgate/otpgate/storage"
)

// CreateFlow stores f until f.ExpiresAt, with the Version it carries (as the
// memory backend does); ErrAlreadyExists when the id is taken.
func (s *Store) CreateFlow(ctx context.Context, f storage.Flow) error {
	if f.ID == "" {
		return fmt.Errorf("redis: create flow: %w", errEmptyID)
	}
	pxat, err := expiryArg(f.ExpiresAt)
	if err != nil {
		return fmt.Errorf("redis: create flow %s: %w", f.ID, err)
	}
	return s.createJSON(ctx, s.flowKey(f.ID), toFlowWire(f), pxat, "create flow %s", f.ID)
}

// GetFlow returns the flow; ErrNotFound when absent or expired.
func (s *Store) GetFlow(ctx context.Context, id string) (storage.Flow, error) {
	var w flowWire
	if err := s.getJSON(ctx, s.flowKey(id), &w, "get flow %s", id); err != nil {
		return storage.Flow{}, err
	}
	return w.flow(), nil
}

// UpdateFlow applies update with compare-and-swap on the flow's version, which
// it increments; the flow then expires at whatever ExpiresAt update left.
func (s *Store) UpdateFlow(ctx context.Context, id string, update func(storage.Flow) (storage.Flow, error)) (storage.Flow, error) {
	key := s.flowKey(id)
	for try := range casTries {
		var w flowWire
		if err := s.getJSON(ctx, key, &w, "update flow %s", id); err != nil {
			return storage.Flow{}, err
		}
		f, err := update(w.flow())
		if err != nil {
			return storage.Flow{}, err
		}
		f.ID, f.Version = id, w.V+1
		pxat, err := expiryArg(f.ExpiresAt)
		if err != nil {
			return storage.Flow{}, fmt.Errorf("redis: update flow %s: %w", id, err)
		}
		b, err := json.Marshal(toFlowWire(f))
		if err != nil {
			return storage.Flow{}, fmt.Errorf("redis: update flow %s: encode: %w", id, err)
		}
		ok, err := s.swap(ctx, []string{key}, w.V, b, pxat, "", 0)
		if err != nil {
			return storage.Flow{}, fail(err, "update flow %s", id)
		}
		if ok {
			return f, nil
		}
		if err := backoff(ctx, try); err != nil {
			return storage.Flow{}, fail(err, "update flow %s", id)
		}
	}
	return storage.Flow{}, conflict("update flow %s", id)
}

// ReplaceFlow writes f if the stored flow is still at f.Version, bumping it:
// one round trip (the compare-and-set script).
func (s *Store) ReplaceFlow(ctx context.Context, f storage.Flow) (storage.Flow, error) {
	if f.ID == "" {
		return storage.Flow{}, fmt.Errorf("redis: replace flow: %w", errEmptyID)
	}
	pxat, err := expiryArg(f.ExpiresAt)
	if err != nil {
		return storage.Flow{}, fmt.Errorf("redis: replace flow %s: %w", f.ID, err)
	}
	expected := f.Version
	f.Version++
	b, err := json.Marshal(toFlowWire(f))
	if err != nil {
		return storage.Flow{}, fmt.Errorf("redis: replace flow %s: encode: %w", f.ID, err)
	}
	ok, err := s.swap(ctx, []string{s.flowKey(f.ID)}, expected, b, pxat, "", 0)
	if err != nil {
		return storage.Flow{}, fail(err, "replace flow %s", f.ID)
	}
	if !ok {
		return storage.Flow{}, fmt.Errorf("redis: replace flow %s: version %d changed: %w", f.ID, expected, storage.ErrConflict)
	}
	return f, nil
}

// DeleteFlow removes the flow; ErrNotFound when absent.
func (s *Store) DeleteFlow(ctx context.Context, id string) error {
	return s.del(ctx, s.flowKey(id), "delete flow %s", id)
}

// Browser session ids are bearer secrets (the cookie value): errors say
// "browser session" without the id so that they can be logged. Consent errors
// name the client, not the subject (a pseudonym of a phone number).

// CreateBrowserSession stores bs until bs.ExpiresAt; ErrAlreadyExists when the
// id is taken.
func (s *Store) CreateBrowserSession(ctx context.Context, bs storage.BrowserSession) error {
	if bs.ID == "" {
		return fmt.Errorf("redis: create browser session: %w", errEmptyID)
	}
	pxat, err := expiryArg(bs.ExpiresAt)
	if err != nil {
		return fmt.Errorf("redis: create browser session: %w", err)
	}
	return s.createJSON(ctx, s.sessionKey(bs.ID), toSessionWire(bs), pxat, "create browser session")
}

// GetBrowserSession returns the session; ErrNotFound when absent or expired.
func (s *Store) GetBrowserSession(ctx context.Context, id string) (storage.BrowserSession, error) {
	var w sessionWire
	if err := s.getJSON(ctx, s.sessionKey(id), &w, "get browser session"); err != nil {
		return storage.BrowserSession{}, err
	}
	return w.session(), nil
}

// DeleteBrowserSession removes the session; ErrNotFound when absent.
func (s *Store) DeleteBrowserSession(ctx context.Context, id string) error {
	return s.del(ctx, s.sessionKey(id), "delete browser session")
}

// SaveConsent creates or replaces the grant for (c.Subject, c.ClientID) until
// c.ExpiresAt.
func (s *Store) SaveConsent(ctx context.Context, c storage.Consent) error {
	if c.Subject == "" || c.ClientID == "" {
		return fmt.Errorf("redis: save consent of client %s: %w", c.ClientID, errEmptyID)
	}
	pxat, err := expiryArg(c.ExpiresAt)
	if err != nil {
		return fmt.Errorf("redis: save consent of client %s: %w", c.ClientID, err)
	}
	return s.setJSON(ctx, s.consentKey(c.Subject, c.ClientID), toConsentWire(c), pxat, "save consent of client %s", c.ClientID)
}

// GetConsent returns the grant; ErrNotFound when absent or expired.
func (s *Store) GetConsent(ctx context.Context, subject, clientID string) (storage.Consent, error) {
	var w consentWire
	if err := s.getJSON(ctx, s.consentKey(subject, clientID), &w, "get consent of client %s", clientID); err != nil {
		return storage.Consent{}, err
	}
	return w.consent(), nil
}

// DeleteConsent removes the grant; ErrNotFound when absent.
func (s *Store) DeleteConsent(ctx context.Context, subject, clientID string) error {
	return s.del(ctx, s.consentKey(subject, clientID), "delete consent of client %s", clientID)
}
