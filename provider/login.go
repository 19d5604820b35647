package provider

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/templates"
)

// Login steps. A flow moves phone → code → consent; each step's URL carries the
// flow id and an HMAC of (flow id, step), and the server only ever serves the
// step the stored flow is at.
const (
	stepPhone   = "phone"
	stepCode    = "code"
	stepConsent = "consent"
)

// flowRequest is what a flow keeps of the authorization request: the effective
// parameters (pushed ones included) so the request can be validated again by
// fosite when the login completes.
type flowRequest struct {
	Form        url.Values `json:"form"`
	RequestedAt time.Time  `json:"requested_at"`
}

func (p *Provider) registerLogin(r gin.IRouter) {
	r.GET("/login/phone", p.handlePhonePage)
	r.POST("/login/phone", p.handlePhoneSubmit)
	r.GET("/login/code", p.handleCodePage)
	r.POST("/login/code", p.handleCodeSubmit)
	r.POST("/login/resend", p.handleResend)
	r.GET("/login/consent", p.handleConsentPage)
	r.POST("/login/consent", p.handleConsentSubmit)
	r.StaticFS("/static", http.FS(templates.Static()))
}

// handleAuthorize validates the authorization request, then either answers at
// once (prompt=none, or a valid browser session and remembered consent) or
// starts a login flow bound to this browser.
func (p *Provider) handleAuthorize(c *gin.Context) {
	ctx := c.Request.Context()
	ar, err := p.oauth2.NewAuthorizeRequest(ctx, c.Request)
	if err != nil {
		p.authorizeError(c, ar, err)
		return
	}
	client, ok := ar.GetClient().(*fositeClient)
	if !ok {
		p.authorizeError(c, ar, fosite.ErrServerError.WithDebug("unexpected client type"))
		return
	}
	if err := p.checkBeforeLogin(ctx, ar, client); err != nil {
		p.authorizeError(c, ar, err)
		return
	}
	form := ar.GetRequestForm()
	prompt := fosite.Arguments(fosite.RemoveEmpty(strings.Split(form.Get("prompt"), " ")))
	pushed := strings.HasPrefix(c.Request.Form.Get("request_uri"), p.fconfig.PushedAuthorizeRequestURIPrefix)

	// A login_hint pushed by an authenticated client fixes the number (second
	// factor); one in the URL only pre-fills the field.
	var hint string
	if h := form.Get("login_hint"); h != "" {
		hint, err = p.parseLoginHint(h)
		if err != nil && pushed {
			p.authorizeError(c, ar, fosite.ErrInvalidRequest.WithHint("The login_hint is not a valid phone number."))
			return
		}
	}
	locked := pushed && hint != ""

	now := p.now().UTC()
	session, hasSession := p.browserSession(c)
	if hasSession && hint != "" && session.Phone != hint {
		hasSession = false // the RP asks about another number: prove that one
	}
	if hasSession && (prompt.Has("login") || !satisfiesMaxAge(form.Get("max_age"), session.AuthTime, now)) {
		hasSession = false
	}

	if prompt.Has("none") {
		if !hasSession {
			p.authorizeError(c, ar, fosite.ErrLoginRequired.WithHint("No browser session; prompt=none forbids showing a login page."))
			return
		}
		subject := p.subject(session.Phone)
		if p.needsConsent(ctx, client, subject, ar.GetRequestedScopes(), prompt) {
			p.authorizeError(c, ar, fosite.ErrConsentRequired.WithHint("The user has not consented; prompt=none forbids asking."))
			return
		}
		p.finish(c, ar, client, authenticated{
			Subject: subject, Phone: session.Phone, AuthTime: session.AuthTime, AMR: session.AMR, RequestedAt: now,
		})
		return
	}

	browserID := p.browserID(c)
	raw, err := json.Marshal(flowRequest{Form: stripPushed(form), RequestedAt: now})
	if err != nil {
		p.authorizeError(c, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	flow := storage.Flow{
		ID:          randomID(),
		Step:        stepPhone,
		ClientID:    client.GetID(),
		Request:     raw,
		BrowserID:   browserID,
		Locale:      templates.Negotiate(form.Get("ui_locales"), c.GetHeader("Accept-Language"), p.opts.DefaultLocale),
		Phone:       hint,
		PhoneLocked: locked,
		ExpiresAt:   now.Add(p.opts.FlowTTL),
	}
	if hasSession {
		flow.Phone = session.Phone
		flow.Subject = p.subject(session.Phone)
		flow.AuthTime = session.AuthTime
		flow.AMR = session.AMR
		if !p.needsConsent(ctx, client, flow.Subject, ar.GetRequestedScopes(), prompt) {
			p.finish(c, ar, client, authenticated{
				Subject: flow.Subject, Phone: flow.Phone, AuthTime: flow.AuthTime, AMR: flow.AMR, RequestedAt: now,
			})
			return
		}
		flow.Step = stepConsent
	}
	if err := p.store.CreateFlow(ctx, flow); err != nil {
		p.authorizeError(c, ar, fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error()))
		return
	}
	if locked && flow.Step == stepPhone {
		// The number is fixed: send the code right away.
		if _, ok := p.startChallenge(c, flow, hint); !ok {
			return
		}
		c.Redirect(http.StatusSeeOther, p.stepURL(flow.ID, stepCode))
		return
	}
	c.Redirect(http.StatusSeeOther, p.stepURL(flow.ID, flow.Step))
}

// checkBeforeLogin refuses, before any SMS is sent, what fosite would only
// refuse once the user has logged in: its PKCE handler runs in
// NewAuthorizeResponse (code_challenge) and its ID token strategy at the token
// endpoint (nonce length), so without this a doomed request would still cost
// the user a code and the operator an SMS.
func (p *Provider) checkBeforeLogin(ctx context.Context, ar fosite.AuthorizeRequester, client *fositeClient) error {
	form := ar.GetRequestForm()
	challenge, nonce := form.Get("code_challenge"), form.Get("nonce")
	minEntropy := p.fconfig.GetMinParameterEntropy(ctx)
	switch {
	case challenge == "" && client.IsPublic():
		return fosite.ErrInvalidRequest.WithHint("This client must include a code_challenge (PKCE with S256).")
	case challenge != "" && form.Get("code_challenge_method") != "S256":
		return fosite.ErrInvalidRequest.WithHint("Clients must use code_challenge_method=S256.")
	case nonce != "" && len(nonce) < minEntropy:
		return fosite.ErrInsufficientEntropy.WithHintf("Parameter 'nonce' must be at least %d characters long.", minEntropy)
	}
	return nil
}

// authorizeError answers a refused authorization request: a page when the
// redirect URI cannot be trusted (unknown client, unregistered URI), otherwise
// the standard redirect with error, error_description and state.
func (p *Provider) authorizeError(c *gin.Context, ar fosite.AuthorizeRequester, err error) {
	err = unavailable(err)
	p.logOAuthError("authorize: refused request", err)
	if ar == nil || !ar.IsRedirectURIValid() {
		rfc := fosite.ErrorToRFC6749Error(err)
		status := http.StatusBadRequest
		key := "error.bad_request"
		if rfc.CodeField >= 500 {
			status, key = http.StatusServiceUnavailable, "error.unavailable"
		}
		p.renderError(c, status, key)
		return
	}
	p.oauth2.WriteAuthorizeError(c.Request.Context(), c.Writer, ar, err)
}

func (p *Provider) handlePhonePage(c *gin.Context) {
	flow, ok := p.loadFlow(c, stepPhone)
	if !ok {
		return
	}
	p.renderPhone(c, flow, http.StatusOK, flow.Phone, nil)
}

func (p *Provider) handlePhoneSubmit(c *gin.Context) {
	flow, ok := p.loadFlow(c, stepPhone)
	if !ok || !p.checkCSRF(c, flow) {
		return
	}
	input := strings.TrimSpace(c.PostForm("phone"))
	phone, err := factors.ParsePhone(input, p.opts.DefaultRegion)
	if err != nil {
		p.renderPhone(c, flow, http.StatusBadRequest, input, &templates.Message{Key: "error.phone_invalid"})
		return
	}
	if err := p.opts.PhonePolicy.Check(phone); err != nil {
		p.renderPhone(c, flow, http.StatusBadRequest, input, &templates.Message{Key: "error.phone_region"})
		return
	}
	// Going back to change the number is no way around the resend cooldown:
	// otherwise every submission of this form would send an SMS at once.
	if ch, ok := p.flowChallenge(c, flow); ok {
		if wait := p.resendWait(ch); wait > 0 {
			p.renderPhone(c, flow, http.StatusTooManyRequests, input, &templates.Message{Key: "error.resend_too_soon", Args: []any{secondsCeil(wait)}})
			return
		}
	}
	if _, ok := p.startChallenge(c, flow, phone.E164); !ok {
		return
	}
	c.Redirect(http.StatusSeeOther, p.stepURL(flow.ID, stepCode))
}

// startChallenge sends the first code to phone and moves the flow to the code
// step. On failure it has already answered the request.
func (p *Provider) startChallenge(c *gin.Context, flow storage.Flow, phone string) (storage.Flow, bool) {
	ctx := c.Request.Context()
	ch, err := p.factor.Start(ctx, factors.StartRequest{FlowID: flow.ID, Phone: phone, Locale: flow.Locale, ClientID: flow.ClientID, IP: c.ClientIP()})
	if err != nil {
		r := p.sendRefused(c, flow, phone, err)
		if flow.PhoneLocked {
			p.renderError(c, r.status, r.msg.Key, r.msg.Args...)
		} else {
			p.renderPhone(c, flow, r.status, factors.MaskPhone(phone), r.msg)
		}
		return flow, false
	}
	p.loginAudit(c, eventSMSSent, flow, phone)
	old := flow.ChallengeID
	flow, err = p.updateFlow(ctx, flow, func(f storage.Flow) (storage.Flow, error) {
		if f.Step != stepPhone && f.Step != stepCode {
			return f, errStepChanged
		}
		f.Phone, f.ChallengeID, f.Step = phone, ch.ID, stepCode
		return f, nil
	})
	if err != nil {
		p.flowError(c, err)
		return flow, false
	}
	if old != "" && old != ch.ID {
		if err := p.store.DeleteChallenge(ctx, old); err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.log.Warn("login: cannot delete replaced challenge", "flow", flow.ID, "err", err)
		}
	}
	return flow, true
}

