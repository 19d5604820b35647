package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/storage"
)

// A challenge is a HASH so that the scripts read and write single fields
// without decoding anything. The id is the key; the code hash is stored as raw
// bytes and times as Unix milliseconds (so challenge times are kept to the
// millisecond), which keeps a pending challenge at about 280 bytes of Redis
// memory (MEMORY USAGE, default prefix, 22-character ids), about 360 with a
// ProviderRef and a sealed 10-digit code. ProviderRef and SealedCode are omitted when empty.
const (
	fFlow    = "flow"
	fPhone   = "phone"
	fHash    = "hash"
	fSeal    = "seal"
	fRef     = "ref"
	fAtt     = "att"
	fMax     = "max"
	fSends   = "sends"
	fLast    = "last"
	fExp     = "exp"
	fCreated = "created"
)

// createChallenge stores a challenge unless the id is taken.
// KEYS[1] challenge; ARGV[1] PEXPIREAT ms, ARGV[2..] field, value, field, value…
var createChallenge = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`)

// readChallenge starts verifyChallenge and countAttempt: with now (ms) set, it
// returns false for an absent challenge, reads the HASH into h (and the table
// c, with ai the index of the attempt count in h), and answers expired (3) or
// locked (4) before anything is counted.
const readChallenge = `local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local c, ai = {}, 0
for i = 1, #h, 2 do
  c[h[i]] = h[i+1]
  if h[i] == 'att' then ai = i + 1 end
end
local att, max = tonumber(c.att), tonumber(c.max)
local remaining = max - att
if remaining < 0 then remaining = 0 end
if now >= tonumber(c.exp) then return {3, remaining, h} end
if att >= max then return {4, 0, h} end
`

// verifyChallenge is the whole of VerifyChallenge: expiry, attempt counter,
// comparison, single use and lock, atomically.
// KEYS[1] challenge; ARGV[1] answer hash, ARGV[2] now (ms).
// Returns false when absent, else {outcome, remaining, fields…} where outcome is
// a storage.VerifyOutcome and fields is the record after the attempt (before
// deletion on success). An empty answer never matches, so a challenge stored
// without a hash cannot be passed.
//
// The script compares the SHA-1 digests of the two hashes (double hashing), so
// whatever timing the comparison has depends on digests unrelated to how much
// of the answer matched. The hashes are keyed HMACs already, so this is
// defence in depth; a constant-time byte loop in Lua cost more (13 µs) than the
// whole rest of the script.
var verifyChallenge = goredis.NewScript(`
local now = tonumber(ARGV[2])
` + readChallenge + `if #ARGV[1] > 0 and redis.sha1hex(c.hash) == redis.sha1hex(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return {1, remaining, h}
end
att = redis.call('HINCRBY', KEYS[1], 'att', 1)
h[ai] = tostring(att)
remaining = max - att
if remaining <= 0 then return {4, 0, h} end
return {2, remaining, h}
`)

// countAttempt is the whole of CountAttempt: expiry, lock and the attempt
// counter, atomically; the code hash is not read.
// KEYS[1] challenge; ARGV[1] now (ms).
// Returns false when absent, else {outcome, remaining, fields…} like
// verifyChallenge, with outcome 5 (storage.VerifyCounted) when counted.
var countAttempt = goredis.NewScript(`
local now = tonumber(ARGV[1])
` + readChallenge + `att = redis.call('HINCRBY', KEYS[1], 'att', 1)
h[ai] = tostring(att)
return {5, max - att, h}
`)

// consumeChallenge deletes a challenge and returns its fields: a GETDEL for a
// HASH (HGETDEL only arrived in Redis 8).
// KEYS[1] challenge. Returns false when absent, else {fields…}.
var consumeChallenge = goredis.NewScript(`
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
redis.call('DEL', KEYS[1])
return {h}
`)

// setProviderRef records the provider ref of a send if the challenge is still
// at that send.
// KEYS[1] challenge; ARGV[1] send, ARGV[2] ref ("" removes it).
// Returns false when absent, 0 when the challenge is at another send, 1 when set.
var setProviderRef = goredis.NewScript(`
local sends = redis.call('HGET', KEYS[1], 'sends')
if not sends then return false end
if tonumber(sends) ~= tonumber(ARGV[1]) then return 0 end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'ref')
else
  redis.call('HSET', KEYS[1], 'ref', ARGV[2])
