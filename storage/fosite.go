package storage

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"golang.org/x/text/language"
)

// Compile-time checks: a missing method would otherwise only show when fosite
// type-asserts the store at start-up or, worse, in the middle of a request.
var (
	_ oauth2.CoreStorage                 = (*Fosite)(nil)
	_ oauth2.TokenRevocationStorage      = (*Fosite)(nil)
	_ pkce.PKCERequestStorage            = (*Fosite)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Fosite)(nil)
	_ fosite.PARStorage                  = (*Fosite)(nil)
	_ fosite.ClientManager               = (*Fosite)(nil)
)

// Lifetimes used when the session carries no expiry for the token type (for
// example a refresh token whose lifespan is configured as unlimited): every
// record still gets a TTL.
const (
	fallbackCodeTTL    = time.Hour
	fallbackAccessTTL  = time.Hour
	fallbackRefreshTTL = 30 * 24 * time.Hour
	fallbackPARTTL     = 10 * time.Minute
)

// Fosite implements fosite's storage interfaces on top of a Store's TokenStore.
// Requests are serialised into an explicit wire format (never the interface-typed
// fosite structs); on read the client is resolved again and the session is
// decoded into the value the caller passes in, so the provider's session type
// must round-trip through encoding/json.
type Fosite struct {
	store      Store
	clients    func(ctx context.Context, id string) (fosite.Client, error)
	newSession func() fosite.Session
	now        func() time.Time
}

// NewFosite returns the fosite storage adapter over s. clients resolves a client
// id to the fosite client (it is called on every read, so a deleted client makes
// its tokens unusable); newSession makes an empty session of the provider's type
// for reads where fosite supplies none (PAR, revocation). Neither may be nil.
func NewFosite(s Store, clients func(ctx context.Context, id string) (fosite.Client, error), newSession func() fosite.Session) *Fosite {
	if s == nil || clients == nil || newSession == nil {
		panic("storage: NewFosite needs a store, a client resolver and a session constructor")
	}
	return &Fosite{store: s, clients: clients, newSession: newSession, now: time.Now}
}

// ---------------------------------------------------------------------------
// Wire format

// wireRequest is what the adapter stores for a fosite.Requester.
type wireRequest struct {
	ID                string          `json:"id"`
	RequestedAt       time.Time       `json:"requested_at"`
	ClientID          string          `json:"client_id"`
	RequestedScopes   []string        `json:"requested_scopes,omitempty"`
	GrantedScopes     []string        `json:"granted_scopes,omitempty"`
	RequestedAudience []string        `json:"requested_audience,omitempty"`
	GrantedAudience   []string        `json:"granted_audience,omitempty"`
	Form              url.Values      `json:"form,omitempty"`
	Lang              string          `json:"lang,omitempty"`
	Session           json.RawMessage `json:"session,omitempty"`
	Authorize         *wireAuthorize  `json:"authorize,omitempty"` // set when the request was a fosite.AuthorizeRequester
}

// wireAuthorize holds the fields only an authorization request has.
type wireAuthorize struct {
	ResponseTypes        []string `json:"response_types,omitempty"`
	RedirectURI          string   `json:"redirect_uri,omitempty"`
	State                string   `json:"state,omitempty"`
	ResponseMode         string   `json:"response_mode,omitempty"`
	DefaultResponseMode  string   `json:"default_response_mode,omitempty"`
	HandledResponseTypes []string `json:"handled_response_types,omitempty"`
}

