// Package memory is the embedded default storage backend: every record otpgate
// keeps (clients, fosite token sessions, login flows, SMS challenges, browser
// sessions, consents, signing keys, the dev outbox, rate-limit counters and latches)
// held in maps in this process, behind one mutex.
//
// It implements storage.Store and must pass storage/storagetest like any other
// backend. State is lost on restart and is not shared between instances, so it
// suits development, tests and single-instance deployments only.
//
// Expired records are invisible to every read, deleted lazily when a read meets
// them, and reclaimed by a background janitor that Close stops. Slices are
// copied on the way in and on the way out, so callers never share memory with
// the store.
//
// Like every storage backend it must never import provider, factors or cmd.
package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/otpgate/otpgate/storage"
)

var _ storage.Store = (*Store)(nil)

// ErrClosed is returned (wrapped) by every method called after Close.
var ErrClosed = errors.New("memory: store closed")

// DefaultSweepInterval is how often the janitor reclaims expired records.
const DefaultSweepInterval = 30 * time.Second

// Store is an in-memory storage.Store. Create it with New; it is safe for
// concurrent use.
type Store struct {
	now           func() time.Time
	sweepInterval time.Duration

	// One mutex guards everything below: operations are short and never
	// block, and a single lock makes every multi-step check trivially atomic.
	mu              sync.Mutex
	closed          bool
	clients         map[string]storage.Client
	tokens          map[tokenKey]storage.Token
	tokensByRequest map[requestKey]map[string]struct{} // signatures per (kind, request id)
	flows           map[string]storage.Flow
	challenges      map[string]storage.Challenge
	sessions        map[string]storage.BrowserSession
	consents        map[consentKey]storage.Consent
	keys            map[string]storage.SigningKey
	outbox          []storage.OutboxMessage // newest first
	outboxExpiresAt time.Time
	limits          map[limitKey]limitState
	latches         map[string]time.Time // latch key → held until

	stop chan struct{} // closed by Close to stop the janitor
	done chan struct{} // closed by the janitor when it returns
}

// Option configures a Store.
type Option func(*Store)

// WithNow sets the clock used for expiry, rate limits and the outbox
// (default time.Now). A nil now is ignored.
func WithNow(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// WithSweepInterval sets how often the janitor reclaims expired records
// (default DefaultSweepInterval). A non-positive interval is ignored.
func WithSweepInterval(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.sweepInterval = d
		}
	}
}

// New returns an empty store and starts its janitor; call Close to stop it.
func New(opts ...Option) *Store {
	s := &Store{
		now:             time.Now,
		sweepInterval:   DefaultSweepInterval,
		clients:         make(map[string]storage.Client),
		tokens:          make(map[tokenKey]storage.Token),
		tokensByRequest: make(map[requestKey]map[string]struct{}),
		flows:           make(map[string]storage.Flow),
		challenges:      make(map[string]storage.Challenge),
		sessions:        make(map[string]storage.BrowserSession),
		consents:        make(map[consentKey]storage.Consent),
		keys:            make(map[string]storage.SigningKey),
		limits:          make(map[limitKey]limitState),
		latches:         make(map[string]time.Time),
		stop:            make(chan struct{}),
		done:            make(chan struct{}),
	}
	for _, opt := range opts {
		opt(s)
	}
	go s.janitor()
	return s
}

// Ping reports ErrClosed once the store is closed, nil before.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("memory: ping: %w", err)
	}
	s.mu.Unlock()
	return nil
}

// Close stops the janitor and drops every record. Later calls to other methods
// fail with ErrClosed; calling Close again does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.clients, s.tokens, s.tokensByRequest = nil, nil, nil
	s.flows, s.challenges, s.sessions, s.consents = nil, nil, nil, nil
	s.keys, s.outbox, s.limits, s.latches = nil, nil, nil, nil
	s.mu.Unlock()

	close(s.stop)
	<-s.done // outside the lock: a sweep in progress needs it to finish
	return nil
}

// lock checks ctx, takes the mutex and checks that the store is open. When it
// returns nil the caller holds the mutex and must unlock it.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) janitor() {
	defer close(s.done)
	t := time.NewTicker(s.sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep deletes every expired record. It holds the lock for one pass over all
// maps: fine at the sizes a single-process store sees.
func (s *Store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := s.now()
	for k, t := range s.tokens {
		if expired(t.ExpiresAt, now) {
			s.removeToken(k)
		}
	}
	for id, f := range s.flows {
		if expired(f.ExpiresAt, now) {
			delete(s.flows, id)
		}
	}
	for id, c := range s.challenges {
		if expired(challengeExpiresAt(c), now) {
			delete(s.challenges, id)
		}
	}
	for id, b := range s.sessions {
		if expired(b.ExpiresAt, now) {
			delete(s.sessions, id)
		}
	}
	for k, c := range s.consents {
		if expired(c.ExpiresAt, now) {
			delete(s.consents, k)
		}
	}
	for id, k := range s.keys {
		if keyExpired(k, now) {
			delete(s.keys, id)
		}
	}
	if s.outbox != nil && expired(s.outboxExpiresAt, now) {
		s.outbox = nil
	}
	for k, st := range s.limits {
		if st.expired(k.window, now) {
			delete(s.limits, k)
		}
	}
	for k, until := range s.latches {
		if expired(until, now) {
			delete(s.latches, k)
		}
	}
}

// expired reports whether a record that lives until expiresAt is gone at now.
// The record is visible strictly before expiresAt.
func expired(expiresAt, now time.Time) bool {
	return !now.Before(expiresAt)
}

// errMissingExpiry refuses records that would otherwise expire at once: every
// record but clients and keys must say when it ends.
var errMissingExpiry = errors.New("expires_at is required")

// errEmptyID refuses records without an identity.
var errEmptyID = errors.New("empty id")
