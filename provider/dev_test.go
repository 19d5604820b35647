package provider_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/storage"
)

// withDev turns on the development routes (/dev/outbox.json, /dev/demo).
func withDev() envOption {
	return withOptions(func(o *provider.Options) { o.Dev = true })
}

// The bench asks the outbox for the newest SMS to one number at every login:
// the answer is that message even when it is far down a full outbox, and the
// plain ?to= search still lists every message to the number.
func TestOutboxJSONFindsTheNewestMessageToANumber(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, withDev())
		ctx := t.Context()
		const target = "+33611111111"
		t0 := time.Now().UTC().Truncate(time.Second)
		// Oldest first: two messages to target, then 1,500 to other numbers,
		// so the newest to target lies beyond the first two windows.
		add := func(i int, to, body string) {
			m := storage.OutboxMessage{ID: fmt.Sprint("m", i), To: to, Body: body, SentAt: t0.Add(time.Duration(i) * time.Millisecond)}
			if err := e.Store.AppendOutbox(ctx, m, 10000); err != nil {
				t.Fatal(err)
			}
		}
		add(0, target, "old #111111")
		add(1, target, "new #222222")
		for i := 2; i < 1502; i++ {
			add(i, fmt.Sprintf("+3361%07d", i), "other")
		}

		get := func(query string) []struct{ To, Body string } {
			t.Helper()
			resp, err := http.Get(e.Issuer + "/dev/outbox.json?" + query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: status %d", query, resp.StatusCode)
			}
			var out []struct{ To, Body string }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
			return out
		}
		if got := get("to=%2B33611111111&newest=1"); len(got) != 1 || got[0].Body != "new #222222" {
			t.Errorf("newest to the number: %+v, want only the newer message", got)
		}
		if got := get("to=%2B33611111111"); len(got) != 2 || got[0].Body != "new #222222" || got[1].Body != "old #111111" {
			t.Errorf("every message to the number: %+v, want both, newest first", got)
		}
		if got := get("to=%2B33699999999&newest=1"); len(got) != 0 {
			t.Errorf("a number never texted: %+v, want none", got)
		}
		if got := get(""); len(got) != 50 {
			t.Errorf("the newest page: %d messages, want 50", len(got))
		}
	})
}
