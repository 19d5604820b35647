package provider

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/templates"
)

// DefaultMaxBodyBytes bounds request bodies on the public listener: a login
// form, a token request or a pushed (even signed) authorization request is
// far smaller.
const DefaultMaxBodyBytes = 64 << 10

// Audit events of the hosted login and the token endpoint. Each carries the
// client, the flow, the client IP, the masked number and guard.PhoneHash of
// it (to correlate events about one number); never a code.
const (
	eventSMSSent           = "sms.sent"
	eventSMSRefused        = "sms.refused"
	eventChallengeVerified = "challenge.verified"
	eventChallengeFailed   = "challenge.failed"
	eventChallengeLocked   = "challenge.locked"
	eventTokenIssued       = "token.issued"
)

// actorEndUser is who acts in login events: the person at the browser.
const actorEndUser = "end-user"

// loginAudit writes a login audit event for flow and phone (E.164, may be "").
func (p *Provider) loginAudit(c *gin.Context, event string, flow storage.Flow, phone string, attrs ...slog.Attr) {
	all := make([]slog.Attr, 0, len(attrs)+5)
	all = append(all,
		slog.String("client", flow.ClientID),
		slog.String("flow", flow.ID),
		slog.String("ip", c.ClientIP()),
	)
	all = append(all, phoneAttrs(p.guardKey, phone)...)
	p.audit(c.Request.Context(), event, actorEndUser, append(all, attrs...)...)
}

// auditTokenIssued writes token.issued for a granted token request: the
// client acts, for the subject it received.
func (p *Provider) auditTokenIssued(c *gin.Context, ar fosite.AccessRequester) {
	client := ar.GetClient().GetID()
	attrs := []slog.Attr{
		slog.String("client", client),
		slog.String("grant_type", strings.Join(ar.GetGrantTypes(), " ")),
		slog.String("ip", c.ClientIP()),
	}
	if s, ok := ar.GetSession().(*openid.DefaultSession); ok {
		attrs = append(attrs, slog.String("subject", s.Subject))
		if s.Claims != nil {
			if phone, _ := s.Claims.Extra[claimPhoneNumber].(string); phone != "" {
				attrs = append(attrs, phoneAttrs(p.guardKey, phone)...)
			}
		}
	}
	p.audit(c.Request.Context(), eventTokenIssued, "client:"+client, attrs...)
}

// phoneAttrs are the masked number and its keyed hash, or nothing.
func phoneAttrs(key []byte, phone string) []slog.Attr {
	if phone == "" {
		return nil
	}
	return []slog.Attr{
		slog.String("phone", factors.MaskPhone(phone)),
		slog.String("phone_hash", guard.PhoneHash(key, phone)),
	}
}

// refusal is how a page answers a refused send: status, message and, for a
// limit, the Retry-After header.
type refusal struct {
	status     int
	msg        *templates.Message
	retryAfter time.Duration
}

