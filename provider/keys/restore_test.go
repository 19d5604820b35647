package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
	otpredis "github.com/otpgate/otpgate/storage/redis"
	"github.com/otpgate/otpgate/storage/redis/redistest"
)

// keyStores are the backends the restore tests run on: the store's own
// clock is real time in both.
var keyStores = map[string]func(t *testing.T) storage.KeyStore{
	"memory": func(t *testing.T) storage.KeyStore { return newStore(t) },
	"redis": func(t *testing.T) storage.KeyStore {
		client, prefix := redistest.New(t)
		return otpredis.New(client, otpredis.WithPrefix(prefix))
	},
}

// logBuffer collects a Manager's log.
type logBuffer struct{ strings.Builder }

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// flush deletes every key, as a Redis restarted without persistence has.
func flush(t *testing.T, store storage.KeyStore) {
	t.Helper()
	ctx := context.Background()
	list, err := store.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range list {
		if err := store.DeleteKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
	}
	if list, _ := store.ListKeys(ctx); len(list) != 0 {
		t.Fatalf("%d keys left after the flush", len(list))
	}
}

func storedKids(t *testing.T, store storage.KeyStore) map[string]storage.SigningKey {
	t.Helper()
	list, err := store.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]storage.SigningKey{}
	for _, k := range list {
		out[k.ID] = k
	}
	return out
}

// restoreWarning is the log line of a restore by this instance.
const restoreWarning = "signing keys missing from the store (Redis restarted without persistence?); restored them as retired"

// currentKids returns the kids the store holds as current for alg.
func currentKids(t *testing.T, store storage.KeyStore, alg string) []string {
	t.Helper()
	var out []string
	for kid, k := range storedKids(t, store) {
		if k.Algorithm == alg && k.State == storage.KeyCurrent {
			out = append(out, kid)
		}
	}
	return out
}

