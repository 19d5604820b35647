package redis

import (
	"context"
	"encoding/json"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/storage"
)

// A token is a HASH: "d" holds the JSON (tokenWire), "r" the request id and "a"
// the active flag ("1" or "0"), so that scripts test and flip them without
// decoding JSON (the scripts spell the field names out: keep them in step). It expires at its ExpiresAt.
//
// Each (kind, request id) has a SET of signatures, the request index, whose
// expiry is pushed to the latest expiry of its members. A token is added to its
// index before it is stored, so every stored token can be found from its
// request. The index may name tokens that are gone (deleted one by one, or
// never stored because the signature was taken); readers tolerate that and
// check the request id of each token before acting on it.
//
// Revocation by request (DeactivateTokensByRequest, DeleteTokensByRequest) is
// not one atomic unit: the index and the tokens hash to different slots, so it
// reads the index and then acts on each token with its own atomic script. A
// token indexed after the index was read escapes that revocation. This is
// acceptable: each token's own transition is atomic and idempotent, so a
// revocation that failed half way is simply retried; fosite creates the tokens
// of a request id in the same call that revokes the previous ones (refresh
// rotation revokes, then creates), one after the other; and the race that
// matters, two uses of one refresh token, is settled by DeactivateToken, which
// is atomic. A tombstone that blocked later tokens of a revoked request would
// break refresh rotation, which reuses the request id.
//
// Token signatures are bearer-token material: errors name the kind, never the
// signature.

const (
	tData   = "d"
	tReq    = "r"
	tActive = "a"
)

// createToken stores a token HASH unless the key exists.
// KEYS[1] token; ARGV[1] PEXPIREAT ms, ARGV[2] JSON, ARGV[3] request id, ARGV[4] active.
var createToken = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'r', ARGV[3], 'a', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`)

// indexToken adds a signature to a request index and makes the index live at
// least as long as that token.
// KEYS[1] index; ARGV[1] signature, ARGV[2] the token's PEXPIREAT ms.
var indexToken = goredis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 1
`)

// deactivateToken marks an active token inactive.
// KEYS[1] token. Returns 1 done, 0 already inactive, false absent.
var deactivateToken = goredis.NewScript(`
local a = redis.call('HGET', KEYS[1], 'a')
if not a then return false end
if a == '0' then return 0 end
redis.call('HSET', KEYS[1], 'a', '0')
return 1
`)

// deactivateForRequest marks a token inactive if it belongs to the request.
// KEYS[1] token; ARGV[1] request id. Returns 1 when the token was there.
var deactivateForRequest = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'r') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'a', '0')
return 1
`)

// deleteForRequest deletes a token if it belongs to the request.
// KEYS[1] token; ARGV[1] request id. Returns 1 when the token was there.
var deleteForRequest = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'r') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`)

// CreateToken stores t until t.ExpiresAt and indexes it under its request;
// ErrAlreadyExists when the signature is taken. One round trip: the index and
// the token go out in one pipeline, index first. On a standalone server or a
// Sentinel master they run in that order; on a cluster they sit on different
// nodes, which is no weaker than the revocation race described above; so is
// the first call after a node lost its script cache, when the index alone
// answers NOSCRIPT and is run again after the token. When the index failed
// and the token was written anyway, the token is deleted again, so that no
// stored token escapes its request's revocation.
func (s *Store) CreateToken(ctx context.Context, t storage.Token) error {
	if t.Signature == "" {
		return fmt.Errorf("redis: create %s token: %w", t.Kind, errEmptyID)
	}
	pxat, err := expiryArg(t.ExpiresAt)
	if err != nil {
		return fmt.Errorf("redis: create %s token: %w", t.Kind, err)
	}
	b, err := json.Marshal(tokenWire{Kind: t.Kind, Signature: t.Signature, Request: t.Request, ExpiresAt: t.ExpiresAt})
	if err != nil {
		return fmt.Errorf("redis: create %s token: encode: %w", t.Kind, err)
	}
	active := "0"
	if t.Active {
		active = "1"
	}
	tokenKey := s.tokenKey(t.Kind, t.Signature)
	cmds := s.runScripts(ctx, []scriptCall{
		{indexToken, []string{s.requestKey(t.Kind, t.RequestID)}, []any{t.Signature, pxat}},
		{createToken, []string{tokenKey}, []any{pxat, b, t.RequestID, active}},
	})
	index, create := cmds[0], cmds[1]
	created, cerr := create.Int()
	if err := index.Err(); err != nil {
		if cerr == nil && created == 1 {
			// Best effort: the caller sees the index error either way.
			_ = s.c.Del(context.WithoutCancel(ctx), tokenKey).Err()
		}
		return fail(err, "create %s token: index", t.Kind)
	}
	if cerr != nil {
		return fail(cerr, "create %s token", t.Kind)
	}
	if created == 0 {
		return fmt.Errorf("redis: create %s token: %w", t.Kind, storage.ErrAlreadyExists)
	}
	return nil
}

