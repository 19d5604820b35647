package redis

import (
	"time"

	"github.com/otpgate/otpgate/storage"
)

// Wire structs: the JSON stored in Redis, decoupled from the storage types so
// that the stored format changes only on purpose. Records updated by
// compare-and-swap start with their version "v" (see compareAndSet). Times keep
// full precision (RFC 3339); only expiries are cut to milliseconds, for PEXPIREAT.
// Slices are never omitempty, so that nil and empty survive the round trip.

type flowWire struct {
	V           int64     `json:"v"`
	ID          string    `json:"id"`
	Step        string    `json:"step"`
	ClientID    string    `json:"client_id"`
	Request     []byte    `json:"request"`
	BrowserID   string    `json:"browser_id,omitempty"`
	Locale      string    `json:"locale,omitempty"`
	Phone       string    `json:"phone,omitempty"`
	PhoneLocked bool      `json:"phone_locked,omitempty"`
	ChallengeID string    `json:"challenge_id,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	AuthTime    time.Time `json:"auth_time"`
	AMR         []string  `json:"amr"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func toFlowWire(f storage.Flow) flowWire {
	return flowWire{
		V: f.Version, ID: f.ID, Step: f.Step, ClientID: f.ClientID, Request: f.Request,
		BrowserID: f.BrowserID, Locale: f.Locale, Phone: f.Phone, PhoneLocked: f.PhoneLocked,
		ChallengeID: f.ChallengeID, Subject: f.Subject, AuthTime: f.AuthTime, AMR: f.AMR,
		ExpiresAt: f.ExpiresAt,
	}
}

func (w flowWire) flow() storage.Flow {
	return storage.Flow{
		ID: w.ID, Step: w.Step, ClientID: w.ClientID, Request: w.Request,
		BrowserID: w.BrowserID, Locale: w.Locale, Phone: w.Phone, PhoneLocked: w.PhoneLocked,
		ChallengeID: w.ChallengeID, Subject: w.Subject, AuthTime: w.AuthTime, AMR: w.AMR,
		ExpiresAt: w.ExpiresAt, Version: w.V,
	}
}

type sessionWire struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	Phone     string    `json:"phone"`
	AuthTime  time.Time `json:"auth_time"`
	AMR       []string  `json:"amr"`
	ExpiresAt time.Time `json:"expires_at"`
}

func toSessionWire(s storage.BrowserSession) sessionWire {
	return sessionWire{ID: s.ID, Subject: s.Subject, Phone: s.Phone, AuthTime: s.AuthTime, AMR: s.AMR, ExpiresAt: s.ExpiresAt}
}

func (w sessionWire) session() storage.BrowserSession {
	return storage.BrowserSession{ID: w.ID, Subject: w.Subject, Phone: w.Phone, AuthTime: w.AuthTime, AMR: w.AMR, ExpiresAt: w.ExpiresAt}
}

type consentWire struct {
	Subject   string    `json:"subject"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	GrantedAt time.Time `json:"granted_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func toConsentWire(c storage.Consent) consentWire {
	return consentWire{Subject: c.Subject, ClientID: c.ClientID, Scopes: c.Scopes, GrantedAt: c.GrantedAt, ExpiresAt: c.ExpiresAt}
}

func (w consentWire) consent() storage.Consent {
	return storage.Consent{Subject: w.Subject, ClientID: w.ClientID, Scopes: w.Scopes, GrantedAt: w.GrantedAt, ExpiresAt: w.ExpiresAt}
}

type clientWire struct {
	V                        int64     `json:"v"`
	ID                       string    `json:"id"`
	SecretHash               []byte    `json:"secret_hash"`
	Name                     string    `json:"name,omitempty"`
	RedirectURIs             []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs   []string  `json:"post_logout_redirect_uris"`
	GrantTypes               []string  `json:"grant_types"`
	ResponseTypes            []string  `json:"response_types"`
	Scopes                   []string  `json:"scopes"`
	TokenEndpointAuthMethod  string    `json:"token_endpoint_auth_method,omitempty"`
	IDTokenSignedResponseAlg string    `json:"id_token_signed_response_alg,omitempty"`
	LogoURI                  string    `json:"logo_uri,omitempty"`
	SkipConsent              bool      `json:"skip_consent,omitempty"`
	Static                   bool      `json:"static,omitempty"`
	CreatedAt                time.Time `json:"created_at"`
	UpdatedAt                time.Time `json:"updated_at"`
}

func toClientWire(c storage.Client, version int64) clientWire {
	return clientWire{
		V: version, ID: c.ID, SecretHash: c.SecretHash, Name: c.Name,
		RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		GrantTypes: c.GrantTypes, ResponseTypes: c.ResponseTypes, Scopes: c.Scopes,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
		LogoURI: c.LogoURI, SkipConsent: c.SkipConsent, Static: c.Static,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
}

func (w clientWire) client() storage.Client {
	return storage.Client{
		ID: w.ID, SecretHash: w.SecretHash, Name: w.Name,
		RedirectURIs: w.RedirectURIs, PostLogoutRedirectURIs: w.PostLogoutRedirectURIs,
		GrantTypes: w.GrantTypes, ResponseTypes: w.ResponseTypes, Scopes: w.Scopes,
		TokenEndpointAuthMethod: w.TokenEndpointAuthMethod, IDTokenSignedResponseAlg: w.IDTokenSignedResponseAlg,
		LogoURI: w.LogoURI, SkipConsent: w.SkipConsent, Static: w.Static,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
	}
}

type keyWire struct {
	V         int64     `json:"v"`
	ID        string    `json:"kid"`
	Algorithm string    `json:"alg"`
	State     string    `json:"state"`
	Encrypted []byte    `json:"encrypted"`
	Public    []byte    `json:"public"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func toKeyWire(k storage.SigningKey, version int64) keyWire {
	return keyWire{V: version, ID: k.ID, Algorithm: k.Algorithm, State: k.State, Encrypted: k.Encrypted, Public: k.Public, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt}
}

func (w keyWire) key() storage.SigningKey {
	return storage.SigningKey{ID: w.ID, Algorithm: w.Algorithm, State: w.State, Encrypted: w.Encrypted, Public: w.Public, CreatedAt: w.CreatedAt, ExpiresAt: w.ExpiresAt}
}

// tokenWire is the "d" field of a token HASH; the request id and the active
// flag sit in fields of their own so that scripts can test and flip them.
type tokenWire struct {
	Kind      storage.TokenKind `json:"kind"`
	Signature string            `json:"signature"`
	Request   []byte            `json:"request"`
	ExpiresAt time.Time         `json:"expires_at"`
}

type outboxWire struct {
	ID       string    `json:"id"`
	To       string    `json:"to"`
	Body     string    `json:"body"`
	Locale   string    `json:"locale,omitempty"`
	ClientID string    `json:"client_id,omitempty"`
	SentAt   time.Time `json:"sent_at"`
}
