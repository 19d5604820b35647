package storagetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// newClient returns a client with every field set, so a lost field shows.
func newClient(id string) storage.Client {
	created := now().Add(-time.Hour)
	return storage.Client{
		ID:                       id,
		SecretHash:               codeHash("secret-" + id),
		Name:                     "Relying party " + id,
		RedirectURIs:             []string{"https://rp.example/callback"},
		PostLogoutRedirectURIs:   []string{"https://rp.example/"},
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		ResponseTypes:            []string{"code"},
		Scopes:                   []string{"openid", "phone", "offline_access"},
		TokenEndpointAuthMethod:  "client_secret_basic",
		IDTokenSignedResponseAlg: "RS256",
		LogoURI:                  "https://rp.example/logo.png",
		SkipConsent:              true,
		Static:                   true,
		CreatedAt:                created,
		UpdatedAt:                created,
	}
}

func testClients(t *testing.T, s storage.Store) {
	t.Run("CRUD", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		c := newClient(newID("client"))
		must(t, s.CreateClient(ctx, c))
		wantErr(t, s.CreateClient(ctx, c), storage.ErrAlreadyExists)

		got, err := s.GetClient(ctx, c.ID)
		must(t, err)
		equal(t, got, c)

		must(t, s.DeleteClient(ctx, c.ID))
		_, err = s.GetClient(ctx, c.ID)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("GetMissing", func(t *testing.T) {
		t.Parallel()
		_, err := s.GetClient(t.Context(), newID("client"))
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("ListPages", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		// Ids share a random prefix: other tests' clients sort outside it.
		prefix := newID("list") + "-"
		var want []string
		created := map[string]storage.Client{}
		for i := range 5 {
			c := newClient(fmt.Sprintf("%s%02d", prefix, i))
			want = append(want, c.ID)
			created[c.ID] = c
		}
		for _, i := range []int{3, 0, 4, 1, 2} { // creation order must not matter
			must(t, s.CreateClient(ctx, created[want[i]]))
		}

		pages := []struct {
			after string
			want  []string
		}{
			{prefix, want[0:2]},
			{want[1], want[2:4]},
			{want[3], want[4:]},
		}
		for _, p := range pages {
			cs, err := s.ListClients(ctx, p.after, 2)
			must(t, err)
			if len(cs) > 2 {
				t.Fatalf("ListClients(limit 2) returned %d clients", len(cs))
			}
			var got []string
			for _, c := range cs {
				if strings.HasPrefix(c.ID, prefix) {
					got = append(got, c.ID)
				}
			}
			if strings.Join(got, ",") != strings.Join(p.want, ",") {
				t.Fatalf("ListClients(after %q, 2) = %v, want %v", p.after, clientIDs(cs), p.want)
			}
		}
		cs, err := s.ListClients(ctx, want[1], 1)
		must(t, err)
		if len(cs) != 1 {
			t.Fatalf("ListClients(limit 1) returned %d clients", len(cs))
		}
		equal(t, cs[0], created[want[2]]) // listed clients are whole
		if cs, err := s.ListClients(ctx, "", 0); err != nil || len(cs) != 0 {
			t.Fatalf("ListClients(limit 0) = %d clients, %v; want none", len(cs), err)
		}

	})

	t.Run("UpdateKeepsID", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		c := newClient(newID("client"))
		must(t, s.CreateClient(ctx, c))
		other := newID("client")
		// Either refused or applied with the id kept: never a renamed client.
		_, _ = s.UpdateClient(ctx, c.ID, func(c storage.Client) (storage.Client, error) {
			c.ID = other
			return c, nil
		})
		_, err := s.GetClient(ctx, c.ID)
		must(t, err)
		_, err = s.GetClient(ctx, other)
		wantErr(t, err, storage.ErrNotFound)
	})

	testCAS(t, "client", casRecord[storage.Client]{
		create: func(ctx context.Context, id string) error {
			c := newClient(id)
			c.RedirectURIs = nil
			return s.CreateClient(ctx, c)
		},
		get:    s.GetClient,
		update: s.UpdateClient,
		change: func(c storage.Client, i int) storage.Client {
			c.RedirectURIs = append(c.RedirectURIs, changeName(i))
			return c
		},
		count: func(c storage.Client) int { return len(c.RedirectURIs) },
	})
}

func clientIDs(cs []storage.Client) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}