func encodeRequest(r fosite.Requester) ([]byte, error) {
	session, err := json.Marshal(r.GetSession())
	if err != nil {
		return nil, fmt.Errorf("encode session: %w", err)
	}
	w := wireRequest{
		ID:                r.GetID(),
		RequestedAt:       r.GetRequestedAt(),
		RequestedScopes:   r.GetRequestedScopes(),
		GrantedScopes:     r.GetGrantedScopes(),
		RequestedAudience: r.GetRequestedAudience(),
		GrantedAudience:   r.GetGrantedAudience(),
		Form:              r.GetRequestForm(),
		Session:           session,
	}
	if c := r.GetClient(); c != nil {
		w.ClientID = c.GetID()
	}
	if l, ok := r.(interface{ GetLang() language.Tag }); ok && l.GetLang() != language.Und {
		w.Lang = l.GetLang().String()
	}
	if ar, ok := r.(fosite.AuthorizeRequester); ok {
		w.Authorize = &wireAuthorize{
			ResponseTypes:       ar.GetResponseTypes(),
			State:               ar.GetState(),
			ResponseMode:        string(ar.GetResponseMode()),
			DefaultResponseMode: string(ar.GetDefaultResponseMode()),
		}
		if u := ar.GetRedirectURI(); u != nil {
			w.Authorize.RedirectURI = u.String()
		}
		// The interface has no getter for the handled response types.
		if concrete, ok := r.(*fosite.AuthorizeRequest); ok {
			w.Authorize.HandledResponseTypes = concrete.HandledResponseTypes
		}
	}
	return json.Marshal(w)
}

// decodeRequest rebuilds a request, decoding the session into session (a fresh
// one from newSession when nil) and resolving the client again.
func (f *Fosite) decodeRequest(ctx context.Context, data []byte, session fosite.Session) (*fosite.AuthorizeRequest, bool, error) {
	var w wireRequest
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, false, fmt.Errorf("decode request: %w", err)
	}
	if session == nil {
		session = f.newSession()
	}
	if len(w.Session) > 0 {
		if err := json.Unmarshal(w.Session, session); err != nil {
			return nil, false, fmt.Errorf("decode session of request %s: %w", w.ID, err)
		}
	}
	client, err := f.client(ctx, w.ClientID)
	if err != nil {
		return nil, false, fmt.Errorf("client of request %s: %w", w.ID, err)
	}

	ar := fosite.NewAuthorizeRequest()
	ar.ID = w.ID
	ar.RequestedAt = w.RequestedAt
	ar.Client = client
	ar.Session = session
	ar.RequestedScope = append(ar.RequestedScope, w.RequestedScopes...)
	ar.GrantedScope = append(ar.GrantedScope, w.GrantedScopes...)
	ar.RequestedAudience = append(ar.RequestedAudience, w.RequestedAudience...)
	ar.GrantedAudience = append(ar.GrantedAudience, w.GrantedAudience...)
	for k, v := range w.Form {
		ar.Form[k] = v
	}
	if w.Lang != "" {
		// An unparsable tag only loses the language, not the request.
		ar.Lang, _ = language.Parse(w.Lang)
	}
	if a := w.Authorize; a != nil {
		ar.ResponseTypes = append(ar.ResponseTypes, a.ResponseTypes...)
		ar.HandledResponseTypes = append(ar.HandledResponseTypes, a.HandledResponseTypes...)
		ar.State = a.State
		ar.ResponseMode = fosite.ResponseModeType(a.ResponseMode)
		ar.DefaultResponseMode = fosite.ResponseModeType(a.DefaultResponseMode)
		if a.RedirectURI != "" {
			if ar.RedirectURI, err = url.Parse(a.RedirectURI); err != nil {
				return nil, false, fmt.Errorf("decode redirect_uri of request %s: %w", w.ID, err)
			}
		}
	}
	return ar, w.Authorize != nil, nil
}

// ---------------------------------------------------------------------------
// Shared plumbing

// toFosite maps the store's sentinels to the ones fosite's handlers test for,
// keeping the original error in the chain.
func toFosite(err error) error {
	if errors.Is(err, ErrNotFound) {
		return fosite.ErrNotFound.WithWrap(err).WithDebug(err.Error())
	}
	return err
}

func (f *Fosite) client(ctx context.Context, id string) (fosite.Client, error) {
	c, err := f.clients(ctx, id)
	if err != nil {
		return nil, toFosite(fmt.Errorf("storage: get client %q: %w", id, err))
	}
	return c, nil
}

