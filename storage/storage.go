// Package storage declares the one contract through which otpgate keeps all of its
// shared state: OAuth clients, the sessions fosite persists, login flows, SMS
// challenges, browser sessions, consent grants, signing keys, the dev outbox and
// rate-limit counters.
//
// Backends live in sub-packages (storage/memory, storage/redis) and must pass the
// conformance suite in storage/storagetest. The store never sees a one-time code
// or a client secret: callers hand it keyed hashes, and it only compares them.
// Every record carries an expiry so nothing lives forever by accident; records
// that are meant to live until deleted (clients, keys) say so explicitly.
//
// This package may import fosite (it implements fosite's storage interfaces in
// fosite.go) but never provider, factors or cmd.
package storage

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them with context; callers compare with errors.Is.
var (
	// ErrNotFound: the record does not exist or has expired.
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists: a create found a record with the same identity.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrConflict: a compare-and-swap lost a race too many times, or a state
	// transition was attempted from the wrong state (for example deactivating a
	// token that is already inactive).
	ErrConflict = errors.New("storage: conflict")
	// ErrUnavailable: the backend failed or could not be reached (a lost
	// connection, a timeout, a server error); the same call may succeed
	// later. Backends wrap such failures with it, so that callers can tell an
	// outage from an answer; a cancelled context is not one.
	ErrUnavailable = errors.New("storage: unavailable")
)

