// Package keys owns otpgate's token signing keys: it generates them, seals the
// private halves before they reach storage.KeyStore, keeps one current key per
// algorithm (RS256 and ES256) across any number of instances sharing a store,
// rotates them, publishes the JWKS, and hands fosite a jwt.Signer that signs with
// them.
//
// fosite v0.49 signs with go-jose v3, so the signer gives it raw
// *rsa.PrivateKey / *ecdsa.PrivateKey values and puts the kid in the header;
// everything this package builds or parses itself (thumbprints, the JWKS) uses
// go-jose v4.
//
// This package imports storage but never provider, factors or cmd.
package keys

import (
	"cmp"
	"context"
	"crypto"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/otpgate/otpgate/storage"
)

// Signing algorithms the Manager keeps a current key for.
const (
	RS256 = "RS256" // RSA PKCS#1 v1.5 with SHA-256: the OIDC default
	ES256 = "ES256" // ECDSA P-256 with SHA-256
)

// algorithms lists, in a fixed order, the algorithms Ensure provides.
var algorithms = []string{RS256, ES256}

const (
	defaultRSABits  = 2048
	defaultCacheTTL = 30 * time.Second

	// defaultRetireAfter is how long a key that was current when the store
	// lost it stays published once written back retired: the longest token
	// lifetime the configuration accepts (24h) plus the 5 minutes
	// provider.Options.KeyRetireAfter adds, so that it covers every token the
	// key may have signed whatever the token lifetimes.
	defaultRetireAfter = 24*time.Hour + 5*time.Minute

	// restoreWindow bounds how old this instance's view of the store may be
	// for it to write back the keys the store lost. A key rotated away leaves
	// the store only once its retirement ends, never sooner than the longest
	// token lifetime plus 5 minutes (provider.Options.KeyRetireAfter): a view
	// younger than that cannot have missed both a rotation and the expiry of
	// its key. An older view (an idle instance) restores nothing, rather than
	// bring back a key that was rotated out, perhaps because it leaked.
	restoreWindow = 5 * time.Minute
)

// Manager generates, stores, caches and rotates signing keys. It is safe for
// concurrent use, and several Managers (one per instance) may share one store.
type Manager struct {
	store    storage.KeyStore
	aead     cipher.AEAD
	now      func() time.Time
	rsaBits  int
	cacheTTL time.Duration
	// retireAfter is how long a key that was current stays published once
	// restored, retired, to a store that lost it.
	retireAfter time.Duration
	log         *slog.Logger

	// snap is the cached view of the key list; nil means "re-read the store".
	snap atomic.Pointer[snapshot]
	// refreshMu serialises store reads and invalidations so a refresh that
	// started before a Rotate cannot overwrite the invalidation with stale data.
	refreshMu sync.Mutex
	// known is the last snapshot read from the store, kept across
	// invalidations (guarded by refreshMu): when the store loses its data
	// (a Redis restarted without persistence), its sealed records are
	// written back (see restore).
	known *snapshot

	// decrypted holds opened private keys by kid. A kid names one key for ever
	// (it is the key's thumbprint), so entries never go stale; they are only
	// pruned when the key leaves the store.
	mu        sync.RWMutex
	decrypted map[string]crypto.Signer
}

// Option configures a Manager.
type Option func(*Manager) error

// WithNow sets the clock (tests inject a fake one).
func WithNow(now func() time.Time) Option {
	return func(m *Manager) error {
		if now == nil {
			return errors.New("keys: WithNow: nil clock")
		}
		m.now = now
		return nil
	}
}

// WithRSABits sets the size of generated RSA keys (default 2048, the minimum).
func WithRSABits(bits int) Option {
	return func(m *Manager) error {
		if bits < 2048 || bits > 8192 {
			return fmt.Errorf("keys: WithRSABits: must be between 2048 and 8192, got %d", bits)
		}
		m.rsaBits = bits
		return nil
	}
}

// WithCacheTTL sets how long the key list is cached before the store is read
// again (default 30s; 0 reads the store on every call). It bounds how long an
// instance keeps signing with a key another instance has rotated away.
func WithCacheTTL(d time.Duration) Option {
	return func(m *Manager) error {
		if d < 0 {
			return fmt.Errorf("keys: WithCacheTTL: must not be negative, got %s", d)
		}
		m.cacheTTL = d
		return nil
	}
}

