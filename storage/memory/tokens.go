package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/otpgate/otpgate/storage"
)

// tokenKey identifies a token: each kind is its own namespace.
type tokenKey struct {
	kind      storage.TokenKind
	signature string
}

// requestKey groups the tokens of one kind issued for one request.
type requestKey struct {
	kind      storage.TokenKind
	requestID string
}

// Signatures never appear in errors: they are half of a bearer token.

// CreateToken stores t until t.ExpiresAt.
func (s *Store) CreateToken(ctx context.Context, t storage.Token) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: create %s token: %w", t.Kind, err)
	}
	defer s.mu.Unlock()
	switch {
	case t.Signature == "":
		return fmt.Errorf("memory: create %s token: %w", t.Kind, errEmptyID)
	case t.ExpiresAt.IsZero():
		return fmt.Errorf("memory: create %s token: %w", t.Kind, errMissingExpiry)
	}
	k := tokenKey{t.Kind, t.Signature}
	if _, ok := s.token(k); ok {
		return fmt.Errorf("memory: create %s token: %w", t.Kind, storage.ErrAlreadyExists)
	}
	s.tokens[k] = cloneToken(t)
	rk := requestKey{t.Kind, t.RequestID}
	sigs := s.tokensByRequest[rk]
	if sigs == nil {
		sigs = make(map[string]struct{}, 1)
		s.tokensByRequest[rk] = sigs
	}
	sigs[t.Signature] = struct{}{}
	return nil
}

// GetToken returns the token, active or not.
func (s *Store) GetToken(ctx context.Context, kind storage.TokenKind, signature string) (storage.Token, error) {
	if err := s.lock(ctx); err != nil {
		return storage.Token{}, fmt.Errorf("memory: get %s token: %w", kind, err)
	}
	defer s.mu.Unlock()
	t, ok := s.token(tokenKey{kind, signature})
	if !ok {
		return storage.Token{}, fmt.Errorf("memory: get %s token: %w", kind, storage.ErrNotFound)
	}
	return cloneToken(t), nil
}

// DeleteToken removes the token; ErrNotFound when absent.
func (s *Store) DeleteToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: delete %s token: %w", kind, err)
	}
	defer s.mu.Unlock()
	k := tokenKey{kind, signature}
	if _, ok := s.token(k); !ok {
		return fmt.Errorf("memory: delete %s token: %w", kind, storage.ErrNotFound)
	}
	s.removeToken(k)
	return nil
}

// DeactivateToken marks an active token inactive; ErrConflict when it already is.
func (s *Store) DeactivateToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: deactivate %s token: %w", kind, err)
	}
	defer s.mu.Unlock()
	k := tokenKey{kind, signature}
	t, ok := s.token(k)
	switch {
	case !ok:
		return fmt.Errorf("memory: deactivate %s token: %w", kind, storage.ErrNotFound)
	case !t.Active:
		return fmt.Errorf("memory: deactivate %s token: already inactive: %w", kind, storage.ErrConflict)
	}
	t.Active = false
	s.tokens[k] = t
	return nil
}

// DeactivateTokensByRequest marks every token of kind issued for requestID
// inactive. Finding none is not an error.
func (s *Store) DeactivateTokensByRequest(ctx context.Context, kind storage.TokenKind, requestID string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: deactivate %s tokens of request %s: %w", kind, requestID, err)
	}
	defer s.mu.Unlock()
	for sig := range s.tokensByRequest[requestKey{kind, requestID}] {
		k := tokenKey{kind, sig}
		if t, ok := s.token(k); ok { // token may delete expired ones: safe while ranging
			t.Active = false
			s.tokens[k] = t
		}
	}
	return nil
}

// DeleteTokensByRequest removes every token of kind issued for requestID.
// Finding none is not an error.
func (s *Store) DeleteTokensByRequest(ctx context.Context, kind storage.TokenKind, requestID string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: delete %s tokens of request %s: %w", kind, requestID, err)
	}
	defer s.mu.Unlock()
	rk := requestKey{kind, requestID}
	for sig := range s.tokensByRequest[rk] {
		delete(s.tokens, tokenKey{kind, sig})
	}
	delete(s.tokensByRequest, rk)
	return nil
}

// token returns the live token at k, deleting it if it has expired.
func (s *Store) token(k tokenKey) (storage.Token, bool) {
	t, ok := s.tokens[k]
	if !ok {
		return storage.Token{}, false
	}
	if expired(t.ExpiresAt, s.now()) {
		s.removeToken(k)
		return storage.Token{}, false
	}
	return t, true
}

// removeToken deletes the token at k and its entry in the request index.
func (s *Store) removeToken(k tokenKey) {
	t, ok := s.tokens[k]
	if !ok {
		return
	}
	delete(s.tokens, k)
	rk := requestKey{k.kind, t.RequestID}
	if sigs := s.tokensByRequest[rk]; sigs != nil {
		delete(sigs, k.signature)
		if len(sigs) == 0 {
			delete(s.tokensByRequest, rk)
		}
	}
}

func cloneToken(t storage.Token) storage.Token {
	t.Request = slices.Clone(t.Request)
	return t
}
