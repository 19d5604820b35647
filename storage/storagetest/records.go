package storagetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

func newBrowserSession() storage.BrowserSession {
	return storage.BrowserSession{
		ID:        newID("session"),
		Subject:   newID("sub"),
		Phone:     "+33612345678",
		AuthTime:  now(),
		AMR:       []string{"sms"},
		ExpiresAt: now().Add(time.Hour),
	}
}

func newConsent() storage.Consent {
	return storage.Consent{
		Subject:   newID("sub"),
		ClientID:  newID("rp"),
		Scopes:    []string{"openid", "phone"},
		GrantedAt: now(),
		ExpiresAt: now().Add(time.Hour),
	}
}

func newKey(id string, created time.Time) storage.SigningKey {
	return storage.SigningKey{
		ID:        id,
		Algorithm: "RS256",
		State:     storage.KeyCurrent,
		Encrypted: []byte("sealed-" + id),
		Public:    []byte(`{"kty":"RSA","kid":"` + id + `"}`),
		CreatedAt: created,
	}
}

func testSessions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	b := newBrowserSession()
	must(t, s.CreateBrowserSession(ctx, b))
	got, err := s.GetBrowserSession(ctx, b.ID)
	must(t, err)
	equal(t, got, b)

	must(t, s.DeleteBrowserSession(ctx, b.ID))
	_, err = s.GetBrowserSession(ctx, b.ID)
	wantErr(t, err, storage.ErrNotFound)
}

func testConsent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := newConsent()
	must(t, s.SaveConsent(ctx, c))
	got, err := s.GetConsent(ctx, c.Subject, c.ClientID)
	must(t, err)
	equal(t, got, c)

	// One grant per (subject, client): saving again replaces it.
	c.Scopes = []string{"openid", "phone", "offline_access"}
	c.GrantedAt = c.GrantedAt.Add(time.Minute)
	must(t, s.SaveConsent(ctx, c))
	got, err = s.GetConsent(ctx, c.Subject, c.ClientID)
	must(t, err)
	equal(t, got, c)

	// Same subject, another client: a separate grant.
	_, err = s.GetConsent(ctx, c.Subject, newID("rp"))
	wantErr(t, err, storage.ErrNotFound)
	other := c
	other.ClientID = newID("rp")
	must(t, s.SaveConsent(ctx, other))

	must(t, s.DeleteConsent(ctx, c.Subject, c.ClientID))
	_, err = s.GetConsent(ctx, c.Subject, c.ClientID)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetConsent(ctx, other.Subject, other.ClientID)
	must(t, err)
}

// myKeys lists the store's keys that carry prefix (other tests add keys too).
func myKeys(t *testing.T, s storage.Store, prefix string) []storage.SigningKey {
	t.Helper()
	all, err := s.ListKeys(t.Context())
	must(t, err)
	var mine []storage.SigningKey
	for _, k := range all {
		if strings.HasPrefix(k.ID, prefix) {
			mine = append(mine, k)
		}
	}
	return mine
}

func testKeys(t *testing.T, s storage.Store) {
	t.Run("ListNewestFirst", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		prefix := newID("kid")
		t0 := now().Add(-time.Hour)
		var want []storage.SigningKey
		for i := 2; i >= 0; i-- { // newest first; created in another order below
			want = append(want, newKey(fmt.Sprintf("%s-%d", prefix, i), t0.Add(time.Duration(i)*time.Minute)))
		}
		for _, i := range []int{1, 2, 0} {
			must(t, s.CreateKey(ctx, want[i]))
		}
		wantErr(t, s.CreateKey(ctx, want[0]), storage.ErrAlreadyExists)
		// A zero ExpiresAt means "until deleted", not "already expired".
		equal(t, myKeys(t, s, prefix), want)

		retire := now().Add(time.Hour)
		got, err := s.UpdateKey(ctx, want[1].ID, func(k storage.SigningKey) (storage.SigningKey, error) {
			k.State = storage.KeyRetired
			k.ExpiresAt = retire
			return k, nil
		})
		must(t, err)
		want[1].State, want[1].ExpiresAt = storage.KeyRetired, retire
		equal(t, got, want[1])
		equal(t, myKeys(t, s, prefix), want)

		must(t, s.DeleteKey(ctx, want[0].ID))
		equal(t, myKeys(t, s, prefix), want[1:])
	})

	testCAS(t, "kid", casRecord[storage.SigningKey]{
		create: func(ctx context.Context, id string) error {
			k := newKey(id, now())
			k.Public = nil
			return s.CreateKey(ctx, k)
		},
		get: func(ctx context.Context, id string) (storage.SigningKey, error) {
			keys, err := s.ListKeys(ctx)
			if err != nil {
				return storage.SigningKey{}, err
			}
			for _, k := range keys {
				if k.ID == id {
					return k, nil
				}
			}
			return storage.SigningKey{}, fmt.Errorf("key %s not listed: %w", id, storage.ErrNotFound)
		},
		update: s.UpdateKey,
		change: func(k storage.SigningKey, i int) storage.SigningKey {
			k.Public = append(k.Public, byte(i))
			return k
		},
		count: func(k storage.SigningKey) int { return len(k.Public) },
	})
}

func testOutbox(t *testing.T, s storage.Store) {
	// The outbox is one list per store, so this group runs its steps in order
	// and owns the list: it checks only the newest messages, which are its own.
	ctx := t.Context()
	const max = 3
	var sent []storage.OutboxMessage
	for i := range 5 {
		m := storage.OutboxMessage{
			ID:       newID("sms"),
			To:       "+3361234567" + fmt.Sprint(i),
			Body:     fmt.Sprintf("Your code is %06d", i),
			Locale:   "fr",
			ClientID: newID("rp"),
			SentAt:   now().Add(time.Duration(i) * time.Millisecond),
		}
		must(t, s.AppendOutbox(ctx, m, max))
		sent = append(sent, m)
	}
	newestFirst := []storage.OutboxMessage{sent[4], sent[3], sent[2]}

	got, err := s.ListOutbox(ctx, 10)
	must(t, err)
	equal(t, got, newestFirst) // bounded to max

	got, err = s.ListOutbox(ctx, 2)
	must(t, err)
	equal(t, got, newestFirst[:2])

	got, err = s.ListOutbox(ctx, 0)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("ListOutbox(0) returned %d messages, want none", len(got))
	}
}
