package storagetest

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/otpgate/otpgate/storage"
)

// fositeFixture registers a client in s and returns the adapter over s with
// that client's id. Clients resolve through the store, as in the provider.
func fositeFixture(t *testing.T, s storage.Store) (*storage.Fosite, string) {
	t.Helper()
	c := newClient(newID("rp"))
	must(t, s.CreateClient(t.Context(), c))
	clients := func(ctx context.Context, id string) (fosite.Client, error) {
		c, err := s.GetClient(ctx, id)
		if err != nil {
			return nil, err
		}
		return &fosite.DefaultClient{ID: c.ID, RedirectURIs: c.RedirectURIs, GrantTypes: c.GrantTypes,
			ResponseTypes: c.ResponseTypes, Scopes: c.Scopes, Public: c.TokenEndpointAuthMethod == "none"}, nil
	}
	return storage.NewFosite(s, clients, newSession), c.ID
}

func newSession() fosite.Session { return openid.NewDefaultSession() }

// newAuthorizeRequest returns an authorization request with every stored field
// set and a session with ID-token claims; the session carries no expiries.
func newAuthorizeRequest(clientID string) *fosite.AuthorizeRequest {
	ar := fosite.NewAuthorizeRequest()
	ar.ID = newID("req")
	ar.RequestedAt = now().Add(-time.Minute)
	ar.Client = &fosite.DefaultClient{ID: clientID}
	ar.RequestedScope = fosite.Arguments{"openid", "phone", "offline_access"}
	ar.GrantedScope = fosite.Arguments{"openid", "phone"}
	ar.RequestedAudience = fosite.Arguments{"https://api.example"}
	ar.GrantedAudience = fosite.Arguments{"https://api.example"}
	ar.Form = url.Values{
		"client_id":             {clientID},
		"redirect_uri":          {"https://rp.example/callback"},
		"state":                 {"state-123"},
		"code_challenge":        {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
		"code_challenge_method": {"S256"},
		"login_hint":            {"tel:+33612345678"},
	}
	ar.RedirectURI, _ = url.Parse("https://rp.example/callback")
	ar.State = "state-123"
	ar.ResponseTypes = fosite.Arguments{"code"}
	ar.HandledResponseTypes = fosite.Arguments{"code"}
	ar.ResponseMode = fosite.ResponseModeFormPost
	ar.DefaultResponseMode = fosite.ResponseModeQuery

	sess := openid.NewDefaultSession()
	sess.Subject = newID("sub")
	sess.Claims.Subject = sess.Subject
	sess.Claims.AuthenticationMethodsReferences = []string{"sms"}
	sess.Claims.Extra = map[string]any{"phone_number": "+33612345678", "phone_number_verified": true}
	ar.Session = sess
	return ar
}

// requestView is what the adapter must preserve of a request, in comparable form.
type requestView struct {
	ID                   string
	RequestedAt          time.Time
	ClientID             string
	Scopes, Granted      []string
	Audience, GrantedAud []string
	Form                 url.Values
	Subject              string
	Claims               map[string]any
	AMR                  []string
	RedirectURI, State   string
	ResponseTypes        []string
	Handled              []string
	ResponseMode         fosite.ResponseModeType
	DefaultResponseMode  fosite.ResponseModeType
}

func view(r fosite.Requester) requestView {
	v := requestView{
		ID:          r.GetID(),
		RequestedAt: r.GetRequestedAt(),
		ClientID:    r.GetClient().GetID(),
		Scopes:      r.GetRequestedScopes(),
		Granted:     r.GetGrantedScopes(),
		Audience:    r.GetRequestedAudience(),
		GrantedAud:  r.GetGrantedAudience(),
		Form:        r.GetRequestForm(),
	}
	if s, ok := r.GetSession().(openid.Session); ok {
		v.Subject = s.GetSubject()
		v.Claims = s.IDTokenClaims().Extra
		v.AMR = s.IDTokenClaims().AuthenticationMethodsReferences
	}
	if ar, ok := r.(fosite.AuthorizeRequester); ok {
		if u := ar.GetRedirectURI(); u != nil {
			v.RedirectURI = u.String()
		}
		v.State = ar.GetState()
		v.ResponseTypes = ar.GetResponseTypes()
		v.ResponseMode = ar.GetResponseMode()
		v.DefaultResponseMode = ar.GetDefaultResponseMode()
	}
	if ar, ok := r.(*fosite.AuthorizeRequest); ok {
		v.Handled = ar.HandledResponseTypes
	}
	return v
}

// sameRequest fails unless got preserves everything of want.
func sameRequest(t *testing.T, got, want fosite.Requester) {
	t.Helper()
	if got == nil {
		t.Fatal("got no request")
	}
	equal(t, view(got), view(want))
}

func testFosite(t *testing.T, s storage.Store) {
	f, clientID := fositeFixture(t, s)

	t.Run("EndToEnd", func(t *testing.T) {
		t.Parallel()
		testFositeEndToEnd(t, s, f)
	})

	t.Run("AuthorizeCode", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		ar := newAuthorizeRequest(clientID)
		sig := newID("code")
		must(t, f.CreateAuthorizeCodeSession(ctx, sig, ar))

		sess := openid.NewDefaultSession()
		got, err := f.GetAuthorizeCodeSession(ctx, sig, sess)
		must(t, err)
		sameRequest(t, got, ar)
		if _, ok := got.(*fosite.AuthorizeRequest); !ok {
			t.Errorf("got a %T, want a *fosite.AuthorizeRequest", got)
		}
		if got.GetSession() != sess || sess.Subject != ar.Session.GetSubject() {
			t.Error("the session was not decoded into the caller's session")
		}

		must(t, f.InvalidateAuthorizeCodeSession(ctx, sig))
		got, err = f.GetAuthorizeCodeSession(ctx, sig, newSession())
		wantErr(t, err, fosite.ErrInvalidatedAuthorizeCode)
		sameRequest(t, got, ar) // fosite needs the request to revoke what the code issued
		wantErr(t, f.InvalidateAuthorizeCodeSession(ctx, sig), fosite.ErrInvalidatedAuthorizeCode)

		_, err = f.GetAuthorizeCodeSession(ctx, newID("code"), newSession())
		wantErr(t, err, fosite.ErrNotFound)
		wantErr(t, f.InvalidateAuthorizeCodeSession(ctx, newID("code")), fosite.ErrNotFound)
	})

	t.Run("SanitizedAuthorizeCode", func(t *testing.T) {
		t.Parallel()
		// What fosite really stores: a *fosite.Request with a filtered form.
		stored := newAuthorizeRequest(clientID).Sanitize([]string{"redirect_uri"})
		sig := newID("code")
		must(t, f.CreateAuthorizeCodeSession(t.Context(), sig, stored))
		got, err := f.GetAuthorizeCodeSession(t.Context(), sig, newSession())
		must(t, err)
		want := view(stored)
		equal(t, view(got), want)
		if got.GetRequestForm().Get("login_hint") != "" {
			t.Error("a form value the sanitised request dropped came back")
		}
	})

	t.Run("RacingInvalidationOneWins", func(t *testing.T) {
		t.Parallel()
		sig := newID("code")
		must(t, f.CreateAuthorizeCodeSession(t.Context(), sig, newAuthorizeRequest(clientID)))
		exactlyOne(t, 10, func(int) error {
			return f.InvalidateAuthorizeCodeSession(t.Context(), sig)
		}, fosite.ErrInvalidatedAuthorizeCode)
	})

	t.Run("RefreshRotation", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		ar, other := newAuthorizeRequest(clientID), newAuthorizeRequest(clientID)
		used, sibling, otherRefresh := newID("rt"), newID("rt"), newID("rt")
		access, otherAccess := newID("at"), newID("at")
		must(t, f.CreateRefreshTokenSession(ctx, used, access, ar))
		must(t, f.CreateRefreshTokenSession(ctx, sibling, access, ar))
		must(t, f.CreateAccessTokenSession(ctx, access, ar))
		must(t, f.CreateRefreshTokenSession(ctx, otherRefresh, otherAccess, other))
		must(t, f.CreateAccessTokenSession(ctx, otherAccess, other))

		got, err := f.GetRefreshTokenSession(ctx, used, newSession())
		must(t, err)
		sameRequest(t, got, ar)

		must(t, f.RotateRefreshToken(ctx, ar.ID, used))
		for _, sig := range []string{used, sibling} {
			got, err := f.GetRefreshTokenSession(ctx, sig, newSession())
			wantErr(t, err, fosite.ErrInactiveToken)
			sameRequest(t, got, ar) // fosite needs it to revoke the grant on reuse
		}
		_, err = f.GetAccessTokenSession(ctx, access, newSession())
		wantErr(t, err, fosite.ErrNotFound)

		// Reuse of the rotated token: refused.
		if err := f.RotateRefreshToken(ctx, ar.ID, used); !errors.Is(err, fosite.ErrSerializationFailure) && !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("second rotation of one token: got %v, want ErrSerializationFailure or ErrInactiveToken", err)
		}
		wantErr(t, f.RotateRefreshToken(ctx, ar.ID, newID("rt")), fosite.ErrNotFound)

		// Another grant is untouched.
		_, err = f.GetRefreshTokenSession(ctx, otherRefresh, newSession())
		must(t, err)
		_, err = f.GetAccessTokenSession(ctx, otherAccess, newSession())
		must(t, err)
	})

	t.Run("RacingRotationOneWins", func(t *testing.T) {
		t.Parallel()
		ar := newAuthorizeRequest(clientID)
		sig := newID("rt")
		must(t, f.CreateRefreshTokenSession(t.Context(), sig, newID("at"), ar))
		exactlyOne(t, 10, func(int) error {
			return f.RotateRefreshToken(t.Context(), ar.ID, sig)
		}, nil)
	})

	t.Run("Revoke", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		ar, other := newAuthorizeRequest(clientID), newAuthorizeRequest(clientID)
		refresh, access := newID("rt"), newID("at")
		otherRefresh, otherAccess := newID("rt"), newID("at")
		must(t, f.CreateRefreshTokenSession(ctx, refresh, access, ar))
		must(t, f.CreateAccessTokenSession(ctx, access, ar))
		must(t, f.CreateRefreshTokenSession(ctx, otherRefresh, otherAccess, other))
		must(t, f.CreateAccessTokenSession(ctx, otherAccess, other))

		must(t, f.RevokeRefreshToken(ctx, ar.ID))
		must(t, f.RevokeAccessToken(ctx, ar.ID))
		got, err := f.GetRefreshTokenSession(ctx, refresh, nil)
		wantErr(t, err, fosite.ErrInactiveToken)
		sameRequest(t, got, ar)
		_, err = f.GetAccessTokenSession(ctx, access, nil)
		wantErr(t, err, fosite.ErrNotFound)

		_, err = f.GetRefreshTokenSession(ctx, otherRefresh, nil)
		must(t, err)
		_, err = f.GetAccessTokenSession(ctx, otherAccess, nil)
		must(t, err)

		must(t, f.RevokeRefreshToken(ctx, newID("req")))
		must(t, f.RevokeAccessToken(ctx, newID("req")))
	})

	// Records read by signature and deleted without an active state.
	for _, c := range []struct {
		name   string
		create func(ctx context.Context, sig string, r fosite.Requester) error
		get    func(ctx context.Context, sig string, s fosite.Session) (fosite.Requester, error)
		delete func(ctx context.Context, sig string) error
	}{
		{"AccessToken", f.CreateAccessTokenSession, f.GetAccessTokenSession, f.DeleteAccessTokenSession},
		{"RefreshToken", func(ctx context.Context, sig string, r fosite.Requester) error {
			return f.CreateRefreshTokenSession(ctx, sig, newID("at"), r)
		}, f.GetRefreshTokenSession, f.DeleteRefreshTokenSession},
		{"PKCE", f.CreatePKCERequestSession, f.GetPKCERequestSession, f.DeletePKCERequestSession},
		{"OpenID", f.CreateOpenIDConnectSession, func(ctx context.Context, code string, s fosite.Session) (fosite.Requester, error) {
			return f.GetOpenIDConnectSession(ctx, code, &fosite.Request{Session: s})
		}, f.DeleteOpenIDConnectSession},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			stored := newAuthorizeRequest(clientID).Sanitize([]string{"code_challenge", "code_challenge_method", "nonce"})
			sig := newID("sig")
			must(t, c.create(ctx, sig, stored))

			got, err := c.get(ctx, sig, newSession())
			must(t, err)
			sameRequest(t, got, stored)
			got, err = c.get(ctx, sig, nil) // revocation passes no session
			must(t, err)
			sameRequest(t, got, stored)

			must(t, c.delete(ctx, sig))
			_, err = c.get(ctx, sig, newSession())
			wantErr(t, err, fosite.ErrNotFound) // openid.ErrNoSessionFound is fosite.ErrNotFound
			must(t, c.delete(ctx, sig))         // deleting a missing record is not an error
		})
	}

	t.Run("OpenIDCodeNotStoredInClear", func(t *testing.T) {
		t.Parallel()
		code := newID("code")
		must(t, f.CreateOpenIDConnectSession(t.Context(), code, newAuthorizeRequest(clientID)))
		_, err := s.GetToken(t.Context(), storage.KindOpenID, code)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("PAR", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		ar := newAuthorizeRequest(clientID)
		uri := "urn:ietf:params:oauth:request_uri:" + newID("par")
		must(t, f.CreatePARSession(ctx, uri, ar))

		got, err := f.GetPARSession(ctx, uri)
		must(t, err)
		sameRequest(t, got, ar)
		_, err = f.GetPARSession(ctx, uri)
		wantErr(t, err, fosite.ErrNotFound) // a request_uri is single use

		must(t, f.DeletePARSession(ctx, uri))
		_, err = f.GetPARSession(ctx, uri)
		wantErr(t, err, fosite.ErrNotFound)
		must(t, f.DeletePARSession(ctx, uri))
	})

	t.Run("RacingPAROneWins", func(t *testing.T) {
		t.Parallel()
		uri := "urn:ietf:params:oauth:request_uri:" + newID("par")
		must(t, f.CreatePARSession(t.Context(), uri, newAuthorizeRequest(clientID)))
		exactlyOne(t, 10, func(int) error {
			_, err := f.GetPARSession(t.Context(), uri)
			return err
		}, fosite.ErrNotFound)
	})

	t.Run("Clients", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		c, err := f.GetClient(ctx, clientID)
		must(t, err)
		if c.GetID() != clientID {
			t.Fatalf("GetClient(%s) returned client %s", clientID, c.GetID())
		}
		_, err = f.GetClient(ctx, newID("rp"))
		wantErr(t, err, fosite.ErrNotFound)

		// Tokens of a deleted client stop working.
		gone := newClient(newID("rp"))
		must(t, s.CreateClient(ctx, gone))
		sig := newID("at")
		must(t, f.CreateAccessTokenSession(ctx, sig, newAuthorizeRequest(gone.ID)))
		must(t, s.DeleteClient(ctx, gone.ID))
		_, err = f.GetAccessTokenSession(ctx, sig, newSession())
		wantErr(t, err, fosite.ErrNotFound)
	})

	t.Run("ClientAssertionJTI", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		jti := newID("jti")
		must(t, f.ClientAssertionJWTValid(ctx, jti))
		must(t, f.SetClientAssertionJWT(ctx, jti, time.Now().Add(time.Minute)))
		wantErr(t, f.ClientAssertionJWTValid(ctx, jti), fosite.ErrJTIKnown)
		wantErr(t, f.SetClientAssertionJWT(ctx, jti, time.Now().Add(time.Minute)), fosite.ErrJTIKnown)
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			kind      storage.TokenKind
			tokenType fosite.TokenType
			fallback  time.Duration
			create    func(ctx context.Context, sig string, r fosite.AuthorizeRequester) error
		}{
			{storage.KindAuthorizeCode, fosite.AuthorizeCode, time.Hour, func(ctx context.Context, sig string, r fosite.AuthorizeRequester) error {
				return f.CreateAuthorizeCodeSession(ctx, sig, r)
			}},
			{storage.KindPKCE, fosite.AuthorizeCode, time.Hour, func(ctx context.Context, sig string, r fosite.AuthorizeRequester) error {
				return f.CreatePKCERequestSession(ctx, sig, r)
			}},
			{storage.KindAccessToken, fosite.AccessToken, time.Hour, func(ctx context.Context, sig string, r fosite.AuthorizeRequester) error {
				return f.CreateAccessTokenSession(ctx, sig, r)
			}},
			{storage.KindRefreshToken, fosite.RefreshToken, 30 * 24 * time.Hour, func(ctx context.Context, sig string, r fosite.AuthorizeRequester) error {
				return f.CreateRefreshTokenSession(ctx, sig, newID("at"), r)
			}},
			{storage.KindPAR, fosite.PushedAuthorizeRequestContext, 10 * time.Minute, f.CreatePARSession},
		} {
			ctx := t.Context()
			// From the session…
			ar := newAuthorizeRequest(clientID)
			exp := now().Add(42 * time.Minute)
			ar.Session.SetExpiresAt(c.tokenType, exp)
			sig := newID("sig")
			must(t, c.create(ctx, sig, ar))
			tok, err := s.GetToken(ctx, c.kind, sig)
			must(t, err)
			if !tok.ExpiresAt.Equal(exp) || tok.RequestID != ar.ID || !tok.Active {
				t.Errorf("%s: stored expiry %v request %q active %v, want %v %q true", c.kind, tok.ExpiresAt, tok.RequestID, tok.Active, exp, ar.ID)
			}
			// …or the fallback when the session has none.
			sig = newID("sig")
			before := time.Now()
			must(t, c.create(ctx, sig, newAuthorizeRequest(clientID)))
			tok, err = s.GetToken(ctx, c.kind, sig)
			must(t, err)
			if tok.ExpiresAt.Before(before.Add(c.fallback-time.Second)) || tok.ExpiresAt.After(time.Now().Add(c.fallback+time.Second)) {
				t.Errorf("%s without a session expiry: expires at %v, want about now+%v", c.kind, tok.ExpiresAt, c.fallback)
			}
		}
	})

	t.Run("ExpiredNotFound", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		ar := newAuthorizeRequest(clientID)
		exp := now().Add(ttl)
		ar.Session.SetExpiresAt(fosite.AccessToken, exp)
		sig := newID("at")
		must(t, f.CreateAccessTokenSession(ctx, sig, ar))
		_, err := f.GetAccessTokenSession(ctx, sig, newSession())
		must(t, err)
		sleepUntil(exp.Add(ttlSlack))
		_, err = f.GetAccessTokenSession(ctx, sig, newSession())
		wantErr(t, err, fosite.ErrNotFound)
	})
}

// exactlyOne runs attempt in n racing goroutines and fails unless exactly one
// returns nil; when loser is not nil, every other error must match it.
func exactlyOne(t *testing.T, n int, attempt func(i int) error, loser error) {
	t.Helper()
	errs := make([]error, n)
	race(n, func(i int) { errs[i] = attempt(i) })
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case loser != nil && !errors.Is(err, loser):
			t.Errorf("a losing attempt failed with %v, want %v", err, loser)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d racing attempts succeeded, want exactly 1", wins, n)
	}
}
