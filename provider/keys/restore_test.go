package keys

import (
	"context"
	"log/slog"
	"slices"
	"strings"
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

const restoreWarning = "signing keys missing from the store (Redis restarted without persistence?); restored "

// TestRestoreAfterFlush signs, loses every key from the store, and signs
// again once the cache expires: the same kids sign, the JWKS still publishes
// them (the retired one too), the store holds the same records again, and the
// restore is logged once.
func TestRestoreAfterFlush(t *testing.T) {
	for name, newKeyStore := range keyStores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := newKeyStore(t)
			clk := newClock()
			var log logBuffer
			m := newManager(t, store, WithNow(clk.Now), WithLogger(log.logger()))
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

			for _, tok := range []string{sign(t, m, nil), tokRS} {
				if h, err := verifyWithJWKS(jwks(t, m), tok); err != nil || h.KeyID != rsKid {
					t.Errorf("RS256 after the flush: kid %q, %v; want %s", h.KeyID, err, rsKid)
				}
			}
			if h, err := verifyWithJWKS(jwks(t, m), sign(t, m, map[string]any{"kid": esKid})); err != nil || h.KeyID != esKid {
				t.Errorf("ES256 after the flush: kid %q, %v; want %s", h.KeyID, err, esKid)
			}
			if _, err := verifyWithJWKS(jwks(t, m), tokES); err != nil {
				t.Errorf("a token signed before the flush: %v", err)
			}
			if got := kids(jwks(t, m)); len(got) != 3 || !slices.Contains(got, retiredKid) {
				t.Errorf("JWKS after the flush: %v, want the 2 current keys and the retired %s", got, retiredKid)
			}
			after := storedKids(t, store)
			if len(after) != len(before) {
				t.Errorf("store after the restore: %d keys, want %d", len(after), len(before))
			}
			for kid, want := range before {
				got, ok := after[kid]
				if !ok || got.State != want.State || got.Algorithm != want.Algorithm || !got.ExpiresAt.Equal(want.ExpiresAt) ||
					!got.CreatedAt.Equal(want.CreatedAt) || string(got.Encrypted) != string(want.Encrypted) {
					t.Errorf("key %s: restored as %+v, want %+v", kid, got, want)
				}
			}

			// The other instance finds them in the store: same kids, nothing to restore.
			clk.Advance(time.Minute)
			if got := kidOf(t, other, RS256); got != rsKid {
				t.Errorf("other instance signs with %s, want %s", got, rsKid)
			}
			if n := strings.Count(log.String(), restoreWarning); n != 1 || !strings.Contains(log.String(), restoreWarning+"3 from this instance") {
				t.Errorf("restore warnings: %d, want one saying 3 keys:\n%s", n, log.String())
			}

			// Ensure after a flush restores too, and never generates.
			flush(t, store)
			ensure(t, m)
			if got := storedKids(t, store); len(got) != len(before) {
				t.Errorf("Ensure after a flush left %d keys, want the %d restored", len(got), len(before))
			}
			if kidOf(t, m, RS256) != rsKid || kidOf(t, m, ES256) != esKid {
				t.Error("Ensure after a flush replaced the keys")
			}
		})
	}
}

// TestRestoreBesideRegeneratedKeys: after the flush, an instance that knew
// nothing (a fresh start) generates new keys before this one notices. This
// one still writes its keys back, so that tokens it signed keep verifying;
// the newest key signs everywhere, as when instances race in Ensure.
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
		t.Errorf("signs with %s, want the newest, %s", got, newRS)
	}
	clk.Advance(time.Minute)
	if _, err := verifyWithJWKS(jwks(t, fresh), tok); err != nil {
		t.Errorf("token from before the flush, on the fresh instance: %v", err)
	}
	if _, ok := storedKids(t, store)[oldRS]; !ok {
		t.Error("the old key was not written back")
	}
	// A rotation then retires both current keys.
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