func (p *Provider) handleCodePage(c *gin.Context) {
	flow, ok := p.loadFlow(c, stepCode)
	if !ok {
		return
	}
	var notice *templates.Message
	if c.Query("sent") == "1" {
		notice = &templates.Message{Key: "notice.code_resent"}
	}
	p.renderCode(c, flow, http.StatusOK, nil, notice)
}

func (p *Provider) handleCodeSubmit(c *gin.Context) {
	flow, ok := p.loadFlow(c, stepCode)
	if !ok || !p.checkCSRF(c, flow) {
		return
	}
	ctx := c.Request.Context()
	res, err := p.factor.Verify(ctx, flow.ChallengeID, c.PostForm("code"))
	if err != nil {
		var (
			invalid *factors.InvalidCodeError
			lim     *factors.LimitError
		)
		switch {
		case errors.As(err, &lim):
			// Too many wrong answers for this number across challenges: a
			// new code would not help, only time.
			p.loginAudit(c, eventChallengeLocked, flow, flow.Phone, slog.String("limit", lim.Reason), slog.Duration("retry_after", lim.RetryAfter.Round(time.Second)))
			setRetryAfter(c, lim.RetryAfter)
			p.renderCode(c, flow, http.StatusTooManyRequests, &templates.Message{Key: "error.attempts_limited", Args: []any{minutesCeil(lim.RetryAfter)}}, nil)
		case errors.As(err, &invalid):
			p.loginAudit(c, eventChallengeFailed, flow, flow.Phone, slog.String("outcome", "wrong_code"), slog.Int("attempts_left", invalid.Remaining))
			msg := &templates.Message{Key: "error.code_wrong", Args: []any{invalid.Remaining}}
			if invalid.Remaining == 1 {
				msg = &templates.Message{Key: "error.code_wrong_last"}
			}
			p.renderCode(c, flow, http.StatusBadRequest, msg, nil)
		case errors.Is(err, factors.ErrTooManyAttempts):
			p.loginAudit(c, eventChallengeLocked, flow, flow.Phone, slog.String("limit", "challenge_attempts"))
			p.renderCode(c, flow, http.StatusBadRequest, &templates.Message{Key: "error.code_locked"}, nil)
		case errors.Is(err, factors.ErrExpired):
			p.loginAudit(c, eventChallengeFailed, flow, flow.Phone, slog.String("outcome", "expired"))
			p.renderCode(c, flow, http.StatusBadRequest, &templates.Message{Key: "error.code_expired"}, nil)
		case errors.Is(err, factors.ErrNotFound):
			p.renderFlowError(c, flow, http.StatusBadRequest, "error.flow_invalid")
		default:
			p.log.Error("login: verify failed", "flow", flow.ID, "err", err)
			p.renderFlowError(c, flow, http.StatusServiceUnavailable, "error.unavailable")
		}
		return
	}
	now := p.now().UTC()
	subject := p.subject(res.Phone)
	p.loginAudit(c, eventChallengeVerified, flow, res.Phone, slog.Any("amr", res.AMR))
	p.startBrowserSession(c, storage.BrowserSession{Subject: subject, Phone: res.Phone, AuthTime: now, AMR: res.AMR})
	p.continueAfterLogin(c, flow, func(f storage.Flow) (storage.Flow, error) {
		if f.Step != stepCode {
			return f, errStepChanged
		}
		f.Subject, f.Phone, f.AuthTime, f.AMR, f.Step = subject, res.Phone, now, res.AMR, stepConsent
		f.ChallengeID = ""
		return f, nil
	})
}

