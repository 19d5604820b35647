package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchOptions configure one load run against a running otpgate.
type benchOptions struct {
	Issuer       string        // the provider's issuer URL (discovery is read there)
	ClientID     string        // a client with skip_consent and RedirectURI registered
	ClientSecret string        // empty: a public client (PKCE only)
	RedirectURI  string        // never requested: the code is read from the redirect
	Outbox       string        // the dev outbox JSON URL the codes are read from
	Concurrency  int           // virtual users, each one login at a time
	Duration     time.Duration // how long new logins start
	Logins       int           // stop after starting this many (0: no limit)
	Pending      bool          // stop each login after the phone step (the SMS is sent)
	PhonePrefix  string        // E.164 prefix of the random numbers, e.g. "+3361"
	Progress     io.Writer     // a line per second; nil for none
	Now          func() time.Time
}

// The timed steps of a login, in order. Reading the SMS from the outbox is
// measured too but is no step: a real user reads a phone, not an endpoint.
const (
	benchAuthorize = iota // GET /oauth2/auth → 303 → GET /login/phone
	benchPhone            // POST /login/phone → 303 → GET /login/code
	benchCode             // POST /login/code → 303 to the redirect URI with the code
	benchToken            // POST /oauth2/token → ID token
	benchOutbox           // GET the dev outbox until the code is there
	benchSteps
)

var benchStepNames = [benchSteps]string{"authorize", "phone", "code", "token", "outbox"}

// benchResult is what a run measured; --json prints it as is.
type benchResult struct {
	Issuer          string           `json:"issuer"`
	ClientID        string           `json:"client_id"`
	Concurrency     int              `json:"concurrency"`
	Pending         bool             `json:"pending,omitempty"`
	Seconds         float64          `json:"seconds"`
	Completed       int64            `json:"completed"`
	LoginsPerSecond float64          `json:"logins_per_second"`
	Errors          int64            `json:"errors"`
	IDTokenAlg      string           `json:"id_token_alg,omitempty"` // the signature algorithm of the ID tokens received
	ErrorReasons    map[string]int64 `json:"error_reasons,omitempty"`
	Steps           []benchStepStats `json:"steps"`
}

// benchStepStats are one step's latencies, in milliseconds.
type benchStepStats struct {
	Name  string  `json:"name"`
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// benchEndpoints are the provider's endpoints, from discovery.
type benchEndpoints struct {
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
}

// benchRun is the shared state of one run.
type benchRun struct {
	o         benchOptions
	ep        benchEndpoints
	transport *http.Transport
	phoneBase int64 // random start of the phone number sequence

	started   atomic.Int64 // logins started (numbers handed out)
	completed atomic.Int64
	failed    atomic.Int64
	alg       atomic.Pointer[string] // of the first ID token received

	mu      sync.Mutex
	reasons map[string]int64
	samples [benchSteps][]time.Duration
	totals  []time.Duration // authorize+phone+code+token of each complete login
}

// benchError is a failed login: the step it failed at and why, without
// anything random in the reason so that failures group.
type benchError struct {
	step   int
	reason string
}

func (e *benchError) Error() string { return benchStepNames[e.step] + ": " + e.reason }

func benchFail(step int, format string, args ...any) error {
	return &benchError{step: step, reason: fmt.Sprintf(format, args...)}
}

// runBench runs o.Concurrency virtual users, each performing complete logins
// one after the other, for o.Duration (or until o.Logins have started), and
// returns the latencies of every step of the logins that completed.
func runBench(ctx context.Context, o benchOptions) (benchResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Issuer = strings.TrimSuffix(o.Issuer, "/")
	if o.Outbox == "" {
		o.Outbox = o.Issuer + "/dev/outbox.json"
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1e7))
	if err != nil {
		return benchResult{}, err
	}
	r := &benchRun{
		o:         o,
		phoneBase: n.Int64(),
		reasons:   map[string]int64{},
		transport: &http.Transport{
			Proxy:               nil, // loopback load: never through a proxy
			MaxIdleConns:        2 * o.Concurrency,
			MaxIdleConnsPerHost: 2 * o.Concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	defer r.transport.CloseIdleConnections()
	if err := r.discover(ctx); err != nil {
		return benchResult{}, err
	}

	start := o.Now()
	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	stopProgress := r.progress(start)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() { r.user(runCtx, ctx) })
	}
	wg.Wait()
	stopProgress()
	return r.result(o.Now().Sub(start)), nil
}

