package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"

	"golang.org/x/crypto/hkdf"
)

// Purposes of the keys derived from the system secret. Each use gets its own key
// so that a value computed for one purpose (a step signature, say) can never be
// replayed as another (a CSRF token).
const (
	purposeSubject      = "otpgate subject v1"
	purposeClientSecret = "otpgate client secret v1"
	purposeFlowStep     = "otpgate flow step v1"
	purposeCSRF         = "otpgate csrf v1"
	purposeFosite       = "otpgate fosite global secret v1"
	purposeCodeHash     = "otpgate sms code hash v1"
	purposeGuard        = "otpgate abuse guard v1"
)

// DeriveKey derives a 32-byte key for purpose from the system secret (HKDF-SHA256).
func DeriveKey(secret []byte, purpose string) []byte {
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, []byte(purpose)), key); err != nil {
		panic("provider: hkdf cannot fail for 32 bytes: " + err.Error())
	}
	return key
}

// mac returns base64url(HMAC-SHA256(key, parts joined by NUL)).
func mac(key []byte, parts ...string) string {
	h := hmac.New(sha256.New, key)
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// macEqual compares a received MAC with the expected one in constant time.
func macEqual(got, want string) bool {
	return hmac.Equal([]byte(got), []byte(want))
}

// CodeHashKey is the key the SMS factor hashes one-time codes with.
func CodeHashKey(secret []byte) []byte { return DeriveKey(secret, purposeCodeHash) }

// GuardKey is the key the abuse guard (factors/guard) hashes phone numbers,
// prefixes and addresses with in its counter keys; audit events carry the
// same hash of a number (guard.PhoneHash) so that they can be correlated.
func GuardKey(secret []byte) []byte { return DeriveKey(secret, purposeGuard) }