// GetToken returns the token, active or not; ErrNotFound when absent or expired.
func (s *Store) GetToken(ctx context.Context, kind storage.TokenKind, signature string) (storage.Token, error) {
	m, err := s.c.HGetAll(ctx, s.tokenKey(kind, signature)).Result()
	if err == nil && len(m) == 0 {
		err = goredis.Nil // HGETALL answers an empty hash for a missing key
	}
	if err != nil {
		return storage.Token{}, fail(err, "get %s token", kind)
	}
	var w tokenWire
	if err := json.Unmarshal([]byte(m[tData]), &w); err != nil {
		return storage.Token{}, fmt.Errorf("redis: get %s token: decode: %w", kind, err)
	}
	return storage.Token{
		Kind:      w.Kind,
		Signature: w.Signature,
		RequestID: m[tReq],
		Active:    m[tActive] == "1",
		Request:   w.Request,
		ExpiresAt: w.ExpiresAt,
	}, nil
}

// DeleteToken removes the token; ErrNotFound when absent. Its request index
// keeps naming it until the index expires (see above).
func (s *Store) DeleteToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	return s.del(ctx, s.tokenKey(kind, signature), "delete %s token", kind)
}

// DeactivateToken marks an active token inactive in one script: ErrNotFound when
// absent, ErrConflict when already inactive.
func (s *Store) DeactivateToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	n, err := s.runScript(ctx, deactivateToken, []string{s.tokenKey(kind, signature)}).Int()
	if err != nil {
		return fail(err, "deactivate %s token", kind)
	}
	if n == 0 {
		return fmt.Errorf("redis: deactivate %s token: already inactive: %w", kind, storage.ErrConflict)
	}
	return nil
}

// DeactivateTokensByRequest marks every token of kind issued for requestID
// inactive. Two round trips: the index, then one pipeline of scripts.
func (s *Store) DeactivateTokensByRequest(ctx context.Context, kind storage.TokenKind, requestID string) error {
	_, err := s.forRequest(ctx, kind, requestID, deactivateForRequest)
	return fail(err, "deactivate %s tokens of request %s", kind, requestID)
}

// DeleteTokensByRequest removes every token of kind issued for requestID and
// their index entries. Three round trips: the index, one pipeline of scripts,
// SREM.
func (s *Store) DeleteTokensByRequest(ctx context.Context, kind storage.TokenKind, requestID string) error {
	done, err := s.forRequest(ctx, kind, requestID, deleteForRequest)
	if len(done) > 0 {
		// Only the members handled: a token indexed meanwhile stays findable.
		if e := s.c.SRem(ctx, s.requestKey(kind, requestID), done...).Err(); err == nil {
			err = e
		}
	}
	return fail(err, "delete %s tokens of request %s", kind, requestID)
}

// forRequest runs sc on every token named by the request index and returns the
// signatures it handled, with the first error met.
func (s *Store) forRequest(ctx context.Context, kind storage.TokenKind, requestID string, sc *goredis.Script) ([]any, error) {
	sigs, err := s.c.SMembers(ctx, s.requestKey(kind, requestID)).Result()
	if err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return nil, ctx.Err()
	}
	calls := make([]scriptCall, len(sigs))
	for i, sig := range sigs {
		calls[i] = scriptCall{sc, []string{s.tokenKey(kind, sig)}, []any{requestID}}
	}
	var done []any
	var first error
	for i, c := range s.runScripts(ctx, calls) {
		if err := c.Err(); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		done = append(done, sigs[i])
	}
	return done, first
}