// Store is everything otpgate persists. Implementations are safe for concurrent use.
//
// Rules every method follows: a create refuses a record without an id or an
// expiry (where the record has one); every Delete returns ErrNotFound when the
// record is absent (callers that do not care use errors.Is); a cancelled
// context returns an error and changes nothing.
type Store interface {
	ClientStore
	TokenStore
	FlowStore
	ChallengeStore
	SessionStore
	ConsentStore
	KeyStore
	OutboxStore
	RateLimiter
	Counters

	// Ping reports whether the backend is reachable (readiness).
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// ---------------------------------------------------------------------------
// OAuth clients

// Client is a registered relying party. SecretHash is a keyed hash computed by the
// caller; public clients have none.
type Client struct {
	ID                       string    `json:"client_id"`
	SecretHash               []byte    `json:"secret_hash,omitempty"`
	Name                     string    `json:"client_name,omitempty"`
	RedirectURIs             []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs   []string  `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes               []string  `json:"grant_types,omitempty"`
	ResponseTypes            []string  `json:"response_types,omitempty"`
	Scopes                   []string  `json:"scopes,omitempty"`
	TokenEndpointAuthMethod  string    `json:"token_endpoint_auth_method,omitempty"`
	IDTokenSignedResponseAlg string    `json:"id_token_signed_response_alg,omitempty"`
	LogoURI                  string    `json:"logo_uri,omitempty"`
	SkipConsent              bool      `json:"skip_consent,omitempty"`
	Static                   bool      `json:"static,omitempty"` // defined in the config file: read-only for the admin API
	CreatedAt                time.Time `json:"created_at"`
	UpdatedAt                time.Time `json:"updated_at"`
}

// ClientStore keeps OAuth clients. Clients do not expire.
type ClientStore interface {
	// CreateClient fails with ErrAlreadyExists when the id is taken.
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	// ListClients returns clients ordered by id, at most limit of them, starting
	// after the id `after` ("" for the first page). A limit <= 0 returns none.
	ListClients(ctx context.Context, after string, limit int) ([]Client, error)
	// UpdateClient reads the client, applies update and writes the result only if
	// nobody changed the client in between (compare-and-swap), retrying (with a
	// short random backoff) until it wins or many tries have failed, then
	// ErrConflict. An error from update aborts and is returned as is. The id
	// cannot change. update must not call the store (backends may hold a lock).
	UpdateClient(ctx context.Context, id string, update func(Client) (Client, error)) (Client, error)
	DeleteClient(ctx context.Context, id string) error
}

// ---------------------------------------------------------------------------
// Token sessions (what fosite persists; see fosite.go for the adapter)

// TokenKind names a family of fosite sessions. Each kind is its own namespace.
type TokenKind string

// Token kinds.
const (
	KindAuthorizeCode TokenKind = "code"
	KindAccessToken   TokenKind = "access"
	KindRefreshToken  TokenKind = "refresh"
	KindPKCE          TokenKind = "pkce"
	KindOpenID        TokenKind = "oidc"
	KindPAR           TokenKind = "par"
	KindJTI           TokenKind = "jti" // used client-assertion JWT ids (replay protection)
)

// Token is one stored fosite session: an opaque serialized request indexed by the
// token signature, and by request id for revocation.
type Token struct {
	Kind      TokenKind `json:"kind"`
	Signature string    `json:"signature"`
	RequestID string    `json:"request_id"`
	Active    bool      `json:"active"`
	Request   []byte    `json:"request"` // serialized by the adapter; opaque to backends
	ExpiresAt time.Time `json:"expires_at"`
}

// TokenStore is a small generic store for fosite sessions.
type TokenStore interface {
	// CreateToken stores t until t.ExpiresAt; ErrAlreadyExists if the signature is taken.
	CreateToken(ctx context.Context, t Token) error
	// GetToken returns the token whether active or not; ErrNotFound when absent or expired.
	GetToken(ctx context.Context, kind TokenKind, signature string) (Token, error)
	// DeleteToken removes the token; ErrNotFound when absent.
	DeleteToken(ctx context.Context, kind TokenKind, signature string) error
	// DeactivateToken atomically marks an active token inactive, keeping it (so
	// reuse can be detected). ErrNotFound when absent, ErrConflict when already
	// inactive: of two racing callers exactly one succeeds.
	DeactivateToken(ctx context.Context, kind TokenKind, signature string) error
	// DeactivateTokensByRequest marks every token of kind issued for requestID inactive.
	DeactivateTokensByRequest(ctx context.Context, kind TokenKind, requestID string) error
	// DeleteTokensByRequest removes every token of kind issued for requestID.
	DeleteTokensByRequest(ctx context.Context, kind TokenKind, requestID string) error
}

// ---------------------------------------------------------------------------
// Login flows

// Flow is one pending browser login: the authorization request waiting for the
// user to prove a phone number. The provider owns the meaning of Step and Request.
type Flow struct {
	ID          string    `json:"id"`
	Step        string    `json:"step"`
	ClientID    string    `json:"client_id"`
	Request     []byte    `json:"request"`                // serialized authorization request (provider's format)
	BrowserID   string    `json:"browser_id,omitempty"`   // binds the flow to one browser (cookie)
	Locale      string    `json:"locale,omitempty"`       // negotiated UI language
	Phone       string    `json:"phone,omitempty"`        // E.164, once known
	PhoneLocked bool      `json:"phone_locked,omitempty"` // fixed by the RP (PAR / signed request): not editable
	ChallengeID string    `json:"challenge_id,omitempty"`
	Subject     string    `json:"subject,omitempty"` // set once the phone is verified
	AuthTime    time.Time `json:"auth_time,omitempty"`
	AMR         []string  `json:"amr,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
	Version     int64     `json:"version"` // kept as given by CreateFlow, then bumped by every update
}

// FlowStore keeps login flows until they expire.
type FlowStore interface {
	// CreateFlow fails with ErrAlreadyExists when the id is taken.
	CreateFlow(ctx context.Context, f Flow) error
	GetFlow(ctx context.Context, id string) (Flow, error)
	// UpdateFlow applies update with compare-and-swap semantics like UpdateClient.
	// The flow keeps its id; its expiry is whatever update leaves in ExpiresAt.
	UpdateFlow(ctx context.Context, id string, update func(Flow) (Flow, error)) (Flow, error)
	// ReplaceFlow writes f over the stored flow if that flow's Version is
	// still f.Version, and returns f with the next version. ErrConflict when
	// another update came first (the caller then falls back to UpdateFlow),
	// ErrNotFound when the flow is gone. It spares UpdateFlow's read when the
	// caller has just read the flow. The expiry is f.ExpiresAt.
	ReplaceFlow(ctx context.Context, f Flow) (Flow, error)
	DeleteFlow(ctx context.Context, id string) error
}

// ---------------------------------------------------------------------------
// SMS challenges

// ChallengeGrace is how long a challenge record outlives its code, so that a late
// answer is told "expired" rather than "unknown".
const ChallengeGrace = 10 * time.Minute

// Challenge is one code sent to one phone number. CodeHash is a keyed hash of the
// code computed by the factor; the store only compares hashes. SealedCode is
// the code encrypted by the factor (under a key the store never sees), so that
// a resend can text the same code again; it is opaque to the store, which
// keeps it with the hash and never reads it.
type Challenge struct {
	ID          string    `json:"id"`
	FlowID      string    `json:"flow_id"`
	Phone       string    `json:"phone"` // E.164
	CodeHash    []byte    `json:"code_hash"`
	SealedCode  []byte    `json:"sealed_code,omitempty"`
	ProviderRef string    `json:"provider_ref,omitempty"` // id at a delegated OTP provider, if any
	Attempts    int       `json:"attempts"`               // wrong answers so far
	MaxAttempts int       `json:"max_attempts"`
	Sends       int       `json:"sends"` // codes sent, the first included
	LastSentAt  time.Time `json:"last_sent_at"`
	ExpiresAt   time.Time `json:"expires_at"` // the code's validity; the record lives ChallengeGrace longer
	CreatedAt   time.Time `json:"created_at"`
}

// VerifyOutcome says what a verification attempt did.
type VerifyOutcome int

// Verification outcomes.
const (
	VerifyOK        VerifyOutcome = iota + 1 // correct: the challenge is consumed (deleted)
	VerifyWrongCode                          // wrong: VerifyResult.Remaining attempts left
	VerifyExpired                            // the code's lifetime has passed
	VerifyLocked                             // no attempts left (this answer is not compared)
	// VerifyCounted is CountAttempt's outcome when the attempt was counted:
	// the caller judges the answer itself (a delegated OTP provider does),
	// and VerifyResult.Remaining attempts are left after this one, which may
	// be 0 when it is the last one allowed.
	VerifyCounted
)

func (o VerifyOutcome) String() string {
	switch o {
	case VerifyOK:
		return "ok"
	case VerifyWrongCode:
		return "wrong_code"
	case VerifyExpired:
		return "expired"
	case VerifyLocked:
		return "locked"
	case VerifyCounted:
		return "counted"
	}
	return "unknown"
}

// VerifyResult is the outcome of VerifyChallenge and CountAttempt. Challenge is
// the record as it stood after the attempt (on VerifyOK: as it stood just
// before it was consumed).
type VerifyResult struct {
	Outcome   VerifyOutcome
	Remaining int
	Challenge Challenge
}

// ResendOutcome says what a resend attempt did.
type ResendOutcome int

// Resend outcomes.
const (
	ResendOK      ResendOutcome = iota + 1 // the send is counted (and a new code stored, unless Resend.KeepCode)
	ResendTooSoon                          // cooldown not over: ResendResult.RetryAfter
	ResendTooMany                          // the challenge already sent MaxSends codes
	ResendLocked                           // no attempts left: a new code is refused
)

func (o ResendOutcome) String() string {
	switch o {
	case ResendOK:
		return "ok"
	case ResendTooSoon:
		return "too_soon"
	case ResendTooMany:
		return "too_many"
	case ResendLocked:
		return "locked"
	}
	return "unknown"
}

// Resend describes one more send for an existing challenge: either of the
// code it holds (KeepCode) or of a new one.
//
// Attempts are never reset: the budget of wrong answers covers the whole
// challenge, whatever number of codes it sends, so asking for another SMS buys
// an attacker no more guesses. A challenge whose attempts are exhausted is
// locked and refuses every resend (ResendLocked).
type Resend struct {
	// KeepCode re-sends the current code: the store keeps the code hash,
	// the sealed code, the provider ref, the attempt count and ExpiresAt,
	// checks locked / too many / too soon and only counts the send (Sends,
	// LastSentAt). CodeHash, SealedCode, ExpiresAt and ProviderRef are then
	// ignored. The caller judges that the code is still valid; the store
	// does not extend it.
	KeepCode   bool
	CodeHash   []byte        // hash of the new code; the old code stops working
	SealedCode []byte        // the new code sealed by the factor; empty drops the old one
	Now        time.Time     // the caller's clock
	Cooldown   time.Duration // minimum time since LastSentAt
	MaxSends   int           // total codes allowed for this challenge, the first included
	ExpiresAt  time.Time     // the new code's validity (required unless KeepCode)
	// ProviderRef is the new code's id at a delegated OTP provider, when it
	// is known before the code is sent. It replaces the old id in the same
	// atomic step; empty drops it, since it belonged to the code that stops
	// working. A factor that learns the id from the send itself reserves the
	// send first and then records the id with SetProviderRef.
	ProviderRef string
}

// ResendResult is the outcome of ResendChallenge.
type ResendResult struct {
	Outcome    ResendOutcome
	RetryAfter time.Duration // with ResendTooSoon
	Challenge  Challenge     // the record after the call
}

// ChallengeStore keeps SMS challenges. Every check is one atomic operation.
type ChallengeStore interface {
	// CreateChallenge stores c until c.ExpiresAt+ChallengeGrace; ErrAlreadyExists
	// when the id is taken.
	CreateChallenge(ctx context.Context, c Challenge) error
	GetChallenge(ctx context.Context, id string) (Challenge, error)
	// VerifyChallenge checks answerHash atomically: expired → VerifyExpired;
	// attempts exhausted → VerifyLocked; equal hash → VerifyOK and the challenge
	// is deleted (single use); otherwise the attempt is counted and the result is
	// VerifyWrongCode with the attempts remaining (VerifyLocked when none remain).
	// Of N parallel correct answers exactly one gets VerifyOK. ErrNotFound when
	// the challenge is absent or already consumed.
	VerifyChallenge(ctx context.Context, id string, answerHash []byte, now time.Time) (VerifyResult, error)
	// CountAttempt counts one answer that the caller judges itself (a
	// delegated OTP provider checks the code), atomically: expired →
	// VerifyExpired; attempts exhausted → VerifyLocked; otherwise the attempt
	// is counted and the result is VerifyCounted with the attempts remaining
	// after it (0 for the last one allowed: the caller still judges it, and a
	// wrong answer then leaves the challenge locked). The code hash is never
	// compared. Of N parallel calls on a challenge allowing M attempts,
	// exactly M are counted. ErrNotFound when the challenge is absent.
	CountAttempt(ctx context.Context, id string, now time.Time) (VerifyResult, error)
	// ConsumeChallenge deletes the challenge and returns it as it stood: the
	// single use of a challenge whose answer the caller has judged right. Of
	// N parallel calls exactly one gets the challenge, the others ErrNotFound.
	// It does not look at the code's expiry: the caller judged that when it
	// counted the attempt.
	ConsumeChallenge(ctx context.Context, id string) (Challenge, error)
	// ResendChallenge atomically counts one more send when the cooldown is
	// over, the send limit is not reached and the challenge is not locked
	// (checked in that order: locked, too many, too soon). With
	// Resend.KeepCode nothing else changes; otherwise the code hash, sealed
	// code, expiry and provider ref (see Resend.ProviderRef) are replaced.
	// The attempt counter is never reset (see Resend).
	ResendChallenge(ctx context.Context, id string, r Resend) (ResendResult, error)
	// SetProviderRef records ref as the id at a delegated OTP provider of the
	// code sent as send number send (Challenge.Sends after the
	// ResendChallenge that reserved it), atomically: ErrConflict when the
	// challenge has moved on to another send meanwhile, so that a slow answer
	// never attaches an old code to a newer send; ErrNotFound when absent.
	SetProviderRef(ctx context.Context, id string, send int, ref string) error
	DeleteChallenge(ctx context.Context, id string) error
}

// ---------------------------------------------------------------------------
// Browser sessions (SSO)

// BrowserSession remembers a verified phone number for one browser.
type BrowserSession struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	Phone     string    `json:"phone"` // E.164
	AuthTime  time.Time `json:"auth_time"`
	AMR       []string  `json:"amr"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SessionStore keeps browser sessions until they expire.
type SessionStore interface {
	CreateBrowserSession(ctx context.Context, s BrowserSession) error
	GetBrowserSession(ctx context.Context, id string) (BrowserSession, error)
	DeleteBrowserSession(ctx context.Context, id string) error
}

// ---------------------------------------------------------------------------
// Consent grants

// Consent records that a subject allowed a client a set of scopes.
type Consent struct {
	Subject   string    `json:"subject"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	GrantedAt time.Time `json:"granted_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ConsentStore keeps consent grants, one per (subject, client).
type ConsentStore interface {
	// SaveConsent creates or replaces the grant for (Subject, ClientID).
	SaveConsent(ctx context.Context, c Consent) error
	GetConsent(ctx context.Context, subject, clientID string) (Consent, error)
	DeleteConsent(ctx context.Context, subject, clientID string) error
}

// ---------------------------------------------------------------------------
// Signing keys

// Key states.
const (
	KeyCurrent = "current" // signs new tokens
	KeyRetired = "retired" // only verifies: published until ExpiresAt
)

// SigningKey is one signing key. Encrypted is the private key sealed by the caller
// (the store never sees it in the clear); Public is the public JWK for the JWKS.
type SigningKey struct {
	ID        string    `json:"kid"`
	Algorithm string    `json:"alg"`
	State     string    `json:"state"`
	Encrypted []byte    `json:"encrypted"`
	Public    []byte    `json:"public"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitempty"` // zero: kept until deleted
}

