package provider

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/otpgate/otpgate/storage"
)

// The admin API (admin listener): OAuth clients and signing keys, behind a
// bearer token. Client metadata uses the RFC 7591 names, and refusals the RFC
// 7591 error body {"error": …, "error_description": …}.

// Admin API limits.
const (
	adminMaxBody        = 64 << 10
	adminDefaultPage    = 50
	adminMaxPage        = 200
	clientSecretBytes   = 32 // 256 bits
	maxClientNameLength = 200
)

// Client metadata otpgate understands. The scopes are the ones discovery
// advertises; the rest mirror what fosite is composed with in New.
var (
	adminGrantTypes    = []string{"authorization_code", "refresh_token"}
	adminResponseTypes = []string{"code"}
	adminAuthMethods   = []string{"client_secret_basic", "client_secret_post", "none"}
	adminSigningAlgs   = []string{"RS256", "ES256"}
	adminScopes        = []string{"openid", "phone", "offline_access"}

	defaultClientScopes = []string{"openid", "phone", "offline_access"}

	// clientIDPattern keeps chosen ids to RFC 3986 unreserved characters, so
	// they need no escaping in URLs, forms or Basic authentication.
	clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)
)

// adminError is an admin API refusal, written as RFC 7591 §3.2.2 describes.
type adminError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *adminError) Error() string { return e.Code + ": " + e.Description }

