package keys

import (
	"context"
	"fmt"
	"maps"

	"github.com/ory/fosite/token/jwt"

	"github.com/otpgate/otpgate/storage"
)

// Signer returns the jwt.Signer for fosite's OpenID Connect strategy.
//
// Generate signs with the key named by the header's "kid" (a session's
// IDTokenHeaders extras), or with the current RS256 key when there is none, and
// always writes the kid it used. A kid naming a retired key (a session stored
// before a rotation) signs with the current key of the same alg instead:
// retired keys only verify. Validate and Decode accept tokens signed by any
// published key, chosen by the token's kid.
func (m *Manager) Signer() jwt.Signer { return &signer{m: m} }

type signer struct {
	m *Manager
	// base supplies the key-independent parts (hash, signature extraction).
	base jwt.DefaultSigner
}

var _ jwt.Signer = (*signer)(nil)

// AlgHint is the header entry through which a caller of Signer().Generate names
// the algorithm to sign with ("RS256" or "ES256") without naming a key.
const AlgHint = "otpgate_alg"

func (s *signer) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	extra := map[string]any{}
	if header != nil {
		maps.Copy(extra, header.ToMap()) // a copy: the caller's header is left alone
	}
	// An AlgHint entry asks for the current key of that algorithm and is not
	// copied into the token: sessions name the algorithm rather than a kid, so
	// that an ID token refreshed after a rotation is signed with the key
	// current then.
	alg, _ := extra[AlgHint].(string)
	delete(extra, AlgHint)
	kid, key, err := s.m.keyForHeader(ctx, extra["kid"], alg)
	if err != nil {
		return "", "", err
	}
	extra["kid"] = kid
	// DefaultSigner picks RS256 for *rsa.PrivateKey and ES256 for *ecdsa.PrivateKey.
	ds := jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return key, nil }}
	return ds.Generate(ctx, claims, &jwt.Headers{Extra: extra})
}

// keyForHeader resolves the kid a caller asked for to a key that may sign;
// without a kid, the current key for alg (RS256 when alg is empty).
func (m *Manager) keyForHeader(ctx context.Context, v any, alg string) (string, any, error) {
	s, err := m.snapshot(ctx)
	if err != nil {
		return "", nil, err
	}
	if alg == "" {
		alg = RS256
	}
	if !supported(alg) {
		return "", nil, fmt.Errorf("keys: unsupported signing algorithm %q", alg)
	}
	if v == nil {
		return m.currentKey(s, alg)
	}
	kid, ok := v.(string)
	if !ok {
		return "", nil, fmt.Errorf("keys: header kid must be a string, got %T", v)
	}
	if kid == "" {
		return m.currentKey(s, alg)
	}
	pk, ok := s.published[kid]
	if !ok {
		return "", nil, fmt.Errorf("keys: no published signing key with kid %q", kid)
	}
	if pk.State != storage.KeyCurrent {
		return m.currentKey(s, pk.Algorithm)
	}
	key, err := m.privateKey(pk)
	if err != nil {
		return "", nil, err
	}
	return kid, key, nil
}

func (s *signer) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.base.GetSignature(ctx, token)
}

// Decode verifies token against the published key named by its kid and checks
// its time claims. Like DefaultSigner.Decode it returns the parsed token along
// with a *jwt.ValidationError, so callers can accept an expired id_token_hint.
func (s *signer) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, fmt.Errorf("keys: token has no kid")
		}
		snap, err := s.m.snapshot(ctx)
		if err != nil {
			return nil, err
		}
		pk, ok := snap.published[kid]
		if !ok {
			return nil, fmt.Errorf("keys: no published key with kid %q", kid)
		}
		if string(t.Method) != pk.Algorithm {
			return nil, fmt.Errorf("keys: token alg %q does not match key %s (%s)", t.Method, kid, pk.Algorithm)
		}
		return pk.jwk.Key, nil
	})
}

func (s *signer) GetSignature(ctx context.Context, token string) (string, error) {
	return s.base.GetSignature(ctx, token)
}

// Hash is SHA-256, the hash of both RS256 and ES256 (at_hash, c_hash).
func (s *signer) Hash(ctx context.Context, in []byte) ([]byte, error) {
	return s.base.Hash(ctx, in)
}

func (s *signer) GetSigningMethodLength(ctx context.Context) int {
	return s.base.GetSigningMethodLength(ctx)
}
