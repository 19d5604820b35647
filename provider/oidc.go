package provider

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/storage"
)

// discovery is the OpenID Provider Metadata document (OpenID Connect Discovery 1.0 §3).
type discovery struct {
	Issuer                             string   `json:"issuer"`
	AuthorizationEndpoint              string   `json:"authorization_endpoint"`
	TokenEndpoint                      string   `json:"token_endpoint"`
	UserinfoEndpoint                   string   `json:"userinfo_endpoint"`
	JWKSURI                            string   `json:"jwks_uri"`
	RevocationEndpoint                 string   `json:"revocation_endpoint"`
	IntrospectionEndpoint              string   `json:"introspection_endpoint"`
	PushedAuthorizationRequestEndpoint string   `json:"pushed_authorization_request_endpoint"`
	ScopesSupported                    []string `json:"scopes_supported"`
	ResponseTypesSupported             []string `json:"response_types_supported"`
	ResponseModesSupported             []string `json:"response_modes_supported"`
	GrantTypesSupported                []string `json:"grant_types_supported"`
	SubjectTypesSupported              []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported   []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported  []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported      []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                    []string `json:"claims_supported"`
	ACRValuesSupported                 []string `json:"acr_values_supported"`
	PromptValuesSupported              []string `json:"prompt_values_supported"`
	UILocalesSupported                 []string `json:"ui_locales_supported"`
	ClaimsParameterSupported           bool     `json:"claims_parameter_supported"`
	RequestParameterSupported          bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported       bool     `json:"request_uri_parameter_supported"`
	RequirePushedAuthorizationRequests bool     `json:"require_pushed_authorization_requests"`
}

func (p *Provider) registerProtocol(r gin.IRouter) {
	r.GET("/.well-known/openid-configuration", p.handleDiscovery)
	r.GET("/.well-known/jwks.json", p.handleJWKS)
	r.GET("/oauth2/auth", p.handleAuthorize)
	r.POST("/oauth2/auth", p.handleAuthorize)
	r.POST("/oauth2/token", p.handleToken)
	r.GET("/userinfo", p.handleUserinfo)
	r.POST("/userinfo", p.handleUserinfo)
	r.POST("/oauth2/revoke", p.handleRevoke)
	r.POST("/oauth2/introspect", p.handleIntrospect)
	r.POST("/oauth2/par", p.handlePAR)
}

func (p *Provider) handleDiscovery(c *gin.Context) {
	iss := p.opts.Issuer
	c.Header("Cache-Control", "public, max-age=3600")
	c.JSON(http.StatusOK, discovery{
		Issuer:                             iss,
		AuthorizationEndpoint:              iss + "/oauth2/auth",
		TokenEndpoint:                      iss + "/oauth2/token",
		UserinfoEndpoint:                   iss + "/userinfo",
		JWKSURI:                            iss + "/.well-known/jwks.json",
		RevocationEndpoint:                 iss + "/oauth2/revoke",
		IntrospectionEndpoint:              iss + "/oauth2/introspect",
		PushedAuthorizationRequestEndpoint: iss + "/oauth2/par",
		ScopesSupported:                    []string{"openid", "phone", "offline_access"},
		ResponseTypesSupported:             []string{"code"},
		ResponseModesSupported:             []string{"query"},
		GrantTypesSupported:                []string{"authorization_code", "refresh_token"},
		SubjectTypesSupported:              []string{"public"},
		IDTokenSigningAlgValuesSupported:   []string{"RS256", "ES256"},
		TokenEndpointAuthMethodsSupported:  []string{"client_secret_basic", "client_secret_post", "none"},
		CodeChallengeMethodsSupported:      []string{"S256"},
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr",
			"at_hash", claimPhoneNumber, claimPhoneVerified},
		ACRValuesSupported:    []string{acrSMS},
		PromptValuesSupported: []string{"none", "login", "consent"},
		UILocalesSupported:    []string{"en", "fr"},
	})
}