// expiry is when a record for r should disappear: the session's expiry for tt,
// or now+fallback when the session has none.
func (f *Fosite) expiry(r fosite.Requester, tt fosite.TokenType, fallback time.Duration) time.Time {
	if s := r.GetSession(); s != nil {
		if t := s.GetExpiresAt(tt); !t.IsZero() {
			return t
		}
	}
	return f.now().Add(fallback)
}

func (f *Fosite) create(ctx context.Context, kind TokenKind, signature string, r fosite.Requester, tt fosite.TokenType, fallback time.Duration) error {
	data, err := encodeRequest(r)
	if err != nil {
		return fmt.Errorf("storage: create %s token: %w", kind, err)
	}
	return f.store.CreateToken(ctx, Token{
		Kind:      kind,
		Signature: signature,
		RequestID: r.GetID(),
		Active:    true,
		Request:   data,
		ExpiresAt: f.expiry(r, tt, fallback),
	})
}

// get loads a token and rebuilds its request whether the token is active or
// not; the callers decide what inactive means.
func (f *Fosite) get(ctx context.Context, kind TokenKind, signature string, session fosite.Session) (*fosite.AuthorizeRequest, bool, Token, error) {
	t, err := f.store.GetToken(ctx, kind, signature)
	if err != nil {
		return nil, false, Token{}, toFosite(fmt.Errorf("storage: get %s token: %w", kind, err))
	}
	ar, isAuthorize, err := f.decodeRequest(ctx, t.Request, session)
	if err != nil {
		return nil, false, Token{}, fmt.Errorf("storage: get %s token: %w", kind, err)
	}
	return ar, isAuthorize, t, nil
}

// getRequest is get for kinds whose records are never deactivated. It returns
// the plain fosite.Request unless an authorization request was stored.
func (f *Fosite) getRequest(ctx context.Context, kind TokenKind, signature string, session fosite.Session) (fosite.Requester, error) {
	ar, isAuthorize, _, err := f.get(ctx, kind, signature, session)
	if err != nil {
		return nil, err
	}
	if isAuthorize {
		return ar, nil
	}
	return &ar.Request, nil
}

// remove deletes a record; deleting one that is already gone is not an error.
func (f *Fosite) remove(ctx context.Context, kind TokenKind, signature string) error {
	if err := f.store.DeleteToken(ctx, kind, signature); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("storage: delete %s token: %w", kind, err)
	}
	return nil
}

// codeKey derives the OIDC record key: fosite hands CreateOpenIDConnectSession
// the authorization code itself, which must not be stored in the clear.
func codeKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ---------------------------------------------------------------------------
// fosite.ClientManager

// GetClient resolves a client; an unknown id is fosite.ErrNotFound.
func (f *Fosite) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	return f.client(ctx, id)
}

// ClientAssertionJWTValid returns fosite.ErrJTIKnown when the client-assertion
// jti was already used.
func (f *Fosite) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	_, err := f.store.GetToken(ctx, KindJTI, jti)
	switch {
	case err == nil:
		return fosite.ErrJTIKnown
	case errors.Is(err, ErrNotFound):
		return nil
	}
	return fmt.Errorf("storage: check jti: %w", err)
}

// SetClientAssertionJWT records a used jti until exp; recording one twice is
// fosite.ErrJTIKnown. Expired entries need no cleanup: the store's TTL drops them.
func (f *Fosite) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	if !exp.After(f.now()) {
		return nil // an expired assertion is refused for its expiry; nothing to remember
	}
	err := f.store.CreateToken(ctx, Token{Kind: KindJTI, Signature: jti, RequestID: jti, Active: true, ExpiresAt: exp})
	if errors.Is(err, ErrAlreadyExists) {
		return fosite.ErrJTIKnown.WithWrap(err)
	}
	if err != nil {
		return fmt.Errorf("storage: record jti: %w", err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// oauth2.AuthorizeCodeStorage

// CreateAuthorizeCodeSession stores the request behind an authorization code
// signature until the session's authorize-code expiry.
func (f *Fosite) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	return f.create(ctx, KindAuthorizeCode, signature, r, fosite.AuthorizeCode, fallbackCodeTTL)
}

// GetAuthorizeCodeSession returns the stored *fosite.AuthorizeRequest. For a
// code that was already exchanged it returns the request together with
// fosite.ErrInvalidatedAuthorizeCode, so fosite can revoke the tokens it issued.
func (f *Fosite) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	ar, _, t, err := f.get(ctx, KindAuthorizeCode, signature, session)
	if err != nil {
		return nil, err
	}
	if !t.Active {
		return ar, fosite.ErrInvalidatedAuthorizeCode
	}
	return ar, nil
}