// TestRestoreAfterFlush signs, loses every key from the store, and signs
// again once the cache expires: the lost keys are written back retired (the
// current ones until now+retirement, the retired one until its own expiry),
// so tokens they signed still verify with the JWKS, and new current keys
// sign. The restore is logged once.
func TestRestoreAfterFlush(t *testing.T) {
	for name, newKeyStore := range keyStores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := newKeyStore(t)
			clk := newClock()
			const retireAfter = 90 * time.Minute
			var log logBuffer
			m := newManager(t, store, WithNow(clk.Now), WithLogger(log.logger()), WithRetireAfter(retireAfter))
			other := newManager(t, store, WithNow(clk.Now))
			ensure(t, m)
			retiredKid := kidOf(t, m, ES256)
			if _, err := m.Rotate(ctx, ES256, 2*time.Hour); err != nil {
				t.Fatal(err)
			}
			rsKid, esKid := kidOf(t, m, RS256), kidOf(t, m, ES256)
			kidOf(t, other, RS256) // the other instance has a view too
			before := storedKids(t, store)
			tokRS := sign(t, m, nil)
			tokES := sign(t, m, map[string]any{"kid": esKid})

			flush(t, store)
			// Within the cache TTL nothing reads the store.
			if got := kidOf(t, m, RS256); got != rsKid {
				t.Fatalf("within the cache TTL: RS256 kid %s, want %s", got, rsKid)
			}
			clk.Advance(time.Minute)
			restoredAt := clk.Now()

			newRS, newES := kidOf(t, m, RS256), kidOf(t, m, ES256)
			if newRS == rsKid || newES == esKid {
				t.Fatalf("after the flush the keys from before it still sign: RS256 %s, ES256 %s", newRS, newES)
			}
			set := jwks(t, m)
			for _, tok := range []string{tokRS, tokES} {
				if _, err := verifyWithJWKS(set, tok); err != nil {
					t.Errorf("a token signed before the flush: %v", err)
				}
			}
			if h, err := verifyWithJWKS(set, sign(t, m, nil)); err != nil || h.KeyID != newRS {
				t.Errorf("RS256 after the flush: kid %q, %v; want %s", h.KeyID, err, newRS)
			}
			// A session that stored a kid from before the flush signs with the successor.
			if h, err := verifyWithJWKS(set, sign(t, m, map[string]any{"kid": esKid})); err != nil || h.KeyID != newES {
				t.Errorf("ES256 with the old kid after the flush: kid %q, %v; want %s", h.KeyID, err, newES)
			}
			if got, want := kids(set), []string{newRS, newES, rsKid, esKid, retiredKid}; len(got) != len(want) || !containsAll(got, want) {
				t.Errorf("JWKS after the flush: %v, want the 2 new keys, the 2 restored and the retired %s", got, retiredKid)
			}
			after := storedKids(t, store)
			if len(after) != len(before)+2 {
				t.Errorf("store after the restore: %d keys, want %d", len(after), len(before)+2)
			}
			for kid, was := range before {
				want := was
				if was.State == storage.KeyCurrent {
					want.State, want.ExpiresAt = storage.KeyRetired, restoredAt.Add(retireAfter)
				}
				got, ok := after[kid]
				if !ok || got.State != want.State || got.Algorithm != want.Algorithm || !got.ExpiresAt.Equal(want.ExpiresAt) ||
					!got.CreatedAt.Equal(want.CreatedAt) || string(got.Encrypted) != string(want.Encrypted) {
					t.Errorf("key %s: restored as %s until %v, want %s until %v", kid, got.State, got.ExpiresAt, want.State, want.ExpiresAt)
				}
			}
			for alg, kid := range map[string]string{RS256: newRS, ES256: newES} {
				if got := currentKids(t, store, alg); len(got) != 1 || got[0] != kid {
					t.Errorf("%s current in the store: %v, want only %s", alg, got, kid)
				}
			}

			// The other instance finds them in the store: the same new keys, nothing to restore.
			clk.Advance(time.Minute)
			if got := kidOf(t, other, RS256); got != newRS {
				t.Errorf("other instance signs with %s, want %s", got, newRS)
			}
			if n := strings.Count(log.String(), restoreWarning); n != 1 || !strings.Contains(log.String(), restoreWarning+`" count=3 `) {
				t.Errorf("restore warnings: %d, want one with count=3:\n%s", n, log.String())
			}

			// The restored keys leave the JWKS at the end of their retirement.
			clk.Advance(retireAfter - time.Minute) // now restoredAt+retireAfter
			if got := kids(jwks(t, m)); !containsAll(got, []string{newRS, newES, retiredKid}) || slices.Contains(got, rsKid) || slices.Contains(got, esKid) {
				t.Errorf("JWKS at the end of the retirement: %v, want %s and %s gone", got, rsKid, esKid)
			}

			// Ensure after a flush restores too, and generates new current keys.
			flush(t, store)
			ensure(t, m)
			stored := storedKids(t, store)
			for _, kid := range []string{newRS, newES} {
				if k, ok := stored[kid]; !ok || k.State != storage.KeyRetired {
					t.Errorf("Ensure after a flush: key %s is %+v, want restored retired", kid, k.State)
				}
			}
			if kidOf(t, m, RS256) == newRS || kidOf(t, m, ES256) == newES {
				t.Error("Ensure after a flush left a restored key signing")
			}
		})
	}
}

func containsAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// TestRestoreBesideRegeneratedKeys: after the flush, an instance that knew
// nothing (a fresh start) generates new keys before this one notices. This
// one still writes its keys back, retired for the default retirement, so that
// tokens it signed keep verifying; the fresh instance's key signs everywhere.
func TestRestoreBesideRegeneratedKeys(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	clk := newClock()
	m := newManager(t, store, WithNow(clk.Now))
	ensure(t, m)
	oldRS := kidOf(t, m, RS256)
	tok := sign(t, m, nil)

	flush(t, store)
	clk.Advance(time.Second)
	fresh := newManager(t, store, WithNow(clk.Now))
	ensure(t, fresh)
	newRS := kidOf(t, fresh, RS256)

	clk.Advance(time.Minute)
	if _, err := verifyWithJWKS(jwks(t, m), tok); err != nil {
		t.Errorf("token from before the flush, on the instance that knew its key: %v", err)
	}
	if got := kidOf(t, m, RS256); got != newRS {
		t.Errorf("signs with %s, want the fresh instance's %s", got, newRS)
	}
	restored, ok := storedKids(t, store)[oldRS]
	if want := clk.Now().Add(24*time.Hour + 5*time.Minute); !ok || restored.State != storage.KeyRetired || !restored.ExpiresAt.Equal(want) {
		t.Errorf("the old key was written back as %q until %v, want retired until %v", restored.State, restored.ExpiresAt, want)
	}
	if got := currentKids(t, store, RS256); len(got) != 1 || got[0] != newRS {
		t.Errorf("RS256 current in the store: %v, want only %s", got, newRS)
	}
	clk.Advance(time.Minute)
	if _, err := verifyWithJWKS(jwks(t, fresh), tok); err != nil {
		t.Errorf("token from before the flush, on the fresh instance: %v", err)
	}
	// A rotation retires the current key; the restored one stays retired.
	if _, err := m.Rotate(ctx, RS256, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{oldRS, newRS} {
		if k := storedKids(t, store)[kid]; k.State != storage.KeyRetired {
			t.Errorf("key %s after rotation: %q, want retired", kid, k.State)
		}
	}
}

// TestNoRestoreOfRotatedKeys: an instance idle for longer than a retirement
// does not bring back the key that another instance rotated away and that
// then expired: the store had a current key all along.
func TestNoRestoreOfRotatedKeys(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	store := newStore(t, memory.WithNow(clk.Now))
	idle := newManager(t, store, WithNow(clk.Now))
	busy := newManager(t, store, WithNow(clk.Now))
	ensure(t, idle)
	oldRS := kidOf(t, idle, RS256)
	newRS, err := busy.Rotate(ctx, RS256, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(11 * time.Minute)
	if got := kidOf(t, idle, RS256); got != newRS {
		t.Errorf("idle instance signs with %s, want %s", got, newRS)
	}
	if _, ok := storedKids(t, store)[oldRS]; ok {
		t.Error("the expired, rotated-out key was written back")
	}
	if got := kids(jwks(t, idle)); slices.Contains(got, oldRS) {
		t.Errorf("JWKS %v still publishes the expired key %s", got, oldRS)
	}
}

// TestNoRestoreFromStaleView: an idle instance knows K as current; a
// short-lived process (the keys rotate CLI) rotates K out for 10 minutes;
// 11 minutes later the store is flushed, and nobody restores the key that
// replaced K. The idle instance's view is too old to restore from: it neither
// signs with K nor publishes it again, and generates new keys.
func TestNoRestoreFromStaleView(t *testing.T) {
	for name, newKeyStore := range keyStores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := newKeyStore(t)
			clk := newClock()
			var log logBuffer
			idle := newManager(t, store, WithNow(clk.Now), WithLogger(log.logger()))
			ensure(t, idle)
			oldRS, oldES := kidOf(t, idle, RS256), kidOf(t, idle, ES256)
			cli := newManager(t, store, WithNow(clk.Now))
			rotatedTo, err := cli.Rotate(ctx, RS256, 10*time.Minute)
			if err != nil {
				t.Fatal(err)
			}

			clk.Advance(11 * time.Minute)
			flush(t, store)

			rs := kidOf(t, idle, RS256)
			if rs == oldRS || rs == rotatedTo {
				t.Errorf("idle instance signs RS256 with %s, want a new key (not the rotated-out %s nor the lost %s)", rs, oldRS, rotatedTo)
			}
			if es := kidOf(t, idle, ES256); es == oldES {
				t.Errorf("idle instance signs ES256 with %s from its stale view", es)
			}
			if got := kids(jwks(t, idle)); slices.Contains(got, oldRS) || len(got) != 2 {
				t.Errorf("JWKS %v: want the 2 new keys, and the rotated-out %s not published again", got, oldRS)
			}
			stored := storedKids(t, store)
			if _, ok := stored[oldRS]; ok {
				t.Errorf("the rotated-out key %s was written back", oldRS)
			}
			if got := currentKids(t, store, RS256); len(got) != 1 || got[0] != rs {
				t.Errorf("RS256 current in the store: %v, want only %s", got, rs)
			}
			if strings.Contains(log.String(), restoreWarning) {
				t.Errorf("a stale view restored keys:\n%s", log.String())
			}
		})
	}
}

