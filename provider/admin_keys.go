package provider

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/otpgate/otpgate/provider/keys"
	"github.com/otpgate/otpgate/storage"
)

// keyRetireMargin is added to the longest token lifetime to get how long a
// retired key stays published. It covers the keys cache of other instances,
// which may sign with the old key for up to 30s after a rotation, and clock
// skew between otpgate and relying parties.
const keyRetireMargin = 5 * time.Minute

// rotationAlgorithms are the algorithms a rotation without ?alg= renews.
var rotationAlgorithms = []string{keys.RS256, keys.ES256}

// minKeyRetireAfter is the shortest time a retired key must stay published:
// every token it signed has expired by then.
func (o *Options) minKeyRetireAfter() time.Duration {
	return KeyRetireAfter(o.IDTokenTTL, o.AccessTokenTTL)
}

// KeyRetireAfter is how long a retired signing key must stay published for
// tokens of these lifetimes: the longest plus a margin for clock skew. Give
// it to keys.WithRetireAfter, so that keys restored after a store lost them
// are retired for as long as a rotation retires them.
func KeyRetireAfter(idTokenTTL, accessTokenTTL time.Duration) time.Duration {
	return max(idTokenTTL, accessTokenTTL) + keyRetireMargin
}

// checkKeyOptions fills in KeyRetireAfter and refuses values that would let a
// key leave the JWKS while tokens it signed are still valid.
func (o *Options) checkKeyOptions() error {
	least := o.minKeyRetireAfter()
	switch {
	case o.KeyRetireAfter == 0:
		o.KeyRetireAfter = least
	case o.KeyRetireAfter < least:
		return fmt.Errorf("provider: Options.KeyRetireAfter (%s) must be at least the longest token lifetime plus %s (%s): a retired key must verify every token it signed until it expires",
			o.KeyRetireAfter, keyRetireMargin, least)
	}
	if o.KeyRotationInterval < 0 {
		return fmt.Errorf("provider: Options.KeyRotationInterval must not be negative, got %s", o.KeyRotationInterval)
	}
	return nil
}

// keyList is the body of GET /admin/keys.
type keyList struct {
	Keys []keys.Info `json:"keys"`
}

// rotation is the body of POST /admin/keys/rotate.
type rotation struct {
	Rotated      []rotatedKey `json:"rotated"`
	RetiredUntil time.Time    `json:"retired_until"` // the previous keys leave the JWKS then
	Keys         []keys.Info  `json:"keys"`
}

type rotatedKey struct {
	Algorithm string   `json:"alg"`
	ID        string   `json:"kid"`
	Retired   []string `json:"retired"` // kids that stopped signing
}

// listKeys is GET /admin/keys: the published keys, never private material.
func (a *adminAPI) listKeys(c *gin.Context) {
	list, err := a.p.keys.List(c.Request.Context())
	if err != nil {
		a.storeFailed(c, "", err)
		return
	}
	c.JSON(http.StatusOK, keyList{Keys: list})
}

// rotateKeys is POST /admin/keys/rotate[?alg=RS256|ES256]: new current keys
// for the algorithm, or for both; the previous ones keep verifying until
// retired_until.
func (a *adminAPI) rotateKeys(c *gin.Context) {
	algs := rotationAlgorithms
	if alg := c.Query("alg"); alg != "" {
		if alg != keys.RS256 && alg != keys.ES256 {
			a.fail(c, newAdminError(http.StatusBadRequest, "invalid_request", "alg must be %q or %q, got %q", keys.RS256, keys.ES256, alg))
			return
		}
		algs = []string{alg}
	}
	ctx := c.Request.Context()
	res, err := a.p.rotateKeys(ctx, algs, a.actor, slog.String("remote_addr", c.Request.RemoteAddr))
	if err != nil {
		a.p.log.Error("admin: key rotation failed", "err", err)
		a.fail(c, newAdminError(http.StatusServiceUnavailable, "temporarily_unavailable", "the key rotation failed; see the server log"))
		return
	}
	c.JSON(http.StatusOK, res)
}

// rotateKeys rotates the current key of each algorithm in algs, audits each
// rotation as done by actor, and returns what changed.
func (p *Provider) rotateKeys(ctx context.Context, algs []string, actor string, attrs ...slog.Attr) (rotation, error) {
	before, err := p.keys.List(ctx)
	if err != nil {
		return rotation{}, err
	}
	res := rotation{RetiredUntil: p.now().UTC().Add(p.opts.KeyRetireAfter).Truncate(time.Second)}
	for _, alg := range algs {
		kid, err := p.keys.Rotate(ctx, alg, p.opts.KeyRetireAfter)
		if err != nil {
			return rotation{}, err
		}
		r := rotatedKey{Algorithm: alg, ID: kid, Retired: []string{}}
		for _, k := range before {
			if k.Algorithm == alg && k.State == storage.KeyCurrent {
				r.Retired = append(r.Retired, k.ID)
			}
		}
		res.Rotated = append(res.Rotated, r)
		p.audit(ctx, eventKeysRotated, actor, append([]slog.Attr{
			slog.String("alg", alg),
			slog.String("kid", kid),
			slog.Any("retired", r.Retired),
			slog.Time("retired_until", res.RetiredUntil),
		}, attrs...)...)
	}
	if res.Keys, err = p.keys.List(ctx); err != nil {
		return rotation{}, err
	}
	return res, nil
}

// RunKeyRotation rotates each algorithm's signing key once it is older than
// Options.KeyRotationInterval, until ctx ends; it returns at once when the
// interval is 0. Start it in its own goroutine.
//
// Several instances may run it against one store. Each rotates only a key that
// is too old, reading the store (not its cache) just before, and checks at a
// jittered period so that instances rarely look at the same moment; if two
// still rotate together, both new keys are published and the newest signs
// (see keys.Manager), which is harmless.
func (p *Provider) RunKeyRotation(ctx context.Context) {
	interval := p.opts.KeyRotationInterval
	if interval <= 0 {
		return
	}
	every := min(max(interval/20, time.Second), 10*time.Minute)
	for {
		p.rotateDueKeys(ctx)
		wait := every/2 + rand.N(every) // every ± 50%
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// rotateDueKeys rotates the algorithms whose signing key is older than the
// rotation interval, and returns them.
func (p *Provider) rotateDueKeys(ctx context.Context) []string {
	list, err := p.keys.List(ctx)
	if err != nil {
		p.log.Warn("keys: rotation check failed", "err", err)
		return nil
	}
	now := p.now()
	var due []string
	for _, alg := range rotationAlgorithms {
		for _, k := range list {
			if k.Algorithm == alg && k.Signing && now.Sub(k.CreatedAt) >= p.opts.KeyRotationInterval {
				due = append(due, alg)
			}
		}
	}
	if len(due) == 0 {
		return nil
	}
	if _, err := p.rotateKeys(ctx, due, actorScheduler, slog.String("reason", "older than key_rotation_interval "+p.opts.KeyRotationInterval.String())); err != nil {
		if ctx.Err() == nil {
			p.log.Error("keys: scheduled rotation failed", "algs", due, "err", err)
		}
		return nil
	}
	return due
}
