// Package redis implements storage.Store on Redis, so that any number of stateless
// otpgate instances can share clients, tokens, login flows, SMS challenges,
// sessions, keys and rate-limit counters.
//
// The same code runs on Redis standalone, Sentinel and Cluster: it only needs a
// goredis.UniversalClient. Every key lives under a prefix ("otpgate:" by default)
// and carries a hash tag, so each Lua script and each multi-key command touches
// exactly one slot:
//
//	otpgate:{chal:<id>}                  challenge (a HASH, read and written by scripts)
//	otpgate:{tok:<kind>:<signature>}     fosite session (HASH: JSON, request id, active flag)
//	otpgate:{req:<kind>:<requestID>}     SET of the signatures issued for one request
//	otpgate:{flow:<id>}                  login flow (JSON)
//	otpgate:{sess:<id>}                  browser session (JSON)
//	otpgate:{consent:<subject>:<client>} consent grant (JSON)
//	otpgate:{clients}:index              ZSET of client ids (score 0: ordered by id)
//	otpgate:{clients}:id:<id>            client (JSON)
//	otpgate:{keys}:index                 ZSET of key ids (score: creation time)
//	otpgate:{keys}:id:<kid>              signing key (JSON)
//	otpgate:{outbox}                     LIST of dev SMS messages, newest first
//	otpgate:{rl:<key>}                   rate-limit and Counters counters (HASH)
//	otpgate:{latch:<key>}                latch (a string whose TTL is the hold)
//
// Id components are escaped (% : { }) so that an id can neither end a hash tag
// early nor be confused with a separator. The prefix itself must not contain
// braces, or every key would share the prefix's hash tag (still correct, but all
// on one cluster node). Index and record keys sit under "…:index" and "…:id:<id>"
// so that a record called "index" cannot collide with its index.
//
// Every key has a TTL (PEXPIREAT) except clients and signing keys without an
// expiry. Multi-step checks (challenge verification and resend, token
// deactivation, compare-and-swap updates, rate limiting) are Lua scripts: one
// round trip, atomic, and run with EVALSHA falling back to EVAL once per node.
// Redis 7.0 or later is required (PEXPIRETIME, SET … PXAT).
//
// Tests run against a real Redis; see the redistest package for how to point
// them at one (or at a cluster).
//
// This package imports storage and go-redis only; never provider, factors or cmd.
package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/storage"
)

var _ storage.Store = (*Store)(nil)

// DefaultPrefix is the key prefix used when WithPrefix is not given.
const DefaultPrefix = "otpgate:"

// casTries is how many times an Update* reads, applies and tries to write before
// giving up with storage.ErrConflict. A writer loses a round only when another
// one wins it, so n writers released at once all land within n tries; 32 (with
// backoff) covers any burst a login flow, client or key will see, while a
// record stuck in a loop of updates still ends in ErrConflict.
const casTries = 32

// Store is a storage.Store backed by Redis. It is safe for concurrent use.
type Store struct {
	c      goredis.UniversalClient
	prefix string
	now    func() time.Time
	owned  bool // the client was opened by Open, so Close closes it
}

// Option configures a Store.
type Option func(*Store)

// WithPrefix sets the prefix of every key (default DefaultPrefix). Give each
// deployment sharing one Redis its own prefix. It must not contain braces.
func WithPrefix(prefix string) Option {
	return func(s *Store) { s.prefix = prefix }
}

// WithNow sets the clock used for the few timestamps taken on the client side
// (today: hiding expired signing keys in ListKeys). Expiry of records and the
// rate limiter use Redis's own clock so that every instance agrees.
func WithNow(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// New returns a Store on client. The caller keeps ownership of client: Close
// does not close it.
func New(client goredis.UniversalClient, opts ...Option) *Store {
	s := &Store{c: client, prefix: DefaultPrefix, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Open connects to the redis:// or rediss:// URL (see goredis.ParseURL for the
// accepted query parameters), checks the connection with PING and returns a
// Store that owns the client: Close closes it. Sentinel and Cluster deployments
// use OpenUniversal, or build their own goredis.UniversalClient and call New.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o, err := goredis.ParseURL(url)
	if err != nil {
		// The URL may carry a password: do not repeat it.
		return nil, fmt.Errorf("redis: parse url: %w", err)
	}
	client := goredis.NewClient(o)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis: ping %s: %w", o.Addr, err)
	}
	s := New(client, opts...)
	s.owned = true
	return s, nil
}

// Ping sends PING (readiness check).
func (s *Store) Ping(ctx context.Context) error {
	return fail(s.c.Ping(ctx).Err(), "ping")
}

// Close closes the client if the Store opened it (Open); a client handed to New
// belongs to the caller, who may share it, and is left open.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	return fail(s.c.Close(), "close")
}

