package provider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/otpgate/otpgate/storage"
)

// secretHasher hashes client secrets with HMAC-SHA256 under a key derived from the
// system secret, and compares in constant time.
//
// Why not bcrypt: bcrypt exists to slow down guessing of low-entropy passwords,
// at tens of milliseconds per token request at cost 10+. Client secrets that
// otpgate generates carry 256 bits of entropy and configured ones must be at
// least 32 characters, so brute force is out of reach at any hash speed; what
// matters is that a leaked store does not reveal usable secrets, which a keyed
// hash guarantees (the key is not in the store), at a cost of a microsecond.
type secretHasher struct{ key []byte }

var _ fosite.Hasher = secretHasher{}

// Hash returns the keyed hash of a secret.
func (h secretHasher) Hash(_ context.Context, secret []byte) ([]byte, error) {
	m := hmac.New(sha256.New, h.key)
	m.Write(secret)
	return m.Sum(nil), nil
}

// Compare returns nil when secret hashes to hash.
func (h secretHasher) Compare(ctx context.Context, hash, secret []byte) error {
	got, _ := h.Hash(ctx, secret)
	if !hmac.Equal(got, hash) {
		return errors.New("client secret mismatch")
	}
	return nil
}

// fositeClient is the view of a storage.Client that fosite works with.
type fositeClient struct {
	*fosite.DefaultOpenIDConnectClient
	name        string
	idTokenAlg  string
	skipConsent bool
}

// newFositeClient converts a stored client.
func newFositeClient(c storage.Client) *fositeClient {
	method := c.TokenEndpointAuthMethod
	if method == "" {
		method = "client_secret_basic"
	}
	alg := c.IDTokenSignedResponseAlg
	if alg == "" {
		alg = "RS256"
	}
	grants := c.GrantTypes
	if len(grants) == 0 {
		grants = []string{"authorization_code", "refresh_token"}
	}
	responses := c.ResponseTypes
	if len(responses) == 0 {
		responses = []string{"code"}
	}
	return &fositeClient{
		DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID:            c.ID,
				Secret:        c.SecretHash,
				RedirectURIs:  c.RedirectURIs,
				GrantTypes:    grants,
				ResponseTypes: responses,
				Scopes:        c.Scopes,
				Audience:      []string{},
				Public:        method == "none",
			},
			TokenEndpointAuthMethod: method,
		},
		name:        c.Name,
		idTokenAlg:  alg,
		skipConsent: c.SkipConsent,
	}
}

// displayName is the name shown to users: the client name, or its id.
func (c *fositeClient) displayName() string {
	if c.name != "" {
		return c.name
	}
	return c.ID
}

// getClient loads a client for fosite; a missing one is fosite.ErrNotFound so that
// fosite answers invalid_client.
func (p *Provider) getClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := p.lookupClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return newFositeClient(c), nil
}

// lookupClient is the one way the provider reads a client. A static client
// comes from the process (p.static): the configuration file owns it, so a
// store that lost its data (a Redis restarted without persistence) cannot
// make it unknown. Any other client is read from the store, at most once per
// request when the request carries a clientMemo. A missing client is
// storage.ErrNotFound, a store outage storage.ErrUnavailable.
func (p *Provider) lookupClient(ctx context.Context, id string) (storage.Client, error) {
	if c, ok := p.static[id]; ok {
		return c, nil
	}
	memo, _ := ctx.Value(clientMemoKey{}).(*clientMemo)
	if c, ok := memo.get(id); ok {
		return c, nil
	}
	c, err := p.store.GetClient(ctx, id)
	if err != nil {
		return storage.Client{}, fmt.Errorf("load client: %w", err)
	}
	if c.Static {
		// A copy seeded by a configuration that no longer defines it (or,
		// during a rolling deploy, by a newer one): removing a client from
		// the file must revoke it, so this instance does not know it. The
		// admin API can delete the stale copy.
		return storage.Client{}, fmt.Errorf("client %s: static, but not in this configuration: %w", id, storage.ErrNotFound)
	}
	memo.put(c)
	return c, nil
}

// isStatic reports whether id names a client of the configuration file.
func (p *Provider) isStatic(id string) bool {
	_, ok := p.static[id]
	return ok
}

// clientMemo remembers the dynamic clients read from the store during ONE
// request: fosite resolves the client several times per request (five at
// the token endpoint: to authenticate it, then again for every stored session
// it reads back), and each would otherwise be a store round trip.
//
// It lives in the request's context and dies with the request; nothing is
// cached across requests. That is what keeps the admin API's promise: a
// client deleted, or whose secret was rotated, stops working at the next
// request, on every instance, with no cache to expire.
type clientMemo struct {
	mu sync.Mutex
	m  map[string]storage.Client
}

type clientMemoKey struct{}

// memoizeClients gives the request a fresh clientMemo.
func (p *Provider) memoizeClients(c *gin.Context) {
	ctx := context.WithValue(c.Request.Context(), clientMemoKey{}, &clientMemo{})
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// get returns the client read earlier in this request; a nil memo has none.
func (m *clientMemo) get(id string) (storage.Client, bool) {
	if m == nil {
		return storage.Client{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.m[id]
	return c, ok
}

// put remembers c for the rest of the request; a nil memo forgets it.
func (m *clientMemo) put(c storage.Client) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[string]storage.Client, 1)
	}
	m.m[c.ID] = c
}

// unavailable turns a refusal that fosite built around a store outage
// (storage.ErrUnavailable) into temporarily_unavailable (503): fosite answers
// invalid_client for any GetClient error and server_error for any other
// storage error, which would blame the client, or otpgate, for an outage.
// Any other error is returned as is.
func unavailable(err error) error {
	if errors.Is(err, storage.ErrUnavailable) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	return err
}

// HashClientSecret returns the stored form of a client secret.
func (p *Provider) HashClientSecret(secret string) []byte {
	h, _ := p.secrets.Hash(context.Background(), []byte(secret))
	return h
}