func (p *Provider) handleResend(c *gin.Context) {
	flow, ok := p.loadFlow(c, stepCode)
	if !ok || !p.checkCSRF(c, flow) {
		return
	}
	_, err := p.factor.Resend(c.Request.Context(), factors.ResendRequest{ChallengeID: flow.ChallengeID, Locale: flow.Locale, ClientID: flow.ClientID, IP: c.ClientIP()})
	if err != nil {
		var (
			rl  *factors.RateLimitedError
			lim *factors.LimitError
		)
		switch {
		case errors.As(err, &lim) && !errors.Is(err, factors.ErrTooManyAttempts):
			r := p.sendRefused(c, flow, flow.Phone, err)
			p.renderCode(c, flow, r.status, r.msg, nil)
		case errors.As(err, &rl):
			p.renderCode(c, flow, http.StatusTooManyRequests, &templates.Message{Key: "error.resend_too_soon", Args: []any{secondsCeil(rl.RetryAfter)}}, nil)
		case errors.Is(err, factors.ErrTooManyResends):
			p.renderCode(c, flow, http.StatusTooManyRequests, &templates.Message{Key: "error.resend_limit"}, nil)
		case errors.Is(err, factors.ErrTooManyAttempts):
			p.renderCode(c, flow, http.StatusBadRequest, &templates.Message{Key: "error.code_locked"}, nil)
		case errors.Is(err, factors.ErrNotFound):
			p.renderFlowError(c, flow, http.StatusBadRequest, "error.flow_invalid")
		default:
			p.log.Warn("login: resend failed", "flow", flow.ID, "err", err)
			p.renderCode(c, flow, http.StatusServiceUnavailable, &templates.Message{Key: "error.delivery"}, nil)
		}
		return
	}
	p.loginAudit(c, eventSMSSent, flow, flow.Phone, slog.Bool("resend", true))
	c.Redirect(http.StatusSeeOther, p.stepURL(flow.ID, stepCode)+"&sent=1")
}