// WithRetireAfter sets how long a key that was current when the store lost it
// (a Redis restarted without persistence) stays published once written back,
// retired (default 24h5m, which covers the longest token lifetime the
// configuration accepts). Pass provider.KeyRetireAfter of the token
// lifetimes: like a rotation, it must cover every token the key signed.
func WithRetireAfter(d time.Duration) Option {
	return func(m *Manager) error {
		if d <= 0 {
			return fmt.Errorf("keys: WithRetireAfter: must be positive, got %s", d)
		}
		m.retireAfter = d
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(m *Manager) error {
		if l == nil {
			return errors.New("keys: WithLogger: nil logger")
		}
		m.log = l
		return nil
	}
}

// NewManager returns a Manager that keeps its keys in store, sealed with a key
// derived from systemSecret (at least 16 bytes). It does not touch the store:
// call Ensure at start-up.
func NewManager(store storage.KeyStore, systemSecret []byte, opts ...Option) (*Manager, error) {
	if store == nil {
		return nil, errors.New("keys: nil key store")
	}
	aead, err := newAEAD(systemSecret)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		store:       store,
		aead:        aead,
		now:         time.Now,
		rsaBits:     defaultRSABits,
		cacheTTL:    defaultCacheTTL,
		retireAfter: defaultRetireAfter,
		log:         slog.Default(),
		decrypted:   make(map[string]crypto.Signer),
	}
	for _, opt := range opts {
		if err := opt(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Ensure makes sure a current key exists for RS256 and for ES256, generating
// and storing what is missing, then opens both current keys so that a wrong
// system secret fails at start-up rather than at the first login. Keys this
// Manager knew and the store lost are written back retired, and replaced by
// new current keys (see restore).
//
// Several instances may run Ensure at once against one store. Each generates
// only after finding no current key, and checks again after generating (RSA
// generation is slow); if two still slip through, both keys stay published and
// every instance signs with the newest (see snapshot.current).
func (m *Manager) Ensure(ctx context.Context) error {
	s, err := m.reload(ctx)
	if err != nil {
		return err
	}
	for _, alg := range algorithms {
		if _, ok := s.current[alg]; ok {
			continue
		}
		if _, err := m.addCurrent(ctx, alg); err != nil {
			return err
		}
	}

	if s, err = m.reload(ctx); err != nil {
		return err
	}
	for _, alg := range algorithms {
		if n := s.currentCount[alg]; n > 1 {
			m.log.Warn("keys: several current keys; signing with the newest, the others stay published until the next rotation",
				"alg", alg, "count", n, "kid", s.current[alg].ID)
		}
		if _, _, err := m.SigningKey(ctx, alg); err != nil {
			return err
		}
	}
	return nil
}

// addCurrent generates a key for alg and stores it as current, unless the
// store has a current key of alg by the time the key is ready (RSA generation
// is slow: another instance may have won meanwhile). It returns the key it
// stored, or the current key it found. It reads the store directly, not
// through the cache, so that a refresh (holding refreshMu) may call it.
func (m *Manager) addCurrent(ctx context.Context, alg string) (storage.SigningKey, error) {
	rec, err := m.newKey(alg)
	if err != nil {
		return storage.SigningKey{}, err
	}
	list, err := m.store.ListKeys(ctx)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: list keys: %w", err)
	}
	if cur, ok := newestCurrent(list, alg); ok {
		return cur, nil
	}
	if err := m.store.CreateKey(ctx, rec); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		return storage.SigningKey{}, fmt.Errorf("keys: store %s key %s: %w", alg, rec.ID, err)
	}
	m.log.Info("keys: generated signing key", "alg", alg, "kid", rec.ID)
	return rec, nil
}

// newestCurrent returns the key of list that signs for alg, chosen as
// snapshot.current chooses it.
func newestCurrent(list []storage.SigningKey, alg string) (storage.SigningKey, bool) {
	var best storage.SigningKey
	found := false
	for _, rec := range list {
		if rec.Algorithm != alg || rec.State != storage.KeyCurrent {
			continue
		}
		if _, err := parsePublic(rec); err != nil {
			continue // build leaves it out too
		}
		if !found || newer(rec, best) {
			best, found = rec, true
		}
	}
	return best, found
}

// SigningKey returns the current key for alg ("RS256" or "ES256"). Opened keys
// are cached by kid, so once warm this is a map lookup.
func (m *Manager) SigningKey(ctx context.Context, alg string) (kid string, key crypto.Signer, err error) {
	s, err := m.snapshot(ctx)
	if err != nil {
		return "", nil, err
	}
	return m.currentKey(s, alg)
}

func (m *Manager) currentKey(s *snapshot, alg string) (string, crypto.Signer, error) {
	pk, ok := s.current[alg]
	if !ok {
		if !supported(alg) {
			return "", nil, fmt.Errorf("keys: unsupported algorithm %q (want RS256 or ES256)", alg)
		}
		return "", nil, fmt.Errorf("keys: no current %s signing key (was Ensure called?)", alg)
	}
	key, err := m.privateKey(pk)
	if err != nil {
		return "", nil, err
	}
	return pk.ID, key, nil
}

// JWKS returns the public keys that verify otpgate's tokens: every current key
// and every retired key whose ExpiresAt has not passed, newest first, each with
// use "sig", its alg and its kid. The set is rebuilt at most every cache TTL,
// and as soon as a retired key expires.
func (m *Manager) JWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	s, err := m.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	// A fresh slice, so callers cannot edit the cached set.
	return &jose.JSONWebKeySet{Keys: slices.Clone(s.jwks)}, nil
}