// InvalidateAuthorizeCodeSession marks a code used. Of two racing exchanges
// only one succeeds; the other gets fosite.ErrInvalidatedAuthorizeCode.
func (f *Fosite) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	err := f.store.DeactivateToken(ctx, KindAuthorizeCode, signature)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("storage: invalidate code: %w (%w)", fosite.ErrInvalidatedAuthorizeCode, err)
	}
	if err != nil {
		return toFosite(fmt.Errorf("storage: invalidate code: %w", err))
	}
	return nil
}

// ---------------------------------------------------------------------------
// oauth2.AccessTokenStorage

// CreateAccessTokenSession stores an access token's request until the
// session's access-token expiry.
func (f *Fosite) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return f.create(ctx, KindAccessToken, signature, r, fosite.AccessToken, fallbackAccessTTL)
}

// GetAccessTokenSession returns the request behind an access token.
func (f *Fosite) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return f.getRequest(ctx, KindAccessToken, signature, session)
}

// DeleteAccessTokenSession removes an access token.
func (f *Fosite) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return f.remove(ctx, KindAccessToken, signature)
}

// ---------------------------------------------------------------------------
// oauth2.RefreshTokenStorage and oauth2.TokenRevocationStorage

// CreateRefreshTokenSession stores a refresh token's request until the
// session's refresh-token expiry. The access token signature is not needed:
// revocation and rotation go by request id.
func (f *Fosite) CreateRefreshTokenSession(ctx context.Context, signature, _ string, r fosite.Requester) error {
	return f.create(ctx, KindRefreshToken, signature, r, fosite.RefreshToken, fallbackRefreshTTL)
}

// GetRefreshTokenSession returns the request behind a refresh token. For a
// rotated or revoked token it returns the request together with
// fosite.ErrInactiveToken, which fosite treats as reuse and answers by revoking
// the whole grant.
func (f *Fosite) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	ar, isAuthorize, t, err := f.get(ctx, KindRefreshToken, signature, session)
	if err != nil {
		return nil, err
	}
	var r fosite.Requester = &ar.Request
	if isAuthorize {
		r = ar
	}
	if !t.Active {
		return r, fosite.ErrInactiveToken
	}
	return r, nil
}

// DeleteRefreshTokenSession removes a refresh token.
func (f *Fosite) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return f.remove(ctx, KindRefreshToken, signature)
}

// RotateRefreshToken retires the refresh token being used, every other refresh
// token of the grant and the grant's access tokens. The first step is atomic:
// of two parallel refreshes with the same token, the loser gets
// fosite.ErrSerializationFailure (fosite answers "retry"; the retry then sees an
// inactive token and is treated as reuse).
func (f *Fosite) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	err := f.store.DeactivateToken(ctx, KindRefreshToken, signature)
	if errors.Is(err, ErrConflict) {
		return fosite.ErrSerializationFailure.WithWrap(err).WithDebug(err.Error())
	}
	if err != nil {
		return toFosite(fmt.Errorf("storage: rotate refresh token: %w", err))
	}
	if err := f.store.DeactivateTokensByRequest(ctx, KindRefreshToken, requestID); err != nil {
		return toFosite(fmt.Errorf("storage: rotate refresh token: %w", err))
	}
	if err := f.store.DeleteTokensByRequest(ctx, KindAccessToken, requestID); err != nil {
		return toFosite(fmt.Errorf("storage: rotate refresh token: delete access tokens: %w", err))
	}
	return nil
}