// continueAfterLogin shows the consent page when it is needed, or completes the
// authorization.
//
// verified turns flow, as the code step loaded it, into the verified flow.
// The verified flow is stored only when the consent page needs it; without
// consent it goes straight to finishFlow, whose DeleteFlow lets exactly one
// request complete the flow (the factor already let exactly one verify).
func (p *Provider) continueAfterLogin(c *gin.Context, flow storage.Flow, verified func(storage.Flow) (storage.Flow, error)) {
	next, err := verified(flow)
	if err != nil {
		p.flowError(c, err)
		return
	}
	ar, client, ok := p.resume(c, next)
	if !ok {
		return
	}
	prompt := fosite.Arguments(fosite.RemoveEmpty(strings.Split(ar.GetRequestForm().Get("prompt"), " ")))
	if p.needsConsent(c.Request.Context(), client, next.Subject, ar.GetRequestedScopes(), prompt) {
		if _, err := p.updateFlow(c.Request.Context(), flow, verified); err != nil {
			p.flowError(c, err)
			return
		}
		c.Redirect(http.StatusSeeOther, p.stepURL(flow.ID, stepConsent))
		return
	}
	p.finishFlow(c, next, ar, client)
}

func (p *Provider) handleConsentPage(c *gin.Context) {
	flow, ok := p.loadFlow(c, stepConsent)
	if !ok {
		return
	}
	ar, client, ok := p.resume(c, flow)
	if !ok {
		return
	}
	p.allowRedirectTo(c, flow)
	p.render(c, http.StatusOK, "consent", flow.Locale, templates.Page{
		ClientName:  client.displayName(),
		CSRF:        p.csrfToken(flow),
		Action:      p.stepURL(flow.ID, stepConsent),
		PhoneMasked: factors.MaskPhone(flow.Phone),
		Scopes:      ar.GetRequestedScopes(),
	})
}

