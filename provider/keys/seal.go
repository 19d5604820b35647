package keys

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/otpgate/otpgate/storage"
)

// hkdfInfo versions the sealing key: a new format gets a new info string.
const hkdfInfo = "otpgate signing keys v1"

// minSecretLen is a floor, not a recommendation: HKDF cannot add entropy the
// system secret lacks.
const minSecretLen = 16

// kidLen truncates the thumbprint: 96 bits cannot collide among the few keys a
// deployment holds, and short kids keep every token header small.
const kidLen = 16

// newAEAD derives the sealing key, AES-256-GCM with random 96-bit nonces that
// Seal prefixes to the ciphertext.
func newAEAD(systemSecret []byte) (cipher.AEAD, error) {
	if len(systemSecret) < minSecretLen {
		return nil, fmt.Errorf("keys: system_secret must be at least %d bytes, got %d", minSecretLen, len(systemSecret))
	}
	key, err := hkdf.Key(sha256.New, systemSecret, nil, hkdfInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("keys: derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keys: sealing cipher: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("keys: sealing cipher: %w", err)
	}
	return aead, nil
}

// additionalData binds a sealed blob to its record: moving Encrypted to
// another kid or alg makes it fail to open. Kids are base64url, so the NUL
// separators are unambiguous.
func additionalData(kid, alg string) []byte {
	return []byte("otpgate signing key\x00" + kid + "\x00" + alg)
}

// newKey generates a key for alg and returns its record, sealed, current,
// created now.
//
// The kid is the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public
// key, truncated to kidLen characters: stable, derived from the key itself,
// and checkable when the key is opened.
func (m *Manager) newKey(alg string) (storage.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, m.rsaBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return storage.SigningKey{}, fmt.Errorf("keys: unsupported algorithm %q (want RS256 or ES256)", alg)
	}
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	kid, err := thumbprintKID(priv.Public())
	if err != nil {
		return storage.SigningKey{}, err
	}
	public, err := json.Marshal(jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"})
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: encode public key %s: %w", kid, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: encode private key %s: %w", kid, err)
	}
	sealed := m.aead.Seal(nil, nil, der, additionalData(kid, alg))
	clear(der)
	return storage.SigningKey{
		ID:        kid,
		Algorithm: alg,
		State:     storage.KeyCurrent,
		Encrypted: sealed,
		Public:    public,
		CreatedAt: m.now(),
	}, nil
}

func thumbprintKID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum)[:kidLen], nil
}

// open unseals pk's private key and checks that it is the key its record
// publishes, of the type its alg needs.
func (m *Manager) open(pk publicKey) (crypto.Signer, error) {
	der, err := m.aead.Open(nil, nil, pk.Encrypted, additionalData(pk.ID, pk.Algorithm))
	if err != nil {
		return nil, fmt.Errorf("keys: cannot decrypt signing key %s: wrong system_secret?", pk.ID)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s: parse private key: %w", pk.ID, err)
	}
	var key crypto.Signer
	switch k := parsed.(type) {
	case *rsa.PrivateKey:
		if pk.Algorithm == RS256 {
			key = k
		}
	case *ecdsa.PrivateKey:
		if pk.Algorithm == ES256 && k.Curve == elliptic.P256() {
			key = k
		}
	}
	if key == nil {
		return nil, fmt.Errorf("keys: signing key %s: a %T cannot sign %s", pk.ID, parsed, pk.Algorithm)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(pk.jwk.Key) {
		return nil, fmt.Errorf("keys: signing key %s: private key does not match the published public key", pk.ID)
	}
	return key, nil
}

// parsePublic decodes a record's public JWK and makes the record authoritative
// for kid and alg.
func parsePublic(rec storage.SigningKey) (publicKey, error) {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(rec.Public, &jwk); err != nil {
		return publicKey{}, err
	}
	if !jwk.IsPublic() {
		return publicKey{}, errors.New("not a public key")
	}
	jwk.KeyID = rec.ID
	jwk.Algorithm = rec.Algorithm
	jwk.Use = "sig"
	return publicKey{SigningKey: rec, jwk: jwk}, nil
}