// Rotate makes a new current key for alg and retires the previous current
// one(s): they stay published until now+retireFor, which must cover the
// lifetime of every token they signed. It returns the new kid.
func (m *Manager) Rotate(ctx context.Context, alg string, retireFor time.Duration) (newKid string, err error) {
	if !supported(alg) {
		return "", fmt.Errorf("keys: unsupported algorithm %q (want RS256 or ES256)", alg)
	}
	if retireFor <= 0 {
		return "", fmt.Errorf("keys: rotate: retireFor must be positive, got %s", retireFor)
	}
	// Invalidate even on failure: part of the rotation may have been written.
	defer m.invalidate()

	// Read through the cache first, so that keys the store lost are written
	// back (retired) before the new key is made.
	if _, err := m.reload(ctx); err != nil {
		return "", err
	}
	old, err := m.store.ListKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("keys: list keys: %w", err)
	}
	rec, err := m.newKey(alg)
	if err != nil {
		return "", err
	}
	// Create before retiring, so the store never lacks a current key.
	if err := m.store.CreateKey(ctx, rec); err != nil {
		return "", fmt.Errorf("keys: store %s key %s: %w", alg, rec.ID, err)
	}
	expires := m.now().Add(retireFor)
	for _, k := range old {
		if k.Algorithm != alg || k.State != storage.KeyCurrent || k.ID == rec.ID {
			continue
		}
		_, err := m.store.UpdateKey(ctx, k.ID, func(k storage.SigningKey) (storage.SigningKey, error) {
			if k.State == storage.KeyCurrent { // a concurrent rotation may have retired it already
				k.State = storage.KeyRetired
				k.ExpiresAt = expires
			}
			return k, nil
		})
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return rec.ID, fmt.Errorf("keys: retire %s key %s: %w", alg, k.ID, err)
		}
		m.log.Info("keys: retired signing key", "alg", alg, "kid", k.ID, "expires_at", expires)
	}
	m.log.Info("keys: rotated signing key", "alg", alg, "kid", rec.ID)
	return rec.ID, nil
}

// ---------------------------------------------------------------------------
// Cache

// snapshot is an immutable view of the store's keys at one moment. Its
// published keys keep their whole sealed record, so that the snapshot can
// restore them to a store that lost them.
type snapshot struct {
	readAt     time.Time // when the store was read
	validUntil time.Time
	// current maps an alg to the key that signs. When several keys of one alg
	// are current (instances raced in Ensure), the newest CreatedAt wins, ties
	// broken by the greater kid, so every instance makes the same choice.
	current      map[string]publicKey
	currentCount map[string]int
	published    map[string]publicKey // by kid: current and unexpired retired keys
	jwks         []jose.JSONWebKey    // the published keys, newest first
}

// publicKey is a published key: its record and its parsed public JWK.
type publicKey struct {
	storage.SigningKey
	jwk jose.JSONWebKey
}

// snapshot returns the cached view, re-reading the store when it is stale.
func (m *Manager) snapshot(ctx context.Context) (*snapshot, error) {
	if s := m.snap.Load(); s != nil && m.now().Before(s.validUntil) {
		return s, nil
	}
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	now := m.now()
	if s := m.snap.Load(); s != nil && now.Before(s.validUntil) {
		return s, nil // refreshed while we waited
	}
	list, err := m.store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list keys: %w", err)
	}
	restored, complete := m.restore(ctx, list, now)
	list = append(list, restored...)
	list, replaced := m.replaceCurrent(ctx, list)
	s := m.build(list, now)
	if complete && replaced {
		m.known = s
	} // else keep the view that saw the keys, so the next refresh tries again
	m.snap.Store(s)
	m.prune(s)
	return s, nil
}

