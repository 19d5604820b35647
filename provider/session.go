package provider

import (
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/otpgate/otpgate/provider/keys"
)

// acrSMS is the authentication context class otpgate asserts: possession of a
// phone number proven by a one-time code sent over SMS.
const acrSMS = "urn:otpgate:acr:sms"

// Claims released with scope "phone" (OpenID Connect Core §5.1).
const (
	claimPhoneNumber   = "phone_number"
	claimPhoneVerified = "phone_number_verified"
)

// newSession is the one session type fosite stores for otpgate.
func newSession() *openid.DefaultSession {
	return &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Extra: map[string]interface{}{}},
		Headers: &jwt.Headers{Extra: map[string]interface{}{}},
	}
}

// authenticated is what a login proved: who, how and when.
type authenticated struct {
	Subject     string
	Phone       string // E.164
	AuthTime    time.Time
	AMR         []string
	RequestedAt time.Time
	SigningAlg  string // the client's id_token_signed_response_alg
}

// sessionFor builds the fosite session for a completed login. The phone number
// enters the session only when the client was granted scope "phone", so neither
// the ID token nor userinfo can leak it otherwise.
func sessionFor(a authenticated, granted fosite.Arguments) *openid.DefaultSession {
	s := newSession()
	s.Subject = a.Subject
	s.Claims.Subject = a.Subject
	s.Claims.AuthTime = a.AuthTime.UTC().Truncate(time.Second)
	s.Claims.RequestedAt = a.RequestedAt.UTC().Truncate(time.Second)
	s.Claims.AuthenticationMethodsReferences = a.AMR
	s.Claims.AuthenticationContextClassReference = acrSMS
	if granted.Has("phone") {
		s.Claims.Extra[claimPhoneNumber] = a.Phone
		s.Claims.Extra[claimPhoneVerified] = true
	}
	// Name the algorithm, not a key: a refresh after a key rotation must sign
	// with the key current then (see keys.AlgHint).
	s.Headers.Extra[keys.AlgHint] = a.SigningAlg
	return s
}