end
return 1
`)

// resendChallenge counts a send if the challenge is not locked, the send limit
// is not reached and the cooldown is over, checked in that order (the lasting
// refusals before the passing one). Unless it keeps the code, it replaces the
// code hash, sealed code, expiry and provider ref. It never resets the
// attempt counter.
// KEYS[1] challenge; ARGV[1] new hash, ARGV[2] now ms, ARGV[3] cooldown ms,
// ARGV[4] max sends, ARGV[5] new code expiry ms, ARGV[6] record PEXPIREAT ms,
// ARGV[7] new provider ref ("" removes the old one), ARGV[8] new sealed code
// ("" removes the old one), ARGV[9] "1" to keep the code (ARGV[1], [5]–[8]
// are then ignored).
// Returns false when absent, else {outcome, fields…} with the fields after the
// call; the caller computes RetryAfter from them at full precision.
var resendChallenge = goredis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'att', 'max', 'sends', 'last')
if not f[2] then return false end
local att, max, sends, last = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
local now = tonumber(ARGV[2])
local outcome = 1
if att >= max then
  outcome = 4
elseif sends >= tonumber(ARGV[4]) then
  outcome = 3
elseif now < last + tonumber(ARGV[3]) then
  outcome = 2
elseif ARGV[9] == '1' then
  redis.call('HSET', KEYS[1], 'sends', sends + 1, 'last', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'sends', sends + 1, 'last', ARGV[2], 'exp', ARGV[5])
  if ARGV[7] == '' then
    redis.call('HDEL', KEYS[1], 'ref')
  else
    redis.call('HSET', KEYS[1], 'ref', ARGV[7])
  end
  if ARGV[8] == '' then
    redis.call('HDEL', KEYS[1], 'seal')
  else
    redis.call('HSET', KEYS[1], 'seal', ARGV[8])
  end
  redis.call('PEXPIREAT', KEYS[1], ARGV[6])
end
return {outcome, redis.call('HGETALL', KEYS[1])}
`)

// CreateChallenge stores c until c.ExpiresAt+ChallengeGrace; ErrAlreadyExists
// when the id is taken. One round trip.
func (s *Store) CreateChallenge(ctx context.Context, c storage.Challenge) error {
	switch {
	case c.ID == "":
		return fmt.Errorf("redis: create challenge: %w", errEmptyID)
	case c.ExpiresAt.IsZero():
		return fmt.Errorf("redis: create challenge %s: expires_at is not set", c.ID)
	}
	until, _ := expiryArg(c.ExpiresAt.Add(storage.ChallengeGrace))
	args := []any{until,
		fFlow, c.FlowID,
		fPhone, c.Phone,
		fHash, c.CodeHash,
		fAtt, c.Attempts,
		fMax, c.MaxAttempts,
		fSends, c.Sends,
		fLast, ms(c.LastSentAt),
		fExp, ms(c.ExpiresAt),
		fCreated, ms(c.CreatedAt),
	}
	if c.ProviderRef != "" {
		args = append(args, fRef, c.ProviderRef)
	}
	if len(c.SealedCode) > 0 {
		args = append(args, fSeal, c.SealedCode)
	}
	created, err := s.runScript(ctx, createChallenge, []string{s.challengeKey(c.ID)}, args...).Int()
	if err != nil {
		return fail(err, "create challenge %s", c.ID)
	}
	if created == 0 {
		return fmt.Errorf("redis: create challenge %s: %w", c.ID, storage.ErrAlreadyExists)
	}
	return nil
}