// fail wraps a Redis error with what was being done. It is the one place where
// goredis.Nil ("no such key", or a script returning false) becomes
// storage.ErrNotFound, and where every other failure of Redis itself (a
// connection, a timeout, an error reply) is marked storage.ErrUnavailable. A
// context the caller cancelled or let expire stays what it is.
func fail(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, goredis.Nil):
		err = storage.ErrNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrAlreadyExists),
		errors.Is(err, storage.ErrConflict), errors.Is(err, storage.ErrUnavailable):
	default:
		return fmt.Errorf("redis: %s: %w: %w", what, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("redis: %s: %w", what, err)
}

// ---------------------------------------------------------------------------
// Keys

// escaper makes id components safe inside a key: '%' first-class so that the
// mapping stays reversible (hence unambiguous), ':' so separators stay
// separators, braces so that an id cannot close or open a hash tag.
var escaper = strings.NewReplacer("%", "%25", ":", "%3A", "{", "%7B", "}", "%7D")

func esc(s string) string { return escaper.Replace(s) }

func (s *Store) challengeKey(id string) string { return s.prefix + "{chal:" + esc(id) + "}" }

func (s *Store) tokenKey(kind storage.TokenKind, sig string) string {
	return s.prefix + "{tok:" + esc(string(kind)) + ":" + esc(sig) + "}"
}

func (s *Store) requestKey(kind storage.TokenKind, requestID string) string {
	return s.prefix + "{req:" + esc(string(kind)) + ":" + esc(requestID) + "}"
}

func (s *Store) flowKey(id string) string    { return s.prefix + "{flow:" + esc(id) + "}" }
func (s *Store) sessionKey(id string) string { return s.prefix + "{sess:" + esc(id) + "}" }

func (s *Store) consentKey(subject, clientID string) string {
	return s.prefix + "{consent:" + esc(subject) + ":" + esc(clientID) + "}"
}

func (s *Store) clientIndexKey() string       { return s.prefix + "{clients}:index" }
func (s *Store) clientKey(id string) string   { return s.prefix + "{clients}:id:" + esc(id) }
func (s *Store) keyIndexKey() string          { return s.prefix + "{keys}:index" }
func (s *Store) signingKey(kid string) string { return s.prefix + "{keys}:id:" + esc(kid) }
func (s *Store) outboxKey() string            { return s.prefix + "{outbox}" }
func (s *Store) limiterKey(key string) string { return s.prefix + "{rl:" + esc(key) + "}" }

// ---------------------------------------------------------------------------
// Time

// ms is t as Unix milliseconds, the unit of PEXPIREAT and of the challenge
// fields; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS reverses ms.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// errEmptyID refuses records without an identity: their key would be shared by
// every other record missing it.
var errEmptyID = errors.New("empty id")

// expiryArg is the PEXPIREAT argument for a record that must expire: a zero
// time is refused, because a record without an expiry would live forever by
// accident. A time in the past is accepted; Redis then drops the record at once,
// exactly as if it had expired.
func expiryArg(t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, errors.New("expires_at is not set")
	}
	v := t.UnixMilli()
	if v < 1 {
		v = 1 // Redis refuses non-positive PXAT; 1 ms after the epoch is just as past
	}
	return v, nil
}

// optionalExpiryArg is like expiryArg for records that may be kept until deleted
// (clients, signing keys): 0 means no expiry.
func optionalExpiryArg(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixMilli(), 1)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