// discover reads the authorization and token endpoints from the issuer.
func (r *benchRun) discover(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.o.Issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	resp, err := (&http.Client{Transport: r.transport, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("discovery: %w (is otpgate running at %s?)", err, r.o.Issuer)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("discovery: %s answered %d", req.URL, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r.ep); err != nil || r.ep.Authorization == "" || r.ep.Token == "" {
		return fmt.Errorf("discovery: %s is not an OpenID Provider configuration", req.URL)
	}
	return nil
}

// user is one virtual user: logins one after the other until runCtx ends
// (no new login starts after that) or enough logins have started. A login
// in flight when runCtx ends finishes under ctx.
func (r *benchRun) user(runCtx, ctx context.Context) {
	for runCtx.Err() == nil {
		seq := r.started.Add(1)
		if r.o.Logins > 0 && seq > int64(r.o.Logins) {
			return
		}
		var times [benchSteps]time.Duration
		err := r.login(ctx, r.phone(seq), &times)
		if err != nil {
			if ctx.Err() != nil {
				return // interrupted: neither a success nor the server's failure
			}
			r.failed.Add(1)
			var be *benchError
			reason := err.Error()
			if errors.As(err, &be) {
				reason = be.Error()
			}
			r.mu.Lock()
			r.reasons[reason]++
			r.mu.Unlock()
			time.Sleep(10 * time.Millisecond) // a failing server is not hammered in a tight loop
			continue
		}
		r.completed.Add(1)
		r.mu.Lock()
		for s, d := range times {
			if d > 0 {
				r.samples[s] = append(r.samples[s], d)
			}
		}
		if !r.o.Pending {
			r.totals = append(r.totals, times[benchAuthorize]+times[benchPhone]+times[benchCode]+times[benchToken])
		}
		r.mu.Unlock()
	}
}

// phone is the number of the seq-th login: unique within a run (up to ten
// million logins) and random across runs.
func (r *benchRun) phone(seq int64) string {
	return fmt.Sprintf("%s%07d", r.o.PhonePrefix, (r.phoneBase+seq)%10_000_000)
}

var (
	benchFormAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	benchCSRF       = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	benchSMSCode    = regexp.MustCompile(`#(\d{4,10})\s*$`)
)

// login performs one complete login as a browser (its own cookie jar) and
// the relying party would, recording each step's duration in times.
func (r *benchRun) login(ctx context.Context, phone string, times *[benchSteps]time.Duration) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{
		Transport:     r.transport,
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	state, nonce, verifier := rand.Text(), rand.Text(), rand.Text()+rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {r.o.ClientID}, "response_type": {"code"}, "redirect_uri": {r.o.RedirectURI},
		"scope": {"openid phone"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}

	// authorize: the request, then the phone page it redirects to.
	t := r.o.Now()
	_, loc, err := r.do(ctx, c, benchAuthorize, http.MethodGet, r.ep.Authorization+"?"+q.Encode(), nil, http.StatusSeeOther)
	if err != nil {
		return err
	}
	page, _, err := r.do(ctx, c, benchAuthorize, http.MethodGet, loc, nil, http.StatusOK)
	if err != nil {
		return err
	}
	times[benchAuthorize] = r.o.Now().Sub(t)
	action, form, err := benchForm(benchAuthorize, loc, page)
	if err != nil {
		return err
	}

	// phone: the number, then the code page.
	t = r.o.Now()
	form.Set("phone", phone)
	if _, loc, err = r.do(ctx, c, benchPhone, http.MethodPost, action, form, http.StatusSeeOther); err != nil {
		return err
	}
	if page, _, err = r.do(ctx, c, benchPhone, http.MethodGet, loc, nil, http.StatusOK); err != nil {
		return err
	}
	times[benchPhone] = r.o.Now().Sub(t)
	if r.o.Pending {
		return nil
	}
	if action, form, err = benchForm(benchPhone, loc, page); err != nil {
		return err
	}

	t = r.o.Now()
	code, err := r.readCode(ctx, c, phone)
	if err != nil {
		return err
	}
	times[benchOutbox] = r.o.Now().Sub(t)

	// code: the answer, then the redirect to the relying party.
	t = r.o.Now()
	form.Set("code", code)
	if _, loc, err = r.do(ctx, c, benchCode, http.MethodPost, action, form, http.StatusSeeOther); err != nil {
		return err
	}
	times[benchCode] = r.o.Now().Sub(t)
	cb, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, r.o.RedirectURI) {
		return benchFail(benchCode, "redirected elsewhere than the redirect URI")
	}
	if e := cb.Query().Get("error"); e != "" {
		return benchFail(benchCode, "authorization error %s", e)
	}
	if cb.Query().Get("state") != state || cb.Query().Get("code") == "" {
		return benchFail(benchCode, "redirect without the state or a code")
	}

	// token: the relying party redeems the code.
	t = r.o.Now()
	tf := url.Values{
		"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
		"redirect_uri": {r.o.RedirectURI}, "code_verifier": {verifier},
	}
	if r.o.ClientSecret == "" {
		tf.Set("client_id", r.o.ClientID) // a public client names itself
	}
	body, _, err := r.do(ctx, &http.Client{Transport: r.transport, Timeout: 30 * time.Second}, benchToken, http.MethodPost, r.ep.Token, tf, http.StatusOK)
	if err != nil {
		return err
	}
	times[benchToken] = r.o.Now().Sub(t)
	var tok struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	if json.Unmarshal([]byte(body), &tok) != nil || tok.AccessToken == "" || strings.Count(tok.IDToken, ".") != 2 {
		return benchFail(benchToken, "answer without an access token and an ID token")
	}
	if r.alg.Load() == nil {
		alg := idTokenAlg(tok.IDToken)
		r.alg.CompareAndSwap(nil, &alg)
	}
	return nil
}

// idTokenAlg reads the alg of a JWS header without verifying anything: the
// bench reports it, so that RS256 and ES256 runs are not mixed up.
func idTokenAlg(jws string) string {
	head, _, _ := strings.Cut(jws, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		Alg string `json:"alg"`
	}
	if err != nil || json.Unmarshal(raw, &h) != nil {
		return "unreadable"
	}
	return h.Alg
}

// do sends one request and checks its status; it returns the body and the
// Location (resolved against the request URL).
func (r *benchRun) do(ctx context.Context, c *http.Client, step int, method, target string, form url.Values, want int) (string, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return "", "", benchFail(step, "bad URL")
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if step == benchToken && r.o.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(r.o.ClientID), url.QueryEscape(r.o.ClientSecret))
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", "", benchFail(step, "%s", benchNetError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", benchFail(step, "read answer: %s", benchNetError(err))
	}
	if resp.StatusCode != want {
		reason := fmt.Sprintf("status %d", resp.StatusCode)
		var oauth struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &oauth) == nil && oauth.Error != "" {
			reason += " " + oauth.Error
		}
		return "", "", benchFail(step, "%s (want %d)", reason, want)
	}
	loc := ""
	if l := resp.Header.Get("Location"); l != "" {
		u, err := req.URL.Parse(l)
		if err != nil {
			return "", "", benchFail(step, "bad Location")
		}
		loc = u.String()
	}
	return string(raw), loc, nil
}

