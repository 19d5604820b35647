package provider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

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
	c, err := p.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load client: %w: %w", errClientStore, err)
	}
	return newFositeClient(c), nil
}

// errClientStore marks a client that could not be loaded because the store
// failed, not because it does not exist.
var errClientStore = errors.New("client store unavailable")

// unavailable turns a refusal that fosite built around a client the store
// could not load into temporarily_unavailable (503): fosite answers
// invalid_client for any GetClient error, which would blame the client for
// an outage. Any other error is returned as is.
func unavailable(err error) error {
	if errors.Is(err, errClientStore) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	return err
}

// HashClientSecret returns the stored form of a client secret.
func (p *Provider) HashClientSecret(secret string) []byte {
	h, _ := p.secrets.Hash(context.Background(), []byte(secret))
	return h
}
