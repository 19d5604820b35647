package memory

import (
	"context"
	"crypto/subtle"
	"fmt"
	"slices"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// CreateChallenge stores c until c.ExpiresAt + storage.ChallengeGrace.
func (s *Store) CreateChallenge(ctx context.Context, c storage.Challenge) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: create challenge %s: %w", c.ID, err)
	}
	defer s.mu.Unlock()
	switch {
	case c.ID == "":
		return fmt.Errorf("memory: create challenge: %w", errEmptyID)
	case c.ExpiresAt.IsZero():
		return fmt.Errorf("memory: create challenge %s: %w", c.ID, errMissingExpiry)
	}
	if _, ok := s.challenge(c.ID); ok {
		return fmt.Errorf("memory: create challenge %s: %w", c.ID, storage.ErrAlreadyExists)
	}
	s.challenges[c.ID] = cloneChallenge(c)
	return nil
}

// GetChallenge returns the challenge, also during its grace period after the
// code expired.
func (s *Store) GetChallenge(ctx context.Context, id string) (storage.Challenge, error) {
	if err := s.lock(ctx); err != nil {
		return storage.Challenge{}, fmt.Errorf("memory: get challenge %s: %w", id, err)
	}
	defer s.mu.Unlock()
	c, ok := s.challenge(id)
	if !ok {
		return storage.Challenge{}, fmt.Errorf("memory: get challenge %s: %w", id, storage.ErrNotFound)
	}
	return cloneChallenge(c), nil
}

// VerifyChallenge checks answerHash against the challenge as documented on
// storage.ChallengeStore, judging the code's expiry by now. An empty hash never
// matches, so a challenge created without one cannot be passed. Remaining is
// the attempts left on the returned record, whatever the outcome.
func (s *Store) VerifyChallenge(ctx context.Context, id string, answerHash []byte, now time.Time) (storage.VerifyResult, error) {
	if err := s.lock(ctx); err != nil {
		return storage.VerifyResult{}, fmt.Errorf("memory: verify challenge %s: %w", id, err)
	}
	defer s.mu.Unlock()
	c, ok := s.challenge(id)
	if !ok {
		return storage.VerifyResult{}, fmt.Errorf("memory: verify challenge %s: %w", id, storage.ErrNotFound)
	}
	switch {
	case expired(c.ExpiresAt, now):
		return verifyResult(storage.VerifyExpired, c), nil
	case c.Attempts >= c.MaxAttempts:
		return verifyResult(storage.VerifyLocked, c), nil
	case len(answerHash) > 0 && subtle.ConstantTimeCompare(c.CodeHash, answerHash) == 1:
		delete(s.challenges, id)
		return verifyResult(storage.VerifyOK, c), nil
	}
	c.Attempts++
	s.challenges[id] = c
	if c.Attempts >= c.MaxAttempts {
		return verifyResult(storage.VerifyLocked, c), nil
	}
	return verifyResult(storage.VerifyWrongCode, c), nil
}

// CountAttempt counts an answer the caller judges itself, as documented on
// storage.ChallengeStore; the code hash is never compared.
func (s *Store) CountAttempt(ctx context.Context, id string, now time.Time) (storage.VerifyResult, error) {
	if err := s.lock(ctx); err != nil {
		return storage.VerifyResult{}, fmt.Errorf("memory: count attempt %s: %w", id, err)
	}
	defer s.mu.Unlock()
	c, ok := s.challenge(id)
	if !ok {
		return storage.VerifyResult{}, fmt.Errorf("memory: count attempt %s: %w", id, storage.ErrNotFound)
	}
	switch {
	case expired(c.ExpiresAt, now):
		return verifyResult(storage.VerifyExpired, c), nil
	case c.Attempts >= c.MaxAttempts:
		return verifyResult(storage.VerifyLocked, c), nil
	}
	c.Attempts++
	s.challenges[id] = c
	return verifyResult(storage.VerifyCounted, c), nil
}

// ConsumeChallenge deletes the challenge and returns it; ErrNotFound when
// absent, so that of parallel callers exactly one gets it.
func (s *Store) ConsumeChallenge(ctx context.Context, id string) (storage.Challenge, error) {
	if err := s.lock(ctx); err != nil {
		return storage.Challenge{}, fmt.Errorf("memory: consume challenge %s: %w", id, err)
	}
	defer s.mu.Unlock()
	c, ok := s.challenge(id)
	if !ok {
		return storage.Challenge{}, fmt.Errorf("memory: consume challenge %s: %w", id, storage.ErrNotFound)
	}
	delete(s.challenges, id)
	return cloneChallenge(c), nil
}