// KeyStore keeps signing keys.
type KeyStore interface {
	// CreateKey fails with ErrAlreadyExists when the kid is taken.
	CreateKey(ctx context.Context, k SigningKey) error
	// ListKeys returns every unexpired key, newest first.
	ListKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateKey applies update with compare-and-swap semantics like UpdateClient.
	UpdateKey(ctx context.Context, id string, update func(SigningKey) (SigningKey, error)) (SigningKey, error)
	DeleteKey(ctx context.Context, id string) error
}

// ---------------------------------------------------------------------------
// Outbox (development and test SMS sender)

// OutboxTTL is how long the outbox keeps messages after the last one was added.
const OutboxTTL = 24 * time.Hour

// OutboxMessage is an SMS that the outbox sender "sent".
type OutboxMessage struct {
	ID       string    `json:"id"`
	To       string    `json:"to"`
	Body     string    `json:"body"`
	Locale   string    `json:"locale,omitempty"`
	ClientID string    `json:"client_id,omitempty"`
	SentAt   time.Time `json:"sent_at"`
}

// OutboxStore is a bounded list of messages, newest first.
type OutboxStore interface {
	// AppendOutbox adds m and keeps only the newest max messages.
	AppendOutbox(ctx context.Context, m OutboxMessage, max int) error
	// ListOutbox returns up to limit messages, newest first (none for limit <= 0).
	ListOutbox(ctx context.Context, limit int) ([]OutboxMessage, error)
}