// benchNetError names a transport failure without the random parts
// (ports, URLs) that would keep identical failures from grouping.
func benchNetError(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "connection reset"
	case strings.Contains(err.Error(), "Client.Timeout"):
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error() // without the URL
	}
	return err.Error()
}

// benchForm returns the absolute action of the first form of the page at
// pageURL (the step's own form: phone or code) and its CSRF token.
func benchForm(step int, pageURL, page string) (string, url.Values, error) {
	a, t := benchFormAction.FindStringSubmatch(page), benchCSRF.FindStringSubmatch(page)
	if a == nil || t == nil {
		return "", nil, benchFail(step, "page without a form")
	}
	base, err := url.Parse(pageURL)
	if err != nil {
		return "", nil, benchFail(step, "bad page URL")
	}
	action, err := base.Parse(html.UnescapeString(a[1]))
	if err != nil {
		return "", nil, benchFail(step, "bad form action")
	}
	return action.String(), url.Values{"csrf_token": {html.UnescapeString(t[1])}}, nil
}

// readCode reads the newest SMS to phone from the dev outbox, waiting a
// little for it (it is written before the code page is served, but a
// replicated outbox may lag).
func (r *benchRun) readCode(ctx context.Context, c *http.Client, phone string) (string, error) {
	target := r.o.Outbox + "?" + url.Values{"to": {phone}, "newest": {"1"}}.Encode()
	for try := 0; ; try++ {
		body, _, err := r.do(ctx, c, benchOutbox, http.MethodGet, target, nil, http.StatusOK)
		if err != nil {
			return "", err
		}
		var msgs []struct {
			To   string `json:"to"`
			Body string `json:"body"`
		}
		if err := json.Unmarshal([]byte(body), &msgs); err != nil {
			return "", benchFail(benchOutbox, "not the outbox JSON")
		}
		for _, m := range msgs { // newest first; an outbox without ?to= lists everyone's
			if m.To == phone {
				if sub := benchSMSCode.FindStringSubmatch(m.Body); sub != nil {
					return sub[1], nil
				}
				return "", benchFail(benchOutbox, "SMS without a code")
			}
		}
		if try == 20 {
			return "", benchFail(benchOutbox, "no SMS for the number (outbox too small for the load?)")
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// progress prints a line per second until the returned function is called.
func (r *benchRun) progress(start time.Time) (stop func()) {
	if r.o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var last int64
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				n := r.completed.Load()
				el := r.o.Now().Sub(start).Seconds()
				fmt.Fprintf(r.o.Progress, "%5.0fs  %8d logins  %7.1f/s now  %7.1f/s avg  %d errors\n",
					el, n, float64(n-last), float64(n)/el, r.failed.Load())
				last = n
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// result summarises the run.
func (r *benchRun) result(elapsed time.Duration) benchResult {
	res := benchResult{
		Issuer:      r.o.Issuer,
		ClientID:    r.o.ClientID,
		Concurrency: r.o.Concurrency,
		Pending:     r.o.Pending,
		Seconds:     elapsed.Seconds(),
		Completed:   r.completed.Load(),
		Errors:      r.failed.Load(),
	}
	if alg := r.alg.Load(); alg != nil {
		res.IDTokenAlg = *alg
	}
	if elapsed > 0 {
		res.LoginsPerSecond = float64(res.Completed) / elapsed.Seconds()
	}
	if len(r.reasons) > 0 {
		res.ErrorReasons = r.reasons
	}
	for s := range benchSteps {
		if len(r.samples[s]) > 0 {
			res.Steps = append(res.Steps, benchStats(benchStepNames[s], r.samples[s]))
		}
	}
	if len(r.totals) > 0 {
		res.Steps = append(res.Steps, benchStats("login", r.totals))
	}
	return res
}

// benchStats computes count, mean, nearest-rank percentiles and max.
func benchStats(name string, d []time.Duration) benchStepStats {
	d = slices.Clone(d)
	slices.Sort(d)
	ms := func(v time.Duration) float64 { return math.Round(float64(v)/1e3) / 1e3 }
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(d)))) - 1
		return d[max(0, min(i, len(d)-1))]
	}
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return benchStepStats{
		Name: name, Count: len(d),
		Mean: ms(sum / time.Duration(len(d))),
		P50:  ms(rank(0.50)), P95: ms(rank(0.95)), P99: ms(rank(0.99)), Max: ms(d[len(d)-1]),
	}
}