func (p *Provider) handleConsentSubmit(c *gin.Context) {
	flow, ok := p.loadFlow(c, stepConsent)
	if !ok || !p.checkCSRF(c, flow) {
		return
	}
	ar, client, ok := p.resume(c, flow)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if c.PostForm("decision") != "allow" {
		p.deleteFlow(ctx, flow.ID)
		p.oauth2.WriteAuthorizeError(ctx, c.Writer, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
		return
	}
	now := p.now().UTC()
	err := p.store.SaveConsent(ctx, storage.Consent{
		Subject: flow.Subject, ClientID: client.GetID(), Scopes: ar.GetRequestedScopes(),
		GrantedAt: now, ExpiresAt: now.Add(p.opts.ConsentTTL),
	})
	if err != nil {
		p.log.Error("consent: cannot save", "flow", flow.ID, "err", err)
		p.renderFlowError(c, flow, http.StatusServiceUnavailable, "error.unavailable")
		return
	}
	p.finishFlow(c, flow, ar, client)
}

// finishFlow completes a verified flow: the flow is consumed first, so a second
// submission can never yield a second authorization code.
func (p *Provider) finishFlow(c *gin.Context, flow storage.Flow, ar fosite.AuthorizeRequester, client *fositeClient) {
	if flow.Subject == "" {
		p.renderFlowError(c, flow, http.StatusBadRequest, "error.flow_invalid")
		return
	}
	if err := p.store.DeleteFlow(c.Request.Context(), flow.ID); err != nil {
		p.flowError(c, err)
		return
	}
	var req flowRequest
	_ = json.Unmarshal(flow.Request, &req)
	p.finish(c, ar, client, authenticated{
		Subject: flow.Subject, Phone: flow.Phone, AuthTime: flow.AuthTime, AMR: flow.AMR, RequestedAt: req.RequestedAt,
	})
}

// finish grants the requested scopes and answers the relying party with an
// authorization code.
func (p *Provider) finish(c *gin.Context, ar fosite.AuthorizeRequester, client *fositeClient, a authenticated) {
	ctx := c.Request.Context()
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	a.SigningAlg = client.idTokenAlg
	resp, err := p.oauth2.NewAuthorizeResponse(ctx, ar, sessionFor(a, ar.GetGrantedScopes()))
	if err != nil {
		p.authorizeError(c, ar, err)
		return
	}
	p.oauth2.WriteAuthorizeResponse(ctx, c.Writer, ar, resp)
}

// resume validates the flow's authorization request again (the client may have
// changed since) and returns it.
func (p *Provider) resume(c *gin.Context, flow storage.Flow) (fosite.AuthorizeRequester, *fositeClient, bool) {
	var fr flowRequest
	if err := json.Unmarshal(flow.Request, &fr); err != nil {
		p.log.Error("login: corrupt flow request", "flow", flow.ID, "err", err)
		p.renderFlowError(c, flow, http.StatusBadRequest, "error.flow_invalid")
		return nil, nil, false
	}
	r, err := http.NewRequestWithContext(c.Request.Context(), http.MethodGet, "/oauth2/auth?"+fr.Form.Encode(), nil)
	if err != nil {
		p.renderFlowError(c, flow, http.StatusBadRequest, "error.flow_invalid")
		return nil, nil, false
	}
	ar, err := p.oauth2.NewAuthorizeRequest(c.Request.Context(), r)
	if err != nil {
		p.deleteFlow(c.Request.Context(), flow.ID)
		p.authorizeError(c, ar, err)
		return nil, nil, false
	}
	client, ok := ar.GetClient().(*fositeClient)
	if !ok {
		p.authorizeError(c, ar, fosite.ErrServerError.WithDebug("unexpected client type"))
		return nil, nil, false
	}
	return ar, client, true
}

// needsConsent reports whether the user must be asked: never for first-party
// clients (skip_consent), always with prompt=consent, otherwise unless a
// remembered grant covers every requested scope.
func (p *Provider) needsConsent(ctx context.Context, client *fositeClient, subject string, scopes fosite.Arguments, prompt fosite.Arguments) bool {
	if client.skipConsent {
		return false
	}
	if prompt.Has("consent") {
		return true
	}
	grant, err := p.store.GetConsent(ctx, subject, client.GetID())
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			p.log.Warn("consent: cannot read grant", "client", client.GetID(), "err", err)
		}
		return true
	}
	return !fosite.Arguments(grant.Scopes).Has(scopes...)
}

