package keys

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

func TestList(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	store := newStore(t)
	m := newManager(t, store, WithNow(clk.Now))
	ensure(t, m)
	oldRS := kidOf(t, m, RS256)
	es := kidOf(t, m, ES256)

	clk.Advance(time.Minute)
	newRS, err := m.Rotate(ctx, RS256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	list, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byKid := map[string]Info{}
	for _, k := range list {
		byKid[k.ID] = k
	}
	if len(list) != 3 || list[0].ID != newRS {
		t.Fatalf("List = %+v, want 3 keys, the new RS256 key %s first", list, newRS)
	}
	if k := byKid[newRS]; k.State != storage.KeyCurrent || !k.Signing || k.Algorithm != RS256 || !k.ExpiresAt.IsZero() {
		t.Errorf("new key: %+v, want current, signing, RS256, no expiry", k)
	}
	if k := byKid[oldRS]; k.State != storage.KeyRetired || k.Signing || !k.ExpiresAt.Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("old key: %+v, want retired, not signing, expiring in 1h", k)
	}
	if k := byKid[es]; !k.Signing || k.Algorithm != ES256 {
		t.Errorf("ES256 key: %+v, want the signing ES256 key", k)
	}

	// No private material, whatever the encoding.
	raw, _ := json.Marshal(list)
	for _, field := range []string{`"d"`, "encrypted", "PRIVATE"} {
		if strings.Contains(string(raw), field) {
			t.Errorf("List JSON contains %s: %s", field, raw)
		}
	}

	// Past its expiry the retired key is gone, as from the JWKS.
	clk.Advance(time.Hour)
	list, err = m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range list {
		if k.ID == oldRS {
			t.Errorf("List still shows the expired key %s", oldRS)
		}
	}
}