// GetChallenge returns the challenge; ErrNotFound when absent or expired.
func (s *Store) GetChallenge(ctx context.Context, id string) (storage.Challenge, error) {
	m, err := s.c.HGetAll(ctx, s.challengeKey(id)).Result()
	if err == nil && len(m) == 0 {
		err = goredis.Nil // HGETALL answers an empty hash for a missing key
	}
	if err != nil {
		return storage.Challenge{}, fail(err, "get challenge %s", id)
	}
	c, err := challengeFromMap(id, m)
	if err != nil {
		return storage.Challenge{}, fmt.Errorf("redis: get challenge %s: %w", id, err)
	}
	return c, nil
}

// VerifyChallenge checks answerHash in one script call (one round trip); see
// storage.ChallengeStore for the outcomes. now decides the code's expiry; the
// record itself expires by Redis's clock ChallengeGrace later.
func (s *Store) VerifyChallenge(ctx context.Context, id string, answerHash []byte, now time.Time) (storage.VerifyResult, error) {
	res, err := s.runScript(ctx, verifyChallenge, []string{s.challengeKey(id)}, answerHash, ms(now)).Slice()
	if err != nil {
		return storage.VerifyResult{}, fail(err, "verify challenge %s", id)
	}
	nums, c, err := scriptChallenge(id, res, 2)
	if err != nil {
		return storage.VerifyResult{}, fmt.Errorf("redis: verify challenge %s: %w", id, err)
	}
	return storage.VerifyResult{Outcome: storage.VerifyOutcome(nums[0]), Remaining: int(nums[1]), Challenge: c}, nil
}

// CountAttempt counts an answer the caller judges itself, in one script call
// (one round trip); see storage.ChallengeStore. now decides the code's expiry.
func (s *Store) CountAttempt(ctx context.Context, id string, now time.Time) (storage.VerifyResult, error) {
	res, err := s.runScript(ctx, countAttempt, []string{s.challengeKey(id)}, ms(now)).Slice()
	if err != nil {
		return storage.VerifyResult{}, fail(err, "count attempt %s", id)
	}
	nums, c, err := scriptChallenge(id, res, 2)
	if err != nil {
		return storage.VerifyResult{}, fmt.Errorf("redis: count attempt %s: %w", id, err)
	}
	return storage.VerifyResult{Outcome: storage.VerifyOutcome(nums[0]), Remaining: int(nums[1]), Challenge: c}, nil
}

// ConsumeChallenge deletes the challenge and returns it, in one script call
// (one round trip); ErrNotFound when absent.
func (s *Store) ConsumeChallenge(ctx context.Context, id string) (storage.Challenge, error) {
	res, err := s.runScript(ctx, consumeChallenge, []string{s.challengeKey(id)}).Slice()
	if err != nil {
		return storage.Challenge{}, fail(err, "consume challenge %s", id)
	}
	_, c, err := scriptChallenge(id, res, 0)
	if err != nil {
		return storage.Challenge{}, fmt.Errorf("redis: consume challenge %s: %w", id, err)
	}
	return c, nil
}

// SetProviderRef records ref for send number send in one script call (one
// round trip); see storage.ChallengeStore.
func (s *Store) SetProviderRef(ctx context.Context, id string, send int, ref string) error {
	n, err := s.runScript(ctx, setProviderRef, []string{s.challengeKey(id)}, send, ref).Int()
	if err != nil {
		return fail(err, "set provider ref %s", id)
	}
	if n == 0 {
		return fmt.Errorf("redis: set provider ref %s: the challenge is no longer at send %d: %w", id, send, storage.ErrConflict)
	}
	return nil
}