// errStepChanged aborts a flow update that lost a race with another request.
var errStepChanged = errors.New("flow step changed")

// loadFlow checks the step signature, loads the flow, checks it belongs to this
// browser and is at step, and answers the request itself when anything is off.
func (p *Provider) loadFlow(c *gin.Context, step string) (storage.Flow, bool) {
	id, sig := c.Query("flow"), c.Query("sig")
	if id == "" || !macEqual(sig, p.stepSig(id, step)) {
		p.renderError(c, http.StatusBadRequest, "error.flow_invalid")
		return storage.Flow{}, false
	}
	flow, err := p.store.GetFlow(c.Request.Context(), id)
	if err != nil {
		p.flowError(c, err)
		return storage.Flow{}, false
	}
	if cookie, _ := c.Cookie(cookieBrowser); cookie == "" || !macEqual(cookie, flow.BrowserID) {
		p.renderFlowError(c, flow, http.StatusForbidden, "error.other_browser")
		return storage.Flow{}, false
	}
	if flow.Step != step {
		// Going back from the code page to change the number is allowed unless
		// the relying party fixed it; any other mismatch goes to the flow's step.
		if !(step == stepPhone && flow.Step == stepCode && !flow.PhoneLocked) {
			c.Redirect(http.StatusSeeOther, p.stepURL(flow.ID, flow.Step))
			return storage.Flow{}, false
		}
	}
	return flow, true
}

// flowError answers a failed flow read or update.
func (p *Provider) flowError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		p.renderError(c, http.StatusGone, "error.flow_expired")
	case errors.Is(err, errStepChanged), errors.Is(err, storage.ErrConflict):
		p.renderError(c, http.StatusConflict, "error.flow_invalid")
	default:
		p.log.Error("login: store failure", "err", err)
		p.renderError(c, http.StatusServiceUnavailable, "error.unavailable")
	}
}

// updateFlow applies change to flow, which the request has just read, and
// writes it back with one compare-and-set. When another request changed the
// flow meanwhile, it falls back to UpdateFlow, which reads the flow again and
// applies change to that: change must check the step it expects.
func (p *Provider) updateFlow(ctx context.Context, flow storage.Flow, change func(storage.Flow) (storage.Flow, error)) (storage.Flow, error) {
	next, err := change(flow)
	if err != nil {
		return storage.Flow{}, err
	}
	f, err := p.store.ReplaceFlow(ctx, next)
	if errors.Is(err, storage.ErrConflict) {
		return p.store.UpdateFlow(ctx, flow.ID, change)
	}
	return f, err
}

func (p *Provider) deleteFlow(ctx context.Context, id string) {
	if err := p.store.DeleteFlow(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		p.log.Warn("login: cannot delete flow", "flow", id, "err", err)
	}
}

// stepSig binds a step URL to its flow.
func (p *Provider) stepSig(flowID, step string) string { return mac(p.stepKey, flowID, step) }

func (p *Provider) stepURL(flowID, step string) string {
	return "/login/" + step + "?flow=" + url.QueryEscape(flowID) + "&sig=" + p.stepSig(flowID, step)
}

// subject is the stable, opaque identifier of a phone number: an HMAC under a
// key derived from the system secret, never the number itself.
func (p *Provider) subject(e164 string) string { return mac(p.subjectKey, e164) }

// stripPushed removes request_uri so that a resumed request is validated from
// its (already merged) parameters.
func stripPushed(form url.Values) url.Values {
	out := url.Values{}
	for k, v := range form {
		if k != "request_uri" {
			out[k] = append([]string(nil), v...)
		}
	}
	return out
}

// satisfiesMaxAge reports whether an authentication at authTime is recent
// enough for the request's max_age (absent or invalid: always).
func satisfiesMaxAge(maxAge string, authTime, now time.Time) bool {
	if maxAge == "" {
		return true
	}
	secs, err := strconv.ParseInt(maxAge, 10, 64)
	if err != nil || secs < 0 {
		return true
	}
	return now.Sub(authTime) <= time.Duration(secs)*time.Second
}

func secondsCeil(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

func minutesCeil(d time.Duration) int {
	m := int((d + time.Minute - 1) / time.Minute)
	if m < 1 {
		m = 1
	}
	return m
}