func newAdminError(status int, code, format string, args ...any) *adminError {
	return &adminError{status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

// errStaticClient aborts an update of a client that the configuration file owns.
var errStaticClient = errors.New("static client")

// adminAPI serves /admin. It holds the SHA-256 of the admin token, so that the
// comparison runs in constant time whatever the length of the presented token.
type adminAPI struct {
	p         *Provider
	tokenHash [sha256.Size]byte
	enabled   bool // a token is configured
	actor     string
}

// registerAdmin adds the /admin routes, every one behind the admin token.
func (p *Provider) registerAdmin(r gin.IRouter) {
	a := &adminAPI{p: p}
	if p.opts.AdminToken != "" {
		a.enabled = true
		a.tokenHash = sha256.Sum256([]byte(p.opts.AdminToken))
		a.actor = adminActor(p.opts.AdminToken)
	}
	g := r.Group("/admin", a.authenticate)
	g.POST("/clients", a.createClient)
	g.GET("/clients", a.listClients)
	g.GET("/clients/:id", a.getClient)
	g.PUT("/clients/:id", a.updateClient)
	g.DELETE("/clients/:id", a.deleteClient)
	g.POST("/clients/:id/secret", a.rotateSecret)
	g.GET("/keys", a.listKeys)
	g.POST("/keys/rotate", a.rotateKeys)
	if p.opts.Pprof {
		registerPprof(r.Group("/debug/pprof", a.authenticate))
	}
}

// authenticate lets a request through only with "Authorization: Bearer <the
// admin token>". Without a configured token every request is refused.
func (a *adminAPI) authenticate(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	if !a.enabled {
		a.fail(c, newAdminError(http.StatusForbidden, "access_denied",
			"the admin API is disabled: no admin token is configured; set admin.token or admin.token_file (or OTPGATE_ADMIN_TOKEN) and restart"))
		return
	}
	scheme, token, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="otpgate-admin"`)
		a.fail(c, newAdminError(http.StatusUnauthorized, "invalid_token",
			"the admin API needs 'Authorization: Bearer <admin token>'"))
		return
	}
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
		a.p.log.Warn("admin: refused a wrong admin token", "remote_addr", c.Request.RemoteAddr, "method", c.Request.Method, "path", c.Request.URL.Path)
		c.Header("WWW-Authenticate", `Bearer realm="otpgate-admin", error="invalid_token"`)
		a.fail(c, newAdminError(http.StatusUnauthorized, "invalid_token", "the admin token is wrong"))
		return
	}
	c.Next()
}

// adminNotFound answers a path the admin listener does not serve, in JSON.
func adminNotFound(c *gin.Context) {
	c.JSON(http.StatusNotFound, newAdminError(http.StatusNotFound, "not_found", "no admin route %s %s", c.Request.Method, c.Request.URL.Path))
}

// fail writes err and stops the handler chain.
func (a *adminAPI) fail(c *gin.Context, err *adminError) {
	c.AbortWithStatusJSON(err.status, err)
}

// storeFailed answers a store error: 404 for a missing client, 503 otherwise
// (the cause goes to the log, not to the caller).
func (a *adminAPI) storeFailed(c *gin.Context, id string, err error) {
	if errors.Is(err, storage.ErrNotFound) {
		a.fail(c, newAdminError(http.StatusNotFound, "not_found", "no client with client_id %q", id))
		return
	}
	if errors.Is(err, storage.ErrConflict) {
		a.fail(c, newAdminError(http.StatusConflict, "conflict", "client %q was changed concurrently; try again", id))
		return
	}
	a.p.log.Error("admin: store failure", "path", c.FullPath(), "client_id", id, "err", err)
	a.fail(c, newAdminError(http.StatusServiceUnavailable, "temporarily_unavailable", "the store did not answer; see the server log"))
}

// auditAttrs are the common attributes of an admin audit event.
func (a *adminAPI) auditAttrs(c *gin.Context, attrs ...slog.Attr) []slog.Attr {
	return append([]slog.Attr{slog.String("remote_addr", c.Request.RemoteAddr)}, attrs...)
}

// ---------------------------------------------------------------------------
// Client metadata

// clientMetadata is a client as the admin API receives it (POST and PUT).
// Fields that GET returns but nobody can set are accepted and ignored, so that
// a client read with GET can be edited and sent back with PUT.
type clientMetadata struct {
	ClientID                 string          `json:"client_id"`
	ClientName               string          `json:"client_name"`
	RedirectURIs             []string        `json:"redirect_uris"`
	PostLogoutRedirectURIs   []string        `json:"post_logout_redirect_uris"`
	GrantTypes               []string        `json:"grant_types"`
	ResponseTypes            []string        `json:"response_types"`
	Scope                    string          `json:"scope"`
	TokenEndpointAuthMethod  string          `json:"token_endpoint_auth_method"`
	IDTokenSignedResponseAlg string          `json:"id_token_signed_response_alg"`
	LogoURI                  string          `json:"logo_uri"`
	JWKS                     json.RawMessage `json:"jwks"`
	SkipConsent              bool            `json:"skip_consent"`
	ClientSecret             *string         `json:"client_secret"`

	// Read-only.
	Static                *bool           `json:"static"`
	CreatedAt             json.RawMessage `json:"created_at"`
	UpdatedAt             json.RawMessage `json:"updated_at"`
	ClientIDIssuedAt      json.RawMessage `json:"client_id_issued_at"`
	ClientSecretExpiresAt json.RawMessage `json:"client_secret_expires_at"`
}

// ClientView is a client as the admin API returns it (and the CLI reads it).
// ClientSecret is set only in the response that generated it.
type ClientView struct {
	ClientID                 string    `json:"client_id"`
	ClientSecret             string    `json:"client_secret,omitempty"`
	ClientSecretExpiresAt    *int64    `json:"client_secret_expires_at,omitempty"` // 0: never (RFC 7591), with ClientSecret
	ClientIDIssuedAt         int64     `json:"client_id_issued_at"`
	ClientName               string    `json:"client_name,omitempty"`
	RedirectURIs             []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs   []string  `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes               []string  `json:"grant_types"`
	ResponseTypes            []string  `json:"response_types"`
	Scope                    string    `json:"scope"`
	TokenEndpointAuthMethod  string    `json:"token_endpoint_auth_method"`
	IDTokenSignedResponseAlg string    `json:"id_token_signed_response_alg"`
	LogoURI                  string    `json:"logo_uri,omitempty"`
	SkipConsent              bool      `json:"skip_consent"`
	Static                   bool      `json:"static"`
	CreatedAt                time.Time `json:"created_at"`
	UpdatedAt                time.Time `json:"updated_at"`
}

// viewOf renders a stored client, with the defaults fosite applies to empty
// fields made explicit.
func viewOf(c storage.Client) ClientView {
	fc := newFositeClient(c)
	v := ClientView{
		ClientID:                 c.ID,
		ClientIDIssuedAt:         c.CreatedAt.Unix(),
		ClientName:               c.Name,
		RedirectURIs:             nonNilStrings(c.RedirectURIs),
		PostLogoutRedirectURIs:   c.PostLogoutRedirectURIs,
		GrantTypes:               []string(fc.GetGrantTypes()),
		ResponseTypes:            []string(fc.GetResponseTypes()),
		Scope:                    strings.Join(c.Scopes, " "),
		TokenEndpointAuthMethod:  fc.TokenEndpointAuthMethod,
		IDTokenSignedResponseAlg: fc.idTokenAlg,
		LogoURI:                  c.LogoURI,
		SkipConsent:              c.SkipConsent,
		Static:                   c.Static,
		CreatedAt:                c.CreatedAt,
		UpdatedAt:                c.UpdatedAt,
	}
	return v
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// withSecret adds a freshly generated secret to a view.
func withSecret(v ClientView, secret string) ClientView {
	var never int64
	v.ClientSecret = secret
	v.ClientSecretExpiresAt = &never
	return v
}

// decodeMetadata reads a JSON body strictly: an unknown field is refused
// rather than ignored (RFC 7591 §2 lets a registration endpoint ignore them,
// but an administrator's typo, "redirect_uri" for "redirect_uris", must not
// pass silently).
func decodeMetadata(c *gin.Context) (clientMetadata, *adminError) {
	var m clientMetadata
	body := http.MaxBytesReader(c.Writer, c.Request.Body, adminMaxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&m)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("unexpected data after the JSON object")
	}
	if err == nil {
		return m, nil
	}
	var typeErr *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return m, newAdminError(http.StatusRequestEntityTooLarge, "invalid_client_metadata", "the body is larger than %d bytes", adminMaxBody)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return m, newAdminError(http.StatusBadRequest, "invalid_client_metadata", "%s must be a JSON %s", typeErr.Field, jsonKind(typeErr.Type.String()))
	case errors.Is(err, io.EOF):
		return m, newAdminError(http.StatusBadRequest, "invalid_client_metadata", "the body must be a JSON object of client metadata")
	}
	msg, _ := strings.CutPrefix(err.Error(), "json: ")
	return m, newAdminError(http.StatusBadRequest, "invalid_client_metadata", "the body is not valid client metadata: %s", msg)
}

func jsonKind(goType string) string {
	switch {
	case goType == "string" || goType == "*string":
		return "string"
	case goType == "bool" || goType == "*bool":
		return "boolean (true or false)"
	case strings.HasPrefix(goType, "[]"):
		return "array of strings"
	}
	return "value of type " + goType
}

// metadataProblems collects what is wrong with client metadata; the response carries
// the error code of the first and every description.
type metadataProblems []*adminError

func (ps *metadataProblems) add(code, format string, args ...any) {
	*ps = append(*ps, newAdminError(http.StatusBadRequest, code, format, args...))
}

func (ps metadataProblems) err() *adminError {
	if len(ps) == 0 {
		return nil
	}
	descs := make([]string, len(ps))
	for i, p := range ps {
		descs[i] = p.Description
	}
	return newAdminError(http.StatusBadRequest, ps[0].Code, "%s", strings.Join(descs, "; "))
}

// toClient validates m and returns the client it describes, with defaults
// filled in. The id, secret and timestamps are the caller's business.
func toClient(m clientMetadata) (storage.Client, *adminError) {
	var ps metadataProblems
	const (
		badRedirect = "invalid_redirect_uri"
		badMetadata = "invalid_client_metadata"
	)
	if m.ClientSecret != nil {
		ps.add(badMetadata, "client_secret cannot be chosen: otpgate generates it (256 bits) when the client is created, or with POST /admin/clients/{id}/secret")
	}
	if len(m.JWKS) > 0 && string(m.JWKS) != "null" {
		ps.add(badMetadata, "jwks is not supported: clients authenticate with client_secret_basic, client_secret_post or none (public client with PKCE)")
	}
	if n := utf8.RuneCountInString(m.ClientName); n > maxClientNameLength {
		ps.add(badMetadata, "client_name must be at most %d characters, got %d", maxClientNameLength, n)
	} else if strings.IndexFunc(m.ClientName, unicode.IsControl) >= 0 {
		ps.add(badMetadata, "client_name must not contain control characters")
	}

	if len(m.RedirectURIs) == 0 {
		ps.add(badRedirect, "redirect_uris is required: list at least one URL, e.g. [\"https://app.example.com/callback\"]")
	}
	for i, u := range m.RedirectURIs {
		if msg := clientURLProblem(u); msg != "" {
			ps.add(badRedirect, "redirect_uris[%d] %s", i, msg)
		}
	}
	for i, u := range m.PostLogoutRedirectURIs {
		if msg := clientURLProblem(u); msg != "" {
			ps.add(badMetadata, "post_logout_redirect_uris[%d] %s", i, msg)
		}
	}
	if m.LogoURI != "" {
		if msg := clientURLProblem(m.LogoURI); msg != "" {
			ps.add(badMetadata, "logo_uri %s", msg)
		}
	}

	grants := defaultIfEmpty(m.GrantTypes, adminGrantTypes)
	for i, g := range grants {
		if !slices.Contains(adminGrantTypes, g) {
			ps.add(badMetadata, "grant_types[%d] must be one of %s, got %q", i, adminQuote(adminGrantTypes), g)
		}
	}
	if !slices.Contains(grants, "authorization_code") {
		ps.add(badMetadata, "grant_types must contain \"authorization_code\", the only flow otpgate serves")
	}
	responses := defaultIfEmpty(m.ResponseTypes, adminResponseTypes)
	for i, r := range responses {
		if !slices.Contains(adminResponseTypes, r) {
			ps.add(badMetadata, "response_types[%d] must be one of %s, got %q", i, adminQuote(adminResponseTypes), r)
		}
	}

	scopes := strings.Fields(m.Scope)
	if len(scopes) == 0 {
		scopes = slices.Clone(defaultClientScopes)
	}
	scopes = slices.Compact(slices.Clone(scopes))
	for _, s := range scopes {
		if !slices.Contains(adminScopes, s) {
			ps.add(badMetadata, "scope %q is not supported: use %s", s, adminQuote(adminScopes))
		}
	}
	if !slices.Contains(scopes, "openid") {
		ps.add(badMetadata, "scope must contain \"openid\", got %q", m.Scope)
	}

	method := m.TokenEndpointAuthMethod
	if method == "" {
		method = "client_secret_basic"
	}
	if !slices.Contains(adminAuthMethods, method) {
		ps.add(badMetadata, "token_endpoint_auth_method must be one of %s, got %q", adminQuote(adminAuthMethods), method)
	}
	alg := m.IDTokenSignedResponseAlg
	if alg == "" {
		alg = "RS256"
	}
	if !slices.Contains(adminSigningAlgs, alg) {
		ps.add(badMetadata, "id_token_signed_response_alg must be one of %s, got %q", adminQuote(adminSigningAlgs), alg)
	}
	if err := ps.err(); err != nil {
		return storage.Client{}, err
	}
	return storage.Client{
		Name:                     m.ClientName,
		RedirectURIs:             m.RedirectURIs,
		PostLogoutRedirectURIs:   m.PostLogoutRedirectURIs,
		GrantTypes:               grants,
		ResponseTypes:            responses,
		Scopes:                   scopes,
		TokenEndpointAuthMethod:  method,
		IDTokenSignedResponseAlg: alg,
		LogoURI:                  m.LogoURI,
		SkipConsent:              m.SkipConsent,
	}, nil
}

// clientURLProblem says what is wrong with a URL otpgate sends browsers to, or
// returns "": it must be absolute, without fragment or user info, and https
// unless its host is a loopback one (RFC 8252 §7.3 native apps, local tests).
func clientURLProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return fmt.Sprintf("must be an absolute URL like \"https://app.example.com/callback\", got %q", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Sprintf("must not have a fragment (\"#...\"), got %q", raw)
	case u.User != nil:
		return "must not contain a user name or password" // do not echo it
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopbackHostname(u.Hostname()):
		return ""
	case u.Scheme == "http":
		return fmt.Sprintf("must use https (http only for localhost, 127.0.0.1 and [::1]), got %q", raw)
	}
	return fmt.Sprintf("must use https, got scheme %q", u.Scheme)
}

