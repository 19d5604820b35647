package provider

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/templates"
)

// Cookies. Both are HttpOnly and SameSite=Lax, and Secure when the issuer is https.
const (
	cookieBrowser = "otpgate_browser" // binds login flows to one browser
	cookieSession = "otpgate_session" // the SSO browser session, when enabled
)

// contentSecurityPolicy allows only otpgate's own CSS and script; forms post
// back to otpgate, which redirects to the relying party (see allowRedirectTo).
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// cspSourcePattern is what a redirect URI's origin must look like to enter a
// CSP header: a scheme and an optional host[:port], nothing that could end
// the directive.
var cspSourcePattern = regexp.MustCompile(`^[a-z][a-z0-9+.-]*:(//[a-z0-9.\-]+(:[0-9]+)?|//\[[0-9a-f:.]+\](:[0-9]+)?)?$`)

// allowRedirectTo widens form-action to the origin of the flow's redirect URI
// on a page whose form can end in the redirect to the relying party (code,
// consent). Browsers check form-action against every hop of the redirect that
// answers a form, so with 'self' alone Chromium blocks the last hop and the
// login never reaches the relying party.
func (p *Provider) allowRedirectTo(c *gin.Context, flow storage.Flow) {
	var fr flowRequest
	if err := json.Unmarshal(flow.Request, &fr); err != nil {
		return
	}
	raw := fr.Form.Get("redirect_uri")
	if raw == "" { // fosite then uses the client's only registered URI
		if cl, err := p.lookupClient(c.Request.Context(), flow.ClientID); err == nil && len(cl.RedirectURIs) == 1 {
			raw = cl.RedirectURIs[0]
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return
	}
	src := strings.ToLower(u.Scheme) + ":" // a native app's private-use scheme
	if u.Host != "" {
		src += "//" + strings.ToLower(u.Host)
	}
	if !cspSourcePattern.MatchString(src) {
		p.log.Warn("login: redirect URI origin not usable in CSP form-action", "client", flow.ClientID)
		return
	}
	c.Header("Content-Security-Policy", strings.Replace(contentSecurityPolicy, "form-action 'self'", "form-action 'self' "+src, 1))
}

// securityHeaders is set on every response of the public listener.
func (p *Provider) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if p.secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.Next()
}