// restore writes back, retired, the keys this instance knows when the store
// has lost them, and returns them. Redis often runs without persistence: a
// restart or a failover to an empty replica leaves no keys, and forgetting
// them would break every token already issued, which names a kid the JWKS
// would no longer publish.
//
// The store counts as having lost its keys when a current key this instance
// knows is missing from it (a rotation retires keys, it never deletes a
// current one) and this instance read the store less than restoreWindow ago.
// Every known key missing from the store is then written back retired, never
// current: this instance's view may predate a rotation that retired the key,
// and a new key is safer than one rotated out. A retired key keeps its expiry
// and is skipped once that has passed; a current one is published until
// now+retireAfter, so that tokens it signed keep verifying. replaceCurrent
// then gives the store new current keys. ErrAlreadyExists means another
// instance restored the key first. A key that cannot be written is still
// published by this instance, and complete is false so that the next refresh
// tries again. Called with refreshMu held.
func (m *Manager) restore(ctx context.Context, list []storage.SigningKey, now time.Time) (restored []storage.SigningKey, complete bool) {
	k := m.known
	if k == nil || now.Sub(k.readAt) >= restoreWindow {
		return nil, true
	}
	inStore := make(map[string]storage.SigningKey, len(list))
	for _, rec := range list {
		inStore[rec.ID] = rec
	}
	lost := false
	for _, pk := range k.current {
		_, has := inStore[pk.ID]
		lost = lost || !has
	}
	if !lost {
		return nil, true
	}
	complete = true
	var written, byOthers []string
	for _, jwk := range k.jwks { // newest first: a stable order for the log
		rec := k.published[jwk.KeyID].SigningKey
		if rec.State == storage.KeyCurrent {
			rec.State = storage.KeyRetired
			rec.ExpiresAt = now.Add(m.retireAfter)
		} else if !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt) {
			continue
		}
		if stored, has := inStore[rec.ID]; has {
			// Another instance restored it first, perhaps as a key it knew
			// current (retired until now + retireAfter) while this one saw
			// it rotated out, retired until the rotation's end: the earlier
			// end wins, so a rotated-out key leaves the JWKS when the
			// rotation said.
			if stored.State == storage.KeyRetired && rec.ExpiresAt.Before(stored.ExpiresAt) {
				complete = m.keepEarlierRetirement(ctx, rec) && complete
			}
			continue
		}
		switch err := m.store.CreateKey(ctx, rec); {
		case err == nil:
			written = append(written, rec.ID)
		case errors.Is(err, storage.ErrAlreadyExists):
			byOthers = append(byOthers, rec.ID)
			// Written between our read and our write: the same rule.
			complete = m.keepEarlierRetirement(ctx, rec) && complete
		default:
			complete = false
			m.log.Error("keys: cannot restore a signing key the store lost; publishing it anyway", "kid", rec.ID, "alg", rec.Algorithm, "err", err)
		}
		restored = append(restored, rec)
	}
	if len(written) > 0 {
		m.log.Warn("keys: signing keys missing from the store (Redis restarted without persistence?); restored them as retired",
			"count", len(written), "kids", written)
	} else if len(byOthers) > 0 {
		m.log.Info("keys: signing keys missing from the store were restored by another instance",
			"count", len(byOthers), "kids", byOthers)
	}
	return restored, complete
}

