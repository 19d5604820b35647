package storagetest

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

func newToken(kind storage.TokenKind, requestID string) storage.Token {
	return storage.Token{
		Kind:      kind,
		Signature: newID("sig"),
		RequestID: requestID,
		Active:    true,
		Request:   []byte(`{"id":"` + requestID + `"}`),
		ExpiresAt: now().Add(time.Hour),
	}
}

// activeState reads a token and reports whether it is present and active.
func activeState(t *testing.T, s storage.Store, tok storage.Token) (found, active bool) {
	t.Helper()
	got, err := s.GetToken(t.Context(), tok.Kind, tok.Signature)
	if err != nil {
		wantErr(t, err, storage.ErrNotFound)
		return false, false
	}
	return true, got.Active
}

func testTokens(t *testing.T, s storage.Store) {
	t.Run("CreateGetDelete", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tok := newToken(storage.KindAccessToken, newID("req"))
		must(t, s.CreateToken(ctx, tok))
		wantErr(t, s.CreateToken(ctx, tok), storage.ErrAlreadyExists)

		got, err := s.GetToken(ctx, tok.Kind, tok.Signature)
		must(t, err)
		equal(t, got, tok)

		must(t, s.DeleteToken(ctx, tok.Kind, tok.Signature))
		_, err = s.GetToken(ctx, tok.Kind, tok.Signature)
		wantErr(t, err, storage.ErrNotFound)
		wantErr(t, s.DeleteToken(ctx, tok.Kind, tok.Signature), storage.ErrNotFound)
	})

	t.Run("KindsAreNamespaces", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		code := newToken(storage.KindAuthorizeCode, newID("req"))
		pkce := code
		pkce.Kind = storage.KindPKCE
		pkce.Request = []byte(`{"pkce":true}`)
		must(t, s.CreateToken(ctx, code))
		must(t, s.CreateToken(ctx, pkce))
		got, err := s.GetToken(ctx, storage.KindPKCE, code.Signature)
		must(t, err)
		equal(t, got, pkce)
		_, err = s.GetToken(ctx, storage.KindAccessToken, code.Signature)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("Deactivate", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tok := newToken(storage.KindRefreshToken, newID("req"))
		must(t, s.CreateToken(ctx, tok))
		must(t, s.DeactivateToken(ctx, tok.Kind, tok.Signature))

		got, err := s.GetToken(ctx, tok.Kind, tok.Signature)
		must(t, err)
		want := tok
		want.Active = false
		equal(t, got, want) // kept, with its request, so reuse can be detected

		wantErr(t, s.DeactivateToken(ctx, tok.Kind, tok.Signature), storage.ErrConflict)
		wantErr(t, s.DeactivateToken(ctx, tok.Kind, newID("sig")), storage.ErrNotFound)
	})

	t.Run("ByRequest", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		req, other := newID("req"), newID("req")
		refresh1 := newToken(storage.KindRefreshToken, req)
		refresh2 := newToken(storage.KindRefreshToken, req)
		refreshOther := newToken(storage.KindRefreshToken, other)
		access1 := newToken(storage.KindAccessToken, req)
		access2 := newToken(storage.KindAccessToken, req)
		accessOther := newToken(storage.KindAccessToken, other)
		for _, tok := range []storage.Token{refresh1, refresh2, refreshOther, access1, access2, accessOther} {
			must(t, s.CreateToken(ctx, tok))
		}
		// An already inactive or deleted member must not break the batch calls.
		must(t, s.DeactivateToken(ctx, refresh1.Kind, refresh1.Signature))
		must(t, s.DeleteToken(ctx, access1.Kind, access1.Signature))

		must(t, s.DeactivateTokensByRequest(ctx, storage.KindRefreshToken, req))
		must(t, s.DeleteTokensByRequest(ctx, storage.KindAccessToken, req))
		// Nothing to do is not an error.
		must(t, s.DeactivateTokensByRequest(ctx, storage.KindRefreshToken, newID("req")))
		must(t, s.DeleteTokensByRequest(ctx, storage.KindAccessToken, newID("req")))

		for _, c := range []struct {
			name          string
			tok           storage.Token
			found, active bool
		}{
			{"refresh of the request", refresh2, true, false},
			{"refresh of another request", refreshOther, true, true},
			{"access of the request", access2, false, false},
			{"access of another request", accessOther, true, true},
		} {
			found, active := activeState(t, s, c.tok)
			if found != c.found || active != c.active {
				t.Errorf("%s: found %v active %v, want found %v active %v", c.name, found, active, c.found, c.active)
			}
		}

		// Deactivating by request does not touch another kind of the same request.
		code := newToken(storage.KindAuthorizeCode, req)
		must(t, s.CreateToken(ctx, code))
		must(t, s.DeactivateTokensByRequest(ctx, storage.KindRefreshToken, req))
		must(t, s.DeleteTokensByRequest(ctx, storage.KindAccessToken, req))
		if found, active := activeState(t, s, code); !found || !active {
			t.Errorf("code of the request: found %v active %v, want an active code", found, active)
		}
	})
}