// TestRotationThenFlush: an instance knows K as current; another rotates K
// out; the store is flushed within the restore window. Whichever instance
// restores first, K comes back retired, never current: it does not sign, and
// leaves the JWKS when its retirement ends. The second instance to restore
// meets keys already there and does not fail.
func TestRotationThenFlush(t *testing.T) {
	for name, newKeyStore := range keyStores {
		for _, rotatorFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/rotator restores first %v", name, rotatorFirst), func(t *testing.T) {
				ctx := context.Background()
				store := newKeyStore(t)
				clk := newClock()
				const retireAfter = time.Hour
				unaware := newManager(t, store, WithNow(clk.Now), WithRetireAfter(retireAfter))
				rotator := newManager(t, store, WithNow(clk.Now), WithRetireAfter(retireAfter))
				ensure(t, unaware)
				oldRS := kidOf(t, unaware, RS256)
				tok := sign(t, unaware, nil)
				clk.Advance(10 * time.Second) // within the unaware instance's cache TTL
				rotationEnd := clk.Now().Add(10 * time.Minute)
				rotatedTo, err := rotator.Rotate(ctx, RS256, 10*time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				kidOf(t, rotator, RS256) // the rotator's view has the rotation
				clk.Advance(time.Minute)
				flush(t, store)
				clk.Advance(time.Minute)

				order := []*Manager{unaware, rotator}
				if rotatorFirst {
					order = []*Manager{rotator, unaware}
				}
				for _, m := range order {
					if _, _, err := m.SigningKey(ctx, RS256); err != nil {
						t.Fatalf("refresh after the flush: %v", err)
					}
				}
				clk.Advance(time.Minute)
				signing := kidOf(t, unaware, RS256)
				for name, m := range map[string]*Manager{"unaware": unaware, "rotator": rotator} {
					h, err := verifyWithJWKS(jwks(t, m), sign(t, m, nil))
					if err != nil || h.KeyID == oldRS || h.KeyID == rotatedTo || h.KeyID != signing {
						t.Errorf("%s instance signs with %q (%v), want %s: neither the rotated-out %s nor %s", name, h.KeyID, err, signing, oldRS, rotatedTo)
					}
					if _, err := verifyWithJWKS(jwks(t, m), tok); err != nil {
						t.Errorf("%s instance: a token the rotated-out key signed: %v", name, err)
					}
				}
				// Whichever instance wrote it first, the rotated-out key ends
				// its retirement when the rotation said, not an hour later.
				k, ok := storedKids(t, store)[oldRS]
				if !ok || k.State != storage.KeyRetired || !k.ExpiresAt.Equal(rotationEnd) {
					t.Errorf("rotated-out key in the store: %s until %v, want retired until the rotation's end %v", k.State, k.ExpiresAt, rotationEnd)
				}
				if got := currentKids(t, store, RS256); len(got) != 1 || got[0] != signing {
					t.Errorf("RS256 current in the store: %v, want only %s", got, signing)
				}

				clk.Advance(retireAfter)
				for name, m := range map[string]*Manager{"unaware": unaware, "rotator": rotator} {
					if got := kids(jwks(t, m)); slices.Contains(got, oldRS) {
						t.Errorf("%s instance: JWKS %v still publishes the rotated-out key after its retirement", name, got)
					}
				}
			})
		}
	}
}

