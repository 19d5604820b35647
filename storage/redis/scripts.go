package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// Lua scripts. Each touches only the keys it is given (all in one slot) and
// signals "no such record" by returning false, which go-redis reports as
// goredis.Nil and fail turns into storage.ErrNotFound.
//
// Scripts run with Script.Run: EVALSHA, and EVAL when the node does not know the
// script yet (which also caches it there), so a script costs one round trip
// except the first time on each node.

// createJSON stores a JSON record unless the key exists.
// KEYS[1] record; ARGV[1] JSON, ARGV[2] PEXPIREAT ms or "0" for none.
// Returns 1 when created, 0 when the key existed.
var createJSON = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
end
return 1
`)

// createIndexed is createJSON plus a member added to a sorted-set index in the
// same slot (clients, keys).
// KEYS[1] record, KEYS[2] index; ARGV[1] JSON, ARGV[2] PEXPIREAT ms or "0",
// ARGV[3] member, ARGV[4] score.
var createIndexed = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
return 1
`)

// deleteIndexed removes a record and its index member.
// KEYS[1] record, KEYS[2] index; ARGV[1] member. Returns the number of records deleted.
var deleteIndexed = goredis.NewScript(`
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
`)

// pruneIndex removes index members whose record is gone (expired), checking each
// record inside the script so that a record re-created meanwhile keeps its member.
// KEYS[1] index, KEYS[2..n] records; ARGV[i] the member of KEYS[i+1].
var pruneIndex = goredis.NewScript(`
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then redis.call('ZREM', KEYS[1], ARGV[i-1]) end
end
return 1
`)

// compareAndSet replaces a JSON record if its version is still the one the
// caller read. Wire structs put the version first ({"v":N,…}: encoding/json
// writes fields in declaration order), so the script reads it with a pattern
// instead of decoding the whole record.
// KEYS[1] record, optional KEYS[2] index; ARGV[1] expected version, ARGV[2] new
// JSON, ARGV[3] PEXPIREAT ms or "0" for none, ARGV[4] member, ARGV[5] score.
// Returns 1 when written, 0 when the version changed, false when the record is gone.
var compareAndSet = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
if string.match(cur, '^{"v":(-?%d+)[,}]') ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
end
if KEYS[2] then redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4]) end
return 1
`)

// runScript runs one script call.
func (s *Store) runScript(ctx context.Context, sc *goredis.Script, keys []string, args ...any) *goredis.Cmd {
	return sc.Run(ctx, s.c, keys, args...)
}

// scriptCall is one invocation of a script in runScripts.
type scriptCall struct {
	script *goredis.Script
	keys   []string
	args   []any
}

// runScripts runs calls in a single pipeline, in order (one round trip on a
// standalone server; go-redis splits it per node on a cluster). Calls whose
// node did not know their script yet are re-run one by one with the EVAL
// fallback. The caller inspects each command's error.
func (s *Store) runScripts(ctx context.Context, calls []scriptCall) []*goredis.Cmd {
	cmds := make([]*goredis.Cmd, len(calls))
	if len(calls) == 0 {
		return cmds
	}
	// The pipeline's own error repeats the first failed command's; every
	// command's error is looked at below.
	_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	for i, c := range cmds {
		if goredis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			cmds[i] = s.runScript(ctx, calls[i].script, calls[i].keys, calls[i].args...)
		}
	}
	return cmds
}
