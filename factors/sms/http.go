package sms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"
)

// DefaultTimeout bounds one request to a provider when its config sets none.
const DefaultTimeout = 10 * time.Second

// maxResponseBody bounds what is read of a provider's answer.
const maxResponseBody = 64 << 10

// NewHTTPClient returns the client a sender keeps for all its requests, so
// connections are reused (keep-alive). It never follows redirects: a 3xx to a
// POST is an answer to classify, not an invitation to post again. It has no
// overall timeout: each request gets its own through its context.
//
// Requests sent through it must not carry an Idempotency-Key header: with one,
// net/http may replay a POST on a new connection after the first one broke
// mid-way, which for an SMS means a second message.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	// Shorter than most servers' keep-alive timeout: a POST written to a
	// connection the server is closing at that moment fails as
	// FailureUnknown (it cannot be replayed), so idle connections are dropped
	// before servers usually drop them.
	t.IdleConnTimeout = 30 * time.Second
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// endpoint sends requests to one provider with a per-request timeout and
// classifies what a transport failure proves.
type endpoint struct {
	name    string // "orange", for error texts
	client  *http.Client
	timeout time.Duration
}

// response is a provider's answer, body read (bounded).
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends req and reads the answer within the timeout. A transport error is a
// *SendError: FailureUnavailable when the request was certainly not written
// (refused, DNS, TLS, a timeout while connecting), FailureUnknown when it was
// (the provider may have acted on it). req's URL is never quoted past its path,
// since a query may hold credentials.
func (e *endpoint) do(ctx context.Context, req *http.Request) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	// WroteRequest fires once the whole request has gone to the connection;
	// with an error, the server holds at most part of it and cannot act on it.
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			wrote.Store(true)
		}
	}}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, e.transportError(ctx, req, wrote.Load(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		// The status line arrived: the caller classifies by status. Only a
		// success needs the body, and then the message is sent anyway.
		body = nil
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

func (e *endpoint) transportError(ctx context.Context, req *http.Request, wrote bool, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s: %w", e.timeout, err)
	}
	where := fmt.Sprintf("%s: %s %s", e.name, req.Method, safeURL(req.URL))
	if !wrote {
		return unavailable(fmt.Errorf("%s: request not sent: %w", where, err))
	}
	return unknown(fmt.Errorf("%s: no answer after the request was sent (the message may have been accepted): %w", where, err))
}

// safeURL is u without user information, query or fragment.
func safeURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

// classifyStatus says what an unexpected HTTP status proves: 429 and 5xx are
// the provider's trouble and the message was not taken, except 504, which a
// gateway sends when the provider behind it did not answer in time and may
// have acted; a 3xx may follow a successful POST (post-redirect-get); any
// other 4xx refuses the request.
func classifyStatus(status int) Failure {
	switch {
	case status == http.StatusGatewayTimeout:
		return FailureUnknown
	case status == http.StatusTooManyRequests || status >= 500:
		return FailureUnavailable
	case status >= 400:
		return FailureUnavailable
	}
	return FailureUnknown
}

func classified(f Failure, err error) error { return &SendError{Failure: f, Err: err} }