// keepEarlierRetirement makes the stored retired key rec.ID end its
// retirement at rec.ExpiresAt when that is earlier. It reports false, having
// logged why, when the store could not be updated.
func (m *Manager) keepEarlierRetirement(ctx context.Context, rec storage.SigningKey) bool {
	_, err := m.store.UpdateKey(ctx, rec.ID, func(k storage.SigningKey) (storage.SigningKey, error) {
		if k.State == storage.KeyRetired && !rec.ExpiresAt.IsZero() && (k.ExpiresAt.IsZero() || rec.ExpiresAt.Before(k.ExpiresAt)) {
			k.ExpiresAt = rec.ExpiresAt
		}
		return k, nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) { // gone again: the next refresh restores it
		m.log.Error("keys: cannot shorten a restored key's retirement", "kid", rec.ID, "err", err)
		return false
	}
	return true
}

// replaceCurrent gives each algorithm whose current key this instance knew,
// and that the store no longer has a current key for, a new current key (the
// store lost its keys: restore wrote them back retired, or left them out from
// too old a view). It returns list with the key that now signs, and false when
// one could not be stored, so that the next refresh tries again. Several
// instances may do this at once; if more than one new key slips through, all
// are published and the newest signs. Called with refreshMu held.
func (m *Manager) replaceCurrent(ctx context.Context, list []storage.SigningKey) ([]storage.SigningKey, bool) {
	if m.known == nil {
		return list, true // never read a key: Ensure generates them
	}
	ok := true
	for _, alg := range algorithms {
		if _, knew := m.known.current[alg]; !knew {
			continue
		}
		if _, has := newestCurrent(list, alg); has {
			continue
		}
		rec, err := m.addCurrent(ctx, alg)
		if err != nil {
			ok = false
			m.log.Error("keys: the store has no current signing key and a new one cannot be stored", "alg", alg, "err", err)
			continue
		}
		if !slices.ContainsFunc(list, func(r storage.SigningKey) bool { return r.ID == rec.ID }) {
			list = append(list, rec)
		}
	}
	return list, ok
}

// reload drops the cache and reads the store.
func (m *Manager) reload(ctx context.Context) (*snapshot, error) {
	m.invalidate()
	return m.snapshot(ctx)
}

func (m *Manager) invalidate() {
	m.refreshMu.Lock()
	m.snap.Store(nil)
	m.refreshMu.Unlock()
}

func (m *Manager) build(list []storage.SigningKey, now time.Time) *snapshot {
	s := &snapshot{
		readAt:       now,
		validUntil:   now.Add(m.cacheTTL),
		current:      make(map[string]publicKey),
		currentCount: make(map[string]int),
		published:    make(map[string]publicKey, len(list)),
	}
	for _, rec := range list {
		switch rec.State {
		case storage.KeyCurrent:
		case storage.KeyRetired:
			if !rec.ExpiresAt.IsZero() {
				if !now.Before(rec.ExpiresAt) {
					continue // the store's clock may lag ours; ours decides
				}
				// Rebuild the moment this key must disappear.
				if rec.ExpiresAt.Before(s.validUntil) {
					s.validUntil = rec.ExpiresAt
				}
			}
		default:
			m.log.Warn("keys: ignoring key in unknown state", "kid", rec.ID, "state", rec.State)
			continue
		}
		pk, err := parsePublic(rec)
		if err != nil {
			// One damaged record must not take the JWKS down with it.
			m.log.Error("keys: ignoring key with unusable public JWK", "kid", rec.ID, "err", err)
			continue
		}
		s.published[rec.ID] = pk
		if rec.State == storage.KeyCurrent && supported(rec.Algorithm) {
			s.currentCount[rec.Algorithm]++
			if best, ok := s.current[rec.Algorithm]; !ok || newer(rec, best.SigningKey) {
				s.current[rec.Algorithm] = pk
			}
		}
	}
	keys := make([]publicKey, 0, len(s.published))
	for _, pk := range s.published {
		keys = append(keys, pk)
	}
	slices.SortFunc(keys, func(a, b publicKey) int {
		if newer(a.SigningKey, b.SigningKey) {
			return -1
		}
		return 1
	})
	s.jwks = make([]jose.JSONWebKey, len(keys))
	for i, pk := range keys {
		s.jwks[i] = pk.jwk
	}
	return s
}

// newer orders keys newest first, deterministically (kids are unique).
func newer(a, b storage.SigningKey) bool {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c > 0
	}
	return cmp.Compare(a.ID, b.ID) > 0
}

// prune forgets opened keys that are no longer published.
func (m *Manager) prune(s *snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for kid := range m.decrypted {
		if _, ok := s.published[kid]; !ok {
			delete(m.decrypted, kid)
		}
	}
}

// privateKey returns the opened private key of pk, opening it on first use.
func (m *Manager) privateKey(pk publicKey) (crypto.Signer, error) {
	m.mu.RLock()
	key, ok := m.decrypted[pk.ID]
	m.mu.RUnlock()
	if ok {
		return key, nil
	}
	key, err := m.open(pk)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.decrypted[pk.ID] = key
	m.mu.Unlock()
	return key, nil
}

func supported(alg string) bool { return alg == RS256 || alg == ES256 }