func isLoopbackHostname(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func defaultIfEmpty(list, def []string) []string {
	if len(list) == 0 {
		return slices.Clone(def)
	}
	return list
}

func adminQuote(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// newClientSecret returns 256 random bits, base64url (43 characters).
func newClientSecret() string {
	b := make([]byte, clientSecretBytes)
	if _, err := rand.Read(b); err != nil {
		panic("provider: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ---------------------------------------------------------------------------
// Client routes

// createClient is POST /admin/clients: 201 with the client and, for a
// confidential client, its secret, shown this once.
func (a *adminAPI) createClient(c *gin.Context) {
	m, aerr := decodeMetadata(c)
	if aerr != nil {
		a.fail(c, aerr)
		return
	}
	client, aerr := toClient(m)
	if aerr != nil {
		a.fail(c, aerr)
		return
	}
	client.ID = m.ClientID
	if client.ID == "" {
		client.ID = randomID()
	} else if !clientIDPattern.MatchString(client.ID) {
		a.fail(c, newAdminError(http.StatusBadRequest, "invalid_client_metadata",
			"client_id must be 1 to 128 letters, digits or '.', '_', '~', '-', got %q", client.ID))
		return
	}
	if a.p.isStatic(client.ID) {
		// Even when the store lost the static client (a Redis restarted
		// empty): a stored client of that id would never be served, since
		// lookupClient answers static ids from the configuration.
		a.fail(c, newAdminError(http.StatusConflict, "conflict",
			"client_id %q is already registered, as a static client of the configuration file (clients:) or of --dev", client.ID))
		return
	}
	var secret string
	if client.TokenEndpointAuthMethod != "none" {
		secret = newClientSecret()
		client.SecretHash = a.p.HashClientSecret(secret)
	}
	now := a.p.now().UTC()
	client.CreatedAt, client.UpdatedAt = now, now
	if err := a.p.store.CreateClient(c.Request.Context(), client); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			a.fail(c, newAdminError(http.StatusConflict, "conflict", "client_id %q is already registered", client.ID))
			return
		}
		a.storeFailed(c, client.ID, err)
		return
	}
	a.p.audit(c.Request.Context(), eventClientCreated, a.actor, a.auditAttrs(c,
		slog.String("client_id", client.ID),
		slog.String("client_name", client.Name),
		slog.Any("redirect_uris", client.RedirectURIs),
		slog.String("scope", strings.Join(client.Scopes, " ")),
		slog.String("token_endpoint_auth_method", client.TokenEndpointAuthMethod),
		slog.Bool("skip_consent", client.SkipConsent),
	)...)
	v := viewOf(client)
	if secret != "" {
		v = withSecret(v, secret)
	}
	c.Header("Location", "/admin/clients/"+url.PathEscape(client.ID))
	c.JSON(http.StatusCreated, v)
}

// clientPage is one page of GET /admin/clients. Next, when set, is the after
// cursor of the following page.
type clientPage struct {
	Clients []ClientView `json:"clients"`
	Next    string       `json:"next,omitempty"`
}

// listClients is GET /admin/clients?limit=&after=: clients ordered by id.
func (a *adminAPI) listClients(c *gin.Context) {
	limit := adminDefaultPage
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > adminMaxPage {
			a.fail(c, newAdminError(http.StatusBadRequest, "invalid_request", "limit must be a whole number between 1 and %d, got %q", adminMaxPage, s))
			return
		}
		limit = n
	}
	// One more than asked tells whether another page follows.
	list, err := a.p.store.ListClients(c.Request.Context(), c.Query("after"), limit+1)
	if err != nil {
		a.storeFailed(c, "", err)
		return
	}
	list = a.p.withStaticClients(list, c.Query("after"))
	page := clientPage{Clients: make([]ClientView, 0, min(len(list), limit))}
	for i, cl := range list {
		if i == limit {
			page.Next = list[i-1].ID
			break
		}
		page.Clients = append(page.Clients, viewOf(cl))
	}
	c.JSON(http.StatusOK, page)
}

// withStaticClients merges into a page of stored clients (sorted by id, all
// after `after`) this instance's static clients that sort after `after`, so
// that they are listed even when the store lost them. A static client
// replaces its stored copy: the configuration owns it. Paging stays exact:
// the merge holds every client up to the page's last stored one, and a next
// page starts after the last id shown.
func (p *Provider) withStaticClients(list []storage.Client, after string) []storage.Client {
	out := make([]storage.Client, 0, len(list)+len(p.static))
	for _, c := range list {
		if !p.isStatic(c.ID) {
			out = append(out, c)
		}
	}
	for id, c := range p.static {
		if id > after {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b storage.Client) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// getClient is GET /admin/clients/{id}.
func (a *adminAPI) getClient(c *gin.Context) {
	id := c.Param("id")
	cl, err := a.p.lookupClient(c.Request.Context(), id)
	if err != nil {
		a.storeFailed(c, id, err)
		return
	}
	c.JSON(http.StatusOK, viewOf(cl))
}

// readOnly answers a change to a static client.
func (a *adminAPI) readOnly(c *gin.Context, id string) {
	a.fail(c, newAdminError(http.StatusConflict, "static_client",
		"client %q is static, defined in the configuration file (clients:) or by --dev, and is read-only here: change it in the configuration and restart otpgate", id))
}

// updateClient is PUT /admin/clients/{id}: the body replaces the client's
// metadata (RFC 7592 §2.2); the id, secret and creation time stay. A client
// that becomes confidential gets a secret, returned in this response only; one
// that becomes public loses its secret.
func (a *adminAPI) updateClient(c *gin.Context) {
	id := c.Param("id")
	m, aerr := decodeMetadata(c)
	if aerr != nil {
		a.fail(c, aerr)
		return
	}
	if m.ClientID != "" && m.ClientID != id {
		a.fail(c, newAdminError(http.StatusBadRequest, "invalid_client_metadata", "client_id %q in the body does not match %q in the URL; a client id cannot change", m.ClientID, id))
		return
	}
	next, aerr := toClient(m)
	if aerr != nil {
		a.fail(c, aerr)
		return
	}
	if a.p.isStatic(id) { // also when the store lost it: never a 404
		a.readOnly(c, id)
		return
	}
	var secret string
	var changed []string
	updated, err := a.p.store.UpdateClient(c.Request.Context(), id, func(old storage.Client) (storage.Client, error) {
		if old.Static {
			return old, errStaticClient
		}
		n := next
		n.ID, n.CreatedAt, n.UpdatedAt = old.ID, old.CreatedAt, a.p.now().UTC()
		n.SecretHash = old.SecretHash
		secret = ""
		switch {
		case n.TokenEndpointAuthMethod == "none":
			n.SecretHash = nil
		case len(old.SecretHash) == 0:
			secret = newClientSecret()
			n.SecretHash = a.p.HashClientSecret(secret)
		}
		changed = changedFields(viewOf(old), viewOf(n))
		return n, nil
	})
	if errors.Is(err, errStaticClient) {
		a.readOnly(c, id)
		return
	}
	if err != nil {
		a.storeFailed(c, id, err)
		return
	}
	attrs := []slog.Attr{slog.String("client_id", id), slog.Any("changed", changed)}
	if secret != "" {
		attrs = append(attrs, slog.Bool("secret_generated", true))
	}
	a.p.audit(c.Request.Context(), eventClientUpdated, a.actor, a.auditAttrs(c, attrs...)...)
	v := viewOf(updated)
	if secret != "" {
		v = withSecret(v, secret)
	}
	c.JSON(http.StatusOK, v)
}

// changedFields names the metadata fields that differ between two views.
func changedFields(old, cur ClientView) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("client_name", old.ClientName != cur.ClientName)
	add("redirect_uris", !slices.Equal(old.RedirectURIs, cur.RedirectURIs))
	add("post_logout_redirect_uris", !slices.Equal(old.PostLogoutRedirectURIs, cur.PostLogoutRedirectURIs))
	add("grant_types", !slices.Equal(old.GrantTypes, cur.GrantTypes))
	add("response_types", !slices.Equal(old.ResponseTypes, cur.ResponseTypes))
	add("scope", old.Scope != cur.Scope)
	add("token_endpoint_auth_method", old.TokenEndpointAuthMethod != cur.TokenEndpointAuthMethod)
	add("id_token_signed_response_alg", old.IDTokenSignedResponseAlg != cur.IDTokenSignedResponseAlg)
	add("logo_uri", old.LogoURI != cur.LogoURI)
	add("skip_consent", old.SkipConsent != cur.SkipConsent)
	if out == nil {
		out = []string{}
	}
	return out
}

// deleteClient is DELETE /admin/clients/{id}: 204. Tokens already issued to
// the client stop working, since every token request and introspection loads
// the client first.
//
// A static client is read-only, but the stored copy of one that the
// configuration no longer defines (which no instance serves) can be deleted.
func (a *adminAPI) deleteClient(c *gin.Context) {
	id := c.Param("id")
	ctx := c.Request.Context()
	if a.p.isStatic(id) { // also when the store lost it: never a 404
		a.readOnly(c, id)
		return
	}
	cl, err := a.p.store.GetClient(ctx, id)
	if err != nil {
		a.storeFailed(c, id, err)
		return
	}
	if err := a.p.store.DeleteClient(ctx, id); err != nil {
		a.storeFailed(c, id, err)
		return
	}
	a.p.audit(ctx, eventClientDeleted, a.actor, a.auditAttrs(c, slog.String("client_id", id), slog.String("client_name", cl.Name))...)
	c.Status(http.StatusNoContent)
}

// rotateSecret is POST /admin/clients/{id}/secret: a new secret replaces the
// old one at once and is returned this once.
func (a *adminAPI) rotateSecret(c *gin.Context) {
	id := c.Param("id")
	if a.p.isStatic(id) { // also when the store lost it: never a 404
		a.readOnly(c, id)
		return
	}
	secret := newClientSecret()
	updated, err := a.p.store.UpdateClient(c.Request.Context(), id, func(cl storage.Client) (storage.Client, error) {
		if cl.Static {
			return cl, errStaticClient
		}
		if newFositeClient(cl).IsPublic() {
			return cl, errPublicClient
		}
		cl.SecretHash = a.p.HashClientSecret(secret)
		cl.UpdatedAt = a.p.now().UTC()
		return cl, nil
	})
	switch {
	case errors.Is(err, errStaticClient):
		a.readOnly(c, id)
		return
	case errors.Is(err, errPublicClient):
		a.fail(c, newAdminError(http.StatusBadRequest, "invalid_request",
			"client %q is public (token_endpoint_auth_method \"none\") and has no secret; change its token_endpoint_auth_method with PUT to make it confidential", id))
		return
	case err != nil:
		a.storeFailed(c, id, err)
		return
	}
	a.p.audit(c.Request.Context(), eventClientSecretRotated, a.actor, a.auditAttrs(c, slog.String("client_id", id))...)
	c.JSON(http.StatusOK, withSecret(viewOf(updated), secret))
}

// errPublicClient aborts a secret rotation for a client that has no secret.
var errPublicClient = errors.New("public client")