// ResendChallenge counts a send, keeping or replacing the code, in one script
// call; see storage.ChallengeStore. Refusals are checked in the order locked,
// too many sends, too soon. Attempts are never reset.
func (s *Store) ResendChallenge(ctx context.Context, id string, r storage.Resend) (storage.ResendResult, error) {
	keep, hash, sealed, ref := "0", r.CodeHash, r.SealedCode, r.ProviderRef
	var exp, until int64
	if r.KeepCode {
		keep, hash, sealed, ref = "1", nil, nil, ""
	} else {
		if r.ExpiresAt.IsZero() {
			return storage.ResendResult{}, fmt.Errorf("redis: resend challenge %s: expires_at is not set", id)
		}
		exp = ms(r.ExpiresAt)
		until, _ = expiryArg(r.ExpiresAt.Add(storage.ChallengeGrace))
	}
	cooldown := (r.Cooldown + time.Millisecond - 1).Milliseconds() // never shorter than asked
	res, err := s.runScript(ctx, resendChallenge, []string{s.challengeKey(id)},
		hash, ms(r.Now), cooldown, r.MaxSends, exp, until, ref, sealed, keep).Slice()
	if err != nil {
		return storage.ResendResult{}, fail(err, "resend challenge %s", id)
	}
	nums, c, err := scriptChallenge(id, res, 1)
	if err != nil {
		return storage.ResendResult{}, fmt.Errorf("redis: resend challenge %s: %w", id, err)
	}
	result := storage.ResendResult{Outcome: storage.ResendOutcome(nums[0]), Challenge: c}
	if result.Outcome == storage.ResendTooSoon {
		// Never 0 or less, even where the script's milliseconds and r.Now's
		// nanoseconds disagree.
		result.RetryAfter = max(c.LastSentAt.Add(r.Cooldown).Sub(r.Now), time.Millisecond)
	}
	return result, nil
}

// DeleteChallenge removes the challenge; ErrNotFound when absent.
func (s *Store) DeleteChallenge(ctx context.Context, id string) error {
	return s.del(ctx, s.challengeKey(id), "delete challenge %s", id)
}

// scriptChallenge decodes the reply of the challenge scripts: n integers, then
// the record's fields as a flat list.
func scriptChallenge(id string, res []any, n int) ([]int64, storage.Challenge, error) {
	if len(res) != n+1 {
		return nil, storage.Challenge{}, fmt.Errorf("unexpected script reply of %d items", len(res))
	}
	nums := make([]int64, n)
	for i := range n {
		v, ok := res[i].(int64)
		if !ok {
			return nil, storage.Challenge{}, fmt.Errorf("unexpected script reply: item %d is %T", i, res[i])
		}
		nums[i] = v
	}
	flat, ok := res[n].([]any)
	if !ok || len(flat)%2 != 0 {
		return nil, storage.Challenge{}, fmt.Errorf("unexpected script reply: fields are %T", res[n])
	}
	m := make(map[string]string, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	c, err := challengeFromMap(id, m)
	return nums, c, err
}

// challengeFromMap decodes the HASH fields of a challenge.
func challengeFromMap(id string, m map[string]string) (storage.Challenge, error) {
	c := storage.Challenge{
		ID:          id,
		FlowID:      m[fFlow],
		Phone:       m[fPhone],
		CodeHash:    []byte(m[fHash]),
		ProviderRef: m[fRef],
	}
	if v := m[fSeal]; v != "" {
		c.SealedCode = []byte(v)
	}
	var att, max, sends, last, exp, created int64
	for _, f := range []struct {
		name string
		dst  *int64
	}{{fAtt, &att}, {fMax, &max}, {fSends, &sends}, {fLast, &last}, {fExp, &exp}, {fCreated, &created}} {
		v, err := strconv.ParseInt(m[f.name], 10, 64)
		if err != nil {
			return storage.Challenge{}, fmt.Errorf("field %s: %w", f.name, err)
		}
		*f.dst = v
	}
	c.Attempts, c.MaxAttempts, c.Sends = int(att), int(max), int(sends)
	c.LastSentAt, c.ExpiresAt, c.CreatedAt = fromMS(last), fromMS(exp), fromMS(created)
	return c, nil
}