// sendRefused maps an error of Factor.Start or Resend to the page's answer,
// sets Retry-After, and audits or logs it. Every limit answers 429, the
// paused country and the spent budget included: abuse is no server error,
// and must not page whoever watches the 5xx rate. The user learns when to try again
// and whether the whole country or service is paused, never which limit
// fired; the log gets the limit's name.
func (p *Provider) sendRefused(c *gin.Context, flow storage.Flow, phone string, err error) refusal {
	var (
		lim *factors.LimitError
		rl  *factors.RateLimitedError
		r   refusal
	)
	isLimit := errors.As(err, &lim)
	switch {
	case errors.Is(err, factors.ErrNumberTypeNotAllowed):
		r = refusal{status: http.StatusBadRequest, msg: &templates.Message{Key: "error.phone_type"}}
	case isLimit && errors.Is(err, factors.ErrCountryUnavailable):
		r = refusal{http.StatusTooManyRequests, &templates.Message{Key: "error.country_unavailable"}, lim.RetryAfter}
	case isLimit && errors.Is(err, factors.ErrSMSUnavailable):
		r = refusal{http.StatusTooManyRequests, &templates.Message{Key: "error.sms_unavailable"}, lim.RetryAfter}
	case isLimit:
		r = refusal{http.StatusTooManyRequests, &templates.Message{Key: "error.rate_limited", Args: []any{minutesCeil(lim.RetryAfter)}}, lim.RetryAfter}
	case errors.As(err, &rl):
		r = refusal{http.StatusTooManyRequests, &templates.Message{Key: "error.rate_limited", Args: []any{minutesCeil(rl.RetryAfter)}}, rl.RetryAfter}
	case errors.Is(err, factors.ErrRegionNotAllowed):
		r = refusal{status: http.StatusBadRequest, msg: &templates.Message{Key: "error.phone_region"}}
	case errors.Is(err, factors.ErrInvalidPhone):
		r = refusal{status: http.StatusBadRequest, msg: &templates.Message{Key: "error.phone_invalid"}}
	default:
		p.log.Warn("login: cannot send a code", "flow", flow.ID, "phone", factors.MaskPhone(phone), "err", err)
		return refusal{status: http.StatusServiceUnavailable, msg: &templates.Message{Key: "error.delivery"}}
	}
	attrs := []slog.Attr{slog.Int("status", r.status)}
	if isLimit {
		attrs = append(attrs, slog.String("limit", lim.Reason))
	} else {
		attrs = append(attrs, slog.String("limit", "policy"), slog.String("err", err.Error()))
	}
	if r.retryAfter > 0 {
		setRetryAfter(c, r.retryAfter)
		attrs = append(attrs, slog.Duration("retry_after", r.retryAfter.Round(time.Second)))
	}
	p.loginAudit(c, eventSMSRefused, flow, phone, attrs...)
	return r
}

// setRetryAfter sets Retry-After in whole seconds, rounded up (RFC 9110 §10.2.3).
func setRetryAfter(c *gin.Context, d time.Duration) {
	c.Header("Retry-After", strconv.Itoa(max(1, secondsCeil(d))))
}

// limitBody refuses a body over MaxBodyBytes with 413 before any handler
// reads it: gin and fosite parse forms without a bound of their own that
// fits a login page. The body is read here, so a slow or endless one fails
// here too.
func (p *Provider) limitBody(c *gin.Context) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody {
		c.Next()
		return
	}
	limit := p.opts.MaxBodyBytes
	if r.ContentLength > limit {
		p.bodyTooLarge(c)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			p.bodyTooLarge(c)
			return
		}
		c.AbortWithStatus(http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	c.Next()
}

func (p *Provider) bodyTooLarge(c *gin.Context) {
	c.Header("Connection", "close")
	p.renderError(c, http.StatusRequestEntityTooLarge, "error.bad_request")
	c.Abort()
}

// warnUntrustedForwarding logs once when a request carries X-Forwarded-For
// from a peer that is not a trusted proxy: behind a load balancer missing
// from http.trusted_proxies, every user shares its address and the per-IP
// limit soon refuses them all.
func (p *Provider) warnUntrustedForwarding(c *gin.Context) {
	if c.GetHeader("X-Forwarded-For") != "" && c.RemoteIP() == c.ClientIP() && !p.warnedForwarded.Swap(true) {
		p.log.Warn("http: X-Forwarded-For received from an address that is not in http.trusted_proxies, and ignored; "+
			"if a load balancer forwards to otpgate, list it there, or all its users share one address for the per-IP limits",
			"peer", c.RemoteIP())
	}
	c.Next()
}

// parseProxies parses trusted proxies as gin's SetTrustedProxies takes them:
// IP addresses (a one-address prefix) or CIDR ranges.
func parseProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if prefix, err := netip.ParsePrefix(s); err == nil {
			out = append(out, prefix.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("provider: trusted proxy %q is neither an IP address nor a CIDR range", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