func (p *Provider) handleJWKS(c *gin.Context) {
	set, err := p.keys.JWKS(c.Request.Context())
	if err != nil {
		p.log.Error("jwks: load keys", "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": "temporarily_unavailable"})
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, set)
}

func (p *Provider) handleToken(c *gin.Context) {
	ctx := c.Request.Context()
	w := c.Writer
	ar, err := p.oauth2.NewAccessRequest(ctx, c.Request, newSession())
	if err != nil {
		err = unavailable(err)
		p.logOAuthError("token: refused request", err)
		p.oauth2.WriteAccessError(ctx, w, ar, err)
		return
	}
	resp, err := p.oauth2.NewAccessResponse(ctx, ar)
	if err != nil {
		err = unavailable(err)
		p.logOAuthError("token: cannot issue", err)
		p.oauth2.WriteAccessError(ctx, w, ar, err)
		return
	}
	p.auditTokenIssued(c, ar)
	p.opts.Metrics.tokenIssued(grantType(ar))
	p.oauth2.WriteAccessResponse(ctx, w, ar, resp)
}

// handleUserinfo answers with the claims of the access token's session
// (OpenID Connect Core §5.3). The token comes from the Authorization header or,
// for POST, the access_token form field.
func (p *Provider) handleUserinfo(c *gin.Context) {
	ctx := c.Request.Context()
	token := fosite.AccessTokenFromRequest(c.Request)
	if token == "" {
		c.Header("WWW-Authenticate", `Bearer error="invalid_token", error_description="missing access token"`)
		c.JSON(http.StatusUnauthorized, gin.H{"error": "invalid_token", "error_description": "The access token is missing."})
		return
	}
	session := newSession()
	_, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.AccessToken, session, "openid")
	if err != nil {
		rfc := fosite.ErrorToRFC6749Error(err)
		if rfc.ErrorField == fosite.ErrInvalidScope.ErrorField {
			c.Header("WWW-Authenticate", `Bearer error="insufficient_scope"`)
			c.JSON(http.StatusForbidden, gin.H{"error": "insufficient_scope", "error_description": "The access token was not granted scope openid."})
			return
		}
		// A token that cannot be read is not a bad token: during a store
		// outage say so (503) rather than telling the client to drop it.
		if errors.Is(err, storage.ErrUnavailable) {
			p.log.Warn("userinfo: store unavailable", "err", err)
			writeUnavailable(c)
			return
		}
		c.Header("WWW-Authenticate", `Bearer error="invalid_token"`)
		c.JSON(http.StatusUnauthorized, gin.H{"error": "invalid_token", "error_description": "The access token is invalid, expired or revoked."})
		return
	}
	s, ok := ar.GetSession().(*openid.DefaultSession)
	if !ok || s.Claims == nil {
		p.renderJSONError(c, errors.New("userinfo: unexpected session type"))
		return
	}
	out := gin.H{"sub": s.Claims.Subject}
	if ar.GetGrantedScopes().Has("phone") {
		out[claimPhoneNumber] = s.Claims.Extra[claimPhoneNumber]
		out[claimPhoneVerified] = s.Claims.Extra[claimPhoneVerified]
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

func (p *Provider) handleRevoke(c *gin.Context) {
	ctx := c.Request.Context()
	err := p.oauth2.NewRevocationRequest(ctx, c.Request)
	if err != nil {
		p.logOAuthError("revoke: refused request", err)
	}
	// fosite answers 200 to a revocation the store could not carry out; the
	// relying party would believe a token dead that comes back with the
	// store. RFC 7009 §2.2.1 has 503 for this.
	if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		writeUnavailable(c)
		return
	}
	p.oauth2.WriteRevocationResponse(ctx, c.Writer, err)
}