// RevokeRefreshToken deactivates the grant's refresh tokens. They are kept
// until they expire so that a later use is detected as reuse.
func (f *Fosite) RevokeRefreshToken(ctx context.Context, requestID string) error {
	if err := f.store.DeactivateTokensByRequest(ctx, KindRefreshToken, requestID); err != nil {
		return toFosite(fmt.Errorf("storage: revoke refresh tokens: %w", err))
	}
	return nil
}

// RevokeAccessToken deletes the grant's access tokens.
func (f *Fosite) RevokeAccessToken(ctx context.Context, requestID string) error {
	if err := f.store.DeleteTokensByRequest(ctx, KindAccessToken, requestID); err != nil {
		return toFosite(fmt.Errorf("storage: revoke access tokens: %w", err))
	}
	return nil
}

// ---------------------------------------------------------------------------
// pkce.PKCERequestStorage

// CreatePKCERequestSession stores the PKCE challenge request for an
// authorization code signature, for as long as the code lives.
func (f *Fosite) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return f.create(ctx, KindPKCE, signature, r, fosite.AuthorizeCode, fallbackCodeTTL)
}

// GetPKCERequestSession returns the PKCE request for an authorization code signature.
func (f *Fosite) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return f.getRequest(ctx, KindPKCE, signature, session)
}

// DeletePKCERequestSession removes the PKCE request.
func (f *Fosite) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return f.remove(ctx, KindPKCE, signature)
}

// ---------------------------------------------------------------------------
// openid.OpenIDConnectRequestStorage

// CreateOpenIDConnectSession stores the OpenID Connect request for an
// authorization code, for as long as the code lives. The record is keyed by a
// hash of the code.
func (f *Fosite) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return f.create(ctx, KindOpenID, codeKey(code), r, fosite.AuthorizeCode, fallbackCodeTTL)
}

// GetOpenIDConnectSession returns the OpenID Connect request for an
// authorization code, its session decoded into r's session (or a new one);
// openid.ErrNoSessionFound (fosite.ErrNotFound) when there is none.
func (f *Fosite) GetOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) (fosite.Requester, error) {
	var session fosite.Session
	if r != nil {
		session = r.GetSession()
	}
	return f.getRequest(ctx, KindOpenID, codeKey(code), session)
}

// DeleteOpenIDConnectSession removes the OpenID Connect request.
func (f *Fosite) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return f.remove(ctx, KindOpenID, codeKey(code))
}

// ---------------------------------------------------------------------------
// fosite.PARStorage

// CreatePARSession stores a pushed authorization request under its request_uri
// until the session's PAR-context expiry.
func (f *Fosite) CreatePARSession(ctx context.Context, requestURI string, r fosite.AuthorizeRequester) error {
	return f.create(ctx, KindPAR, requestURI, r, fosite.PushedAuthorizeRequestContext, fallbackPARTTL)
}

// GetPARSession returns the pushed request with a new session. A request_uri
// is single use (RFC 9126 §7.3): the first read consumes it atomically, and a
// parallel or later read fails with fosite.ErrNotFound.
func (f *Fosite) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	ar, _, _, err := f.get(ctx, KindPAR, requestURI, nil)
	if err != nil {
		return nil, err
	}
	if err := f.store.DeactivateToken(ctx, KindPAR, requestURI); err != nil {
		if errors.Is(err, ErrConflict) {
			err = fmt.Errorf("%w: %w", ErrNotFound, err) // already used: as good as gone
		}
		return nil, toFosite(fmt.Errorf("storage: consume request_uri: %w", err))
	}
	return ar, nil
}

// DeletePARSession removes a pushed request.
func (f *Fosite) DeletePARSession(ctx context.Context, requestURI string) error {
	return f.remove(ctx, KindPAR, requestURI)
}