// render writes a page. The page is rendered to a buffer first so that a
// template failure becomes a clean error page, never half a page.
func (p *Provider) render(c *gin.Context, status int, name, locale string, page templates.Page) {
	var buf bytes.Buffer
	if err := templates.Render(&buf, name, locale, page); err != nil {
		p.log.Error("render page", "page", name, "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error\n"))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// renderError shows the error page in the browser's language.
func (p *Provider) renderError(c *gin.Context, status int, key string, args ...any) {
	locale := templates.Negotiate(c.Query("ui_locales"), c.GetHeader("Accept-Language"), p.opts.DefaultLocale)
	p.render(c, status, "error", locale, templates.Page{Status: status, Error: &templates.Message{Key: key, Args: args}})
}

// renderFlowError shows the error page in the flow's language.
func (p *Provider) renderFlowError(c *gin.Context, flow storage.Flow, status int, key string) {
	p.render(c, status, "error", flow.Locale, templates.Page{Status: status, Error: &templates.Message{Key: key}})
}

func (p *Provider) renderPhone(c *gin.Context, flow storage.Flow, status int, typed string, msg *templates.Message) {
	p.render(c, status, "phone", flow.Locale, templates.Page{
		ClientName:   p.clientName(c, flow.ClientID),
		CSRF:         p.csrfToken(flow),
		Action:       p.stepURL(flow.ID, stepPhone),
		Phone:        typed,
		PhoneExample: p.phoneExample,
		Error:        msg,
	})
}

func (p *Provider) renderCode(c *gin.Context, flow storage.Flow, status int, msg, notice *templates.Message) {
	page := templates.Page{
		ClientName:   p.clientName(c, flow.ClientID),
		CSRF:         p.csrfToken(flow),
		Action:       p.stepURL(flow.ID, stepCode),
		ResendAction: "/login/resend?flow=" + flow.ID + "&sig=" + p.stepSig(flow.ID, stepCode),
		PhoneMasked:  factors.MaskPhone(flow.Phone),
		PhoneLocked:  flow.PhoneLocked,
		CodeLength:   p.opts.CodeLength,
		Error:        msg,
		Notice:       notice,
	}
	if !flow.PhoneLocked {
		page.ChangeURL = p.stepURL(flow.ID, stepPhone)
	}
	p.allowRedirectTo(c, flow)
	if ch, ok := p.flowChallenge(c, flow); ok {
		if wait := p.resendWait(ch); wait > 0 {
			page.ResendIn = secondsCeil(wait)
		}
		page.ResendsLeft = max(0, 1+p.opts.MaxResends-ch.Sends)
	}
	p.render(c, status, "code", flow.Locale, page)
}

// resendWait is how long until ch may send another code (≤ 0: now).
// flowChallenge returns the flow's current challenge, without a store round
// trip when the flow has none yet.
func (p *Provider) flowChallenge(c *gin.Context, flow storage.Flow) (storage.Challenge, bool) {
	if flow.ChallengeID == "" {
		return storage.Challenge{}, false
	}
	ch, err := p.store.GetChallenge(c.Request.Context(), flow.ChallengeID)
	return ch, err == nil
}

func (p *Provider) resendWait(ch storage.Challenge) time.Duration {
	return ch.LastSentAt.Add(p.opts.ResendAfter).Sub(p.now())
}

func (p *Provider) clientName(c *gin.Context, id string) string {
	cl, err := p.lookupClient(c.Request.Context(), id)
	if err != nil || cl.Name == "" {
		return id
	}
	return cl.Name
}

// csrfToken is bound to the flow and the browser: a MAC, so nothing is stored.
func (p *Provider) csrfToken(flow storage.Flow) string {
	return mac(p.csrfKey, flow.ID, flow.BrowserID)
}

// checkCSRF answers the request with an error page when the form's token is wrong.
func (p *Provider) checkCSRF(c *gin.Context, flow storage.Flow) bool {
	if macEqual(c.PostForm("csrf_token"), p.csrfToken(flow)) {
		return true
	}
	p.log.Info("login: csrf token mismatch", "flow", flow.ID)
	p.renderFlowError(c, flow, http.StatusForbidden, "error.csrf")
	return false
}

// browserID returns this browser's binding id, setting the cookie on first use.
func (p *Provider) browserID(c *gin.Context) string {
	if id, err := c.Cookie(cookieBrowser); err == nil && len(id) >= 20 {
		return id
	}
	id := randomID()
	p.setCookie(c, cookieBrowser, id, 0)
	return id
}

// browserSession returns the browser's SSO session when SSO is on and it is valid.
func (p *Provider) browserSession(c *gin.Context) (storage.BrowserSession, bool) {
	if p.opts.SessionTTL <= 0 {
		return storage.BrowserSession{}, false
	}
	id, err := c.Cookie(cookieSession)
	if err != nil || id == "" {
		return storage.BrowserSession{}, false
	}
	s, err := p.store.GetBrowserSession(c.Request.Context(), id)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			p.log.Warn("session: cannot read", "err", err)
		}
		return storage.BrowserSession{}, false
	}
	return s, true
}

// startBrowserSession replaces any earlier session with a new one (a fresh id
// after every successful factor), when SSO is on.
func (p *Provider) startBrowserSession(c *gin.Context, s storage.BrowserSession) {
	if p.opts.SessionTTL <= 0 {
		return
	}
	ctx := c.Request.Context()
	if old, err := c.Cookie(cookieSession); err == nil && old != "" {
		_ = p.store.DeleteBrowserSession(ctx, old)
	}
	s.ID = randomID()
	s.ExpiresAt = p.now().Add(p.opts.SessionTTL)
	if err := p.store.CreateBrowserSession(ctx, s); err != nil {
		p.log.Warn("session: cannot create", "err", err)
		return
	}
	p.setCookie(c, cookieSession, s.ID, p.opts.SessionTTL)
}

func (p *Provider) setCookie(c *gin.Context, name, value string, ttl time.Duration) {
	ck := &http.Cookie{
		Name: name, Value: value, Path: "/",
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	}
	if ttl > 0 {
		ck.MaxAge = int(ttl / time.Second)
	}
	http.SetCookie(c.Writer, ck)
}

// randomID returns 128 random bits, base64url.
func randomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("provider: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