// ---------------------------------------------------------------------------
// Rate limits

// RateLimiter counts events per key with a sliding window: at most limit events
// are allowed in any window-long interval (the previous fixed window's count is
// weighted by its overlap, as in the sliding-window-counter algorithm). Keys are
// opaque to the store; callers hash anything personal (phone numbers) first.
type RateLimiter interface {
	// Allow records one event for key if it fits the limit. When it does not,
	// allowed is false and retryAfter says when one will.
	Allow(ctx context.Context, key string, limit int, window time.Duration) (allowed bool, retryAfter time.Duration, err error)
	// AllowEach runs Allow for every check, in one round trip where the
	// backend can, and returns the results in the order of checks. The checks
	// are independent, not one transaction: some may be recorded while others
	// are refused, and the caller takes back what it does not use
	// (Counters.AddCount with -1 on the same key and window). On error the
	// results, when not nil, still mark Allowed the checks known to be
	// recorded, so that the caller can take them back; any other check may or
	// may not have been recorded.
	AllowEach(ctx context.Context, checks []RateCheck) ([]RateResult, error)
}

// RateCheck is one event to record against one limit (RateLimiter.AllowEach).
type RateCheck struct {
	Key    string
	Limit  int
	Window time.Duration
}

// RateResult is the answer to one RateCheck, as Allow gives it.
type RateResult struct {
	Allowed    bool
	RetryAfter time.Duration
}