func verifyResult(o storage.VerifyOutcome, c storage.Challenge) storage.VerifyResult {
	return storage.VerifyResult{
		Outcome:   o,
		Remaining: max(0, c.MaxAttempts-c.Attempts),
		Challenge: cloneChallenge(c),
	}
}

// ResendChallenge counts a send, keeping or replacing the code, as documented
// on storage.ChallengeStore; attempts are never reset. The checks run in this
// order: locked, too many sends, too soon. A resend of a new code is allowed
// after the code expired, during the record's grace period; the record then
// lives until r.ExpiresAt + storage.ChallengeGrace. With r.KeepCode the
// expiry, and so the record's lifetime, are unchanged.
func (s *Store) ResendChallenge(ctx context.Context, id string, r storage.Resend) (storage.ResendResult, error) {
	if err := s.lock(ctx); err != nil {
		return storage.ResendResult{}, fmt.Errorf("memory: resend challenge %s: %w", id, err)
	}
	defer s.mu.Unlock()
	if !r.KeepCode && r.ExpiresAt.IsZero() {
		return storage.ResendResult{}, fmt.Errorf("memory: resend challenge %s: %w", id, errMissingExpiry)
	}
	c, ok := s.challenge(id)
	if !ok {
		return storage.ResendResult{}, fmt.Errorf("memory: resend challenge %s: %w", id, storage.ErrNotFound)
	}
	result := storage.ResendResult{Challenge: cloneChallenge(c)}
	if c.Attempts >= c.MaxAttempts {
		result.Outcome = storage.ResendLocked
		return result, nil
	}
	if c.Sends >= r.MaxSends {
		result.Outcome = storage.ResendTooMany
		return result, nil
	}
	if since := r.Now.Sub(c.LastSentAt); since < r.Cooldown {
		result.Outcome = storage.ResendTooSoon
		result.RetryAfter = r.Cooldown - since
		return result, nil
	}
	if !r.KeepCode {
		c.CodeHash = slices.Clone(r.CodeHash)
		c.SealedCode = slices.Clone(r.SealedCode)
		c.ProviderRef = r.ProviderRef
		c.ExpiresAt = r.ExpiresAt
	}
	c.Sends++
	c.LastSentAt = r.Now
	s.challenges[id] = c
	return storage.ResendResult{Outcome: storage.ResendOK, Challenge: cloneChallenge(c)}, nil
}

// SetProviderRef records ref for send number send, as documented on
// storage.ChallengeStore.
func (s *Store) SetProviderRef(ctx context.Context, id string, send int, ref string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: set provider ref %s: %w", id, err)
	}
	defer s.mu.Unlock()
	c, ok := s.challenge(id)
	if !ok {
		return fmt.Errorf("memory: set provider ref %s: %w", id, storage.ErrNotFound)
	}
	if c.Sends != send {
		return fmt.Errorf("memory: set provider ref %s: send %d, the challenge is at send %d: %w", id, send, c.Sends, storage.ErrConflict)
	}
	c.ProviderRef = ref
	s.challenges[id] = c
	return nil
}

// DeleteChallenge removes the challenge; ErrNotFound when absent.
func (s *Store) DeleteChallenge(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: delete challenge %s: %w", id, err)
	}
	defer s.mu.Unlock()
	if _, ok := s.challenge(id); !ok {
		return fmt.Errorf("memory: delete challenge %s: %w", id, storage.ErrNotFound)
	}
	delete(s.challenges, id)
	return nil
}

// challenge returns the live challenge with the given id, deleting it once its
// grace period is over.
func (s *Store) challenge(id string) (storage.Challenge, bool) {
	c, ok := s.challenges[id]
	if !ok {
		return storage.Challenge{}, false
	}
	if expired(challengeExpiresAt(c), s.now()) {
		delete(s.challenges, id)
		return storage.Challenge{}, false
	}
	return c, true
}

// challengeExpiresAt is when the record goes: the code's expiry plus the grace
// period during which a late answer is told "expired" rather than "unknown".
func challengeExpiresAt(c storage.Challenge) time.Time {
	return c.ExpiresAt.Add(storage.ChallengeGrace)
}

func cloneChallenge(c storage.Challenge) storage.Challenge {
	c.CodeHash = slices.Clone(c.CodeHash)
	c.SealedCode = slices.Clone(c.SealedCode)
	return c
}
