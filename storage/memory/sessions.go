package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/otpgate/otpgate/storage"
)

// CreateBrowserSession stores b until b.ExpiresAt; ErrAlreadyExists when the
// id is taken.
func (s *Store) CreateBrowserSession(ctx context.Context, b storage.BrowserSession) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: create browser session: %w", err)
	}
	defer s.mu.Unlock()
	switch {
	case b.ID == "":
		return fmt.Errorf("memory: create browser session: %w", errEmptyID)
	case b.ExpiresAt.IsZero():
		return fmt.Errorf("memory: create browser session: %w", errMissingExpiry)
	}
	if _, ok := s.session(b.ID); ok {
		return fmt.Errorf("memory: create browser session: %w", storage.ErrAlreadyExists)
	}
	s.sessions[b.ID] = cloneSession(b)
	return nil
}

// Session ids never appear in errors: they are the SSO cookie's value.

// GetBrowserSession returns the browser session with the given id.
func (s *Store) GetBrowserSession(ctx context.Context, id string) (storage.BrowserSession, error) {
	if err := s.lock(ctx); err != nil {
		return storage.BrowserSession{}, fmt.Errorf("memory: get browser session: %w", err)
	}
	defer s.mu.Unlock()
	b, ok := s.session(id)
	if !ok {
		return storage.BrowserSession{}, fmt.Errorf("memory: get browser session: %w", storage.ErrNotFound)
	}
	return cloneSession(b), nil
}

// DeleteBrowserSession removes the browser session; ErrNotFound when absent.
func (s *Store) DeleteBrowserSession(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: delete browser session: %w", err)
	}
	defer s.mu.Unlock()
	if _, ok := s.session(id); !ok {
		return fmt.Errorf("memory: delete browser session: %w", storage.ErrNotFound)
	}
	delete(s.sessions, id)
	return nil
}

func (s *Store) session(id string) (storage.BrowserSession, bool) {
	b, ok := s.sessions[id]
	if !ok {
		return storage.BrowserSession{}, false
	}
	if expired(b.ExpiresAt, s.now()) {
		delete(s.sessions, id)
		return storage.BrowserSession{}, false
	}
	return b, true
}

func cloneSession(b storage.BrowserSession) storage.BrowserSession {
	b.AMR = slices.Clone(b.AMR)
	return b
}

// consentKey identifies the one grant per (subject, client).
type consentKey struct {
	subject  string
	clientID string
}

// SaveConsent creates or replaces the grant for (c.Subject, c.ClientID) until
// c.ExpiresAt.
func (s *Store) SaveConsent(ctx context.Context, c storage.Consent) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: save consent of client %s: %w", c.ClientID, err)
	}
	defer s.mu.Unlock()
	switch {
	case c.Subject == "" || c.ClientID == "":
		return fmt.Errorf("memory: save consent of client %s: %w", c.ClientID, errEmptyID)
	case c.ExpiresAt.IsZero():
		return fmt.Errorf("memory: save consent of client %s: %w", c.ClientID, errMissingExpiry)
	}
	s.consents[consentKey{c.Subject, c.ClientID}] = cloneConsent(c)
	return nil
}

// GetConsent returns the grant for (subject, clientID).
func (s *Store) GetConsent(ctx context.Context, subject, clientID string) (storage.Consent, error) {
	if err := s.lock(ctx); err != nil {
		return storage.Consent{}, fmt.Errorf("memory: get consent of client %s: %w", clientID, err)
	}
	defer s.mu.Unlock()
	c, ok := s.consent(consentKey{subject, clientID})
	if !ok {
		return storage.Consent{}, fmt.Errorf("memory: get consent of client %s: %w", clientID, storage.ErrNotFound)
	}
	return cloneConsent(c), nil
}

// DeleteConsent removes the grant for (subject, clientID); ErrNotFound when absent.
func (s *Store) DeleteConsent(ctx context.Context, subject, clientID string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: delete consent of client %s: %w", clientID, err)
	}
	defer s.mu.Unlock()
	k := consentKey{subject, clientID}
	if _, ok := s.consent(k); !ok {
		return fmt.Errorf("memory: delete consent of client %s: %w", clientID, storage.ErrNotFound)
	}
	delete(s.consents, k)
	return nil
}

func (s *Store) consent(k consentKey) (storage.Consent, bool) {
	c, ok := s.consents[k]
	if !ok {
		return storage.Consent{}, false
	}
	if expired(c.ExpiresAt, s.now()) {
		delete(s.consents, k)
		return storage.Consent{}, false
	}
	return c, true
}

func cloneConsent(c storage.Consent) storage.Consent {
	c.Scopes = slices.Clone(c.Scopes)
	return c
}