// handleIntrospect is RFC 7662 introspection. The caller must authenticate as a
// registered client (fosite's rule); it may then introspect any token, as a
// resource server would, and learns the token's client_id, sub and scope.
func (p *Provider) handleIntrospect(c *gin.Context) {
	ctx := c.Request.Context()
	ir, err := p.oauth2.NewIntrospectionRequest(ctx, c.Request, newSession())
	if err != nil {
		p.logOAuthError("introspect: refused request", err)
		// fosite answers {"active": false} to a token the store could not
		// read: a resource server would reject a valid token.
		if errors.Is(err, storage.ErrUnavailable) {
			writeUnavailable(c)
			return
		}
		p.oauth2.WriteIntrospectionError(ctx, c.Writer, err)
		return
	}
	p.oauth2.WriteIntrospectionResponse(ctx, c.Writer, ir)
}

// handlePAR is RFC 9126: a client-authenticated POST stores the authorization
// request and answers with a request_uri. Parameters pushed this way (notably
// login_hint) cannot be changed by the user.
func (p *Provider) handlePAR(c *gin.Context) {
	ctx := c.Request.Context()
	ar, err := p.oauth2.NewPushedAuthorizeRequest(ctx, c.Request)
	if err != nil {
		err = unavailable(err)
		p.logOAuthError("par: refused request", err)
		p.oauth2.WritePushedAuthorizeError(ctx, c.Writer, ar, err)
		return
	}
	if hint := ar.GetRequestForm().Get("login_hint"); hint != "" {
		if _, err := p.parseLoginHint(hint); err != nil {
			err = fosite.ErrInvalidRequest.WithHint("The login_hint is not a valid phone number (use tel:+<E.164>).")
			p.oauth2.WritePushedAuthorizeError(ctx, c.Writer, ar, err)
			return
		}
	}
	resp, err := p.oauth2.NewPushedAuthorizeResponse(ctx, ar, newSession())
	if err != nil {
		err = unavailable(err)
		p.logOAuthError("par: cannot store", err)
		p.oauth2.WritePushedAuthorizeError(ctx, c.Writer, ar, err)
		return
	}
	p.oauth2.WritePushedAuthorizeResponse(ctx, c.Writer, ar, resp)
}

// logOAuthError logs a refused protocol request with its cause; server errors at
// error level, client mistakes at info.
func (p *Provider) logOAuthError(msg string, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	attrs := []any{"error", rfc.ErrorField, "hint", rfc.HintField, "debug", rfc.DebugField}
	if cause := rfc.Unwrap(); cause != nil {
		attrs = append(attrs, "cause", cause.Error())
	}
	if rfc.CodeField >= 500 {
		p.log.Error(msg, attrs...)
		return
	}
	p.log.Info(msg, attrs...)
}

// renderJSONError answers a JSON endpoint with a generic server error and logs the cause.
// writeUnavailable answers an OAuth endpoint whose store is down with the
// standard temporarily_unavailable error, as JSON.
func writeUnavailable(c *gin.Context) {
	e := fosite.ErrTemporarilyUnavailable
	c.Header("Cache-Control", "no-store")
	c.JSON(e.CodeField, gin.H{"error": e.ErrorField, "error_description": e.DescriptionField})
}

func (p *Provider) renderJSONError(c *gin.Context, err error) {
	p.log.Error("internal error", "path", c.FullPath(), "err", err)
	c.JSON(http.StatusInternalServerError, gin.H{"error": "server_error"})
}

// parseLoginHint accepts "tel:+33612345678" or "+33612345678" (and national
// forms in the default region) and returns the E.164 number.
func (p *Provider) parseLoginHint(hint string) (string, error) {
	ph, err := factors.ParsePhone(strings.TrimSpace(hint), p.opts.DefaultRegion)
	if err != nil {
		return "", err
	}
	return ph.E164, nil
}

// grantType is the token request's grant type, for metrics: fosite accepts
// one per request, and only those composed in New get this far.
func grantType(ar fosite.AccessRequester) string {
	if g := ar.GetGrantTypes(); len(g) > 0 {
		return g[0]
	}
	return "unknown"
}