// TestConcurrentRestore: instances that all knew the keys refresh at once
// after a flush. None fails; the old keys are retired; once their caches
// expire all sign with the same new key, each old key signs nowhere.
func TestConcurrentRestore(t *testing.T) {
	for name, newKeyStore := range keyStores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := newKeyStore(t)
			clk := newClock()
			ms := make([]*Manager, 4)
			for i := range ms {
				ms[i] = newManager(t, store, WithNow(clk.Now))
				ensure(t, ms[i])
			}
			oldRS, oldES := kidOf(t, ms[0], RS256), kidOf(t, ms[0], ES256)
			flush(t, store)
			clk.Advance(time.Minute)

			var wg sync.WaitGroup
			errs := make([]error, len(ms))
			for i, m := range ms {
				wg.Go(func() { _, _, errs[i] = m.SigningKey(ctx, RS256) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("instance %d: %v", i, err)
				}
			}
			stored := storedKids(t, store)
			for _, kid := range []string{oldRS, oldES} {
				if k, ok := stored[kid]; !ok || k.State != storage.KeyRetired {
					t.Errorf("old key %s in the store: %q, want retired", kid, k.State)
				}
			}
			clk.Advance(time.Minute)
			for _, alg := range algorithms {
				want := kidOf(t, ms[0], alg)
				if want == oldRS || want == oldES {
					t.Errorf("%s: signs with the key from before the flush", alg)
				}
				for i, m := range ms[1:] {
					if got := kidOf(t, m, alg); got != want {
						t.Errorf("%s: instance %d signs with %s, instance 0 with %s", alg, i+1, got, want)
					}
				}
			}
		})
	}
}

// failingCreates is a key store whose CreateKey fails while fail is set.
type failingCreates struct {
	storage.KeyStore
	fail atomic.Bool
}

func (s *failingCreates) CreateKey(ctx context.Context, k storage.SigningKey) error {
	if s.fail.Load() {
		return errors.New("store unavailable for writes")
	}
	return s.KeyStore.CreateKey(ctx, k)
}

// TestRestoreRetriesAfterWriteFailure: when the lost keys cannot be written
// back nor a new one stored, the instance keeps publishing the lost keys (its
// tokens still verify), refuses to sign with them, and the next refresh tries
// again.
func TestRestoreRetriesAfterWriteFailure(t *testing.T) {
	ctx := context.Background()
	store := &failingCreates{KeyStore: newStore(t)}
	clk := newClock()
	m := newManager(t, store, WithNow(clk.Now))
	ensure(t, m)
	oldRS := kidOf(t, m, RS256)
	tok := sign(t, m, nil)

	flush(t, store)
	store.fail.Store(true)
	clk.Advance(time.Minute)
	if kid, _, err := m.SigningKey(ctx, RS256); err == nil {
		t.Errorf("signs with %s while no current key could be stored", kid)
	}
	if _, err := verifyWithJWKS(jwks(t, m), tok); err != nil {
		t.Errorf("a token signed before the flush: %v", err)
	}

	store.fail.Store(false)
	clk.Advance(time.Minute)
	if got := kidOf(t, m, RS256); got == oldRS {
		t.Error("signs with the key from before the flush")
	}
	if k, ok := storedKids(t, store)[oldRS]; !ok || k.State != storage.KeyRetired {
		t.Errorf("the old key after the retry: %q, want written back retired", k.State)
	}
	if _, err := verifyWithJWKS(jwks(t, m), tok); err != nil {
		t.Errorf("a token signed before the flush, after the retry: %v", err)
	}
}

// TestNoSnapshotGenerates: a Manager that never read a key, on an empty
// store, generates (Ensure), as before.
func TestNoSnapshotGenerates(t *testing.T) {
	store := newStore(t)
	m := newManager(t, store)
	if _, _, err := m.SigningKey(context.Background(), RS256); err == nil {
		t.Fatal("SigningKey before Ensure on an empty store: want an error")
	}
	ensure(t, m)
	if n := len(storedKids(t, store)); n != 2 {
		t.Errorf("Ensure on an empty store: %d keys, want 2", n)
	}
}
