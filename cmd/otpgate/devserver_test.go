package main

// The dev server (`otpgate serve --dev`) as a user meets it, through HTTP
// only: the start page, the SMS outbox, discovery, health on the admin
// listener and a clean stop. devServer is shared with the browser test.

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// devPhone is the number every dev test signs in with, typed in the French
// national format (the dev default region is FR), and devE164 is how the
// server stores it.
const (
	devPhone = "06 12 34 56 78"
	devE164  = "+33612345678"
)

// devServer is `serve(ctx, cfg, true, …)` running on free loopback ports.
type devServer struct {
	Issuer string // http://127.0.0.1:port, also the public listener
	Admin  string // http://127.0.0.1:port, the admin listener
	Out    *cliBuffer

	cancel context.CancelFunc
	done   chan error
}

// startDevServer runs the dev server until the test ends (or stop is
// called) and returns once both listeners answer /healthz.
func startDevServer(t *testing.T) *devServer {
	t.Helper()
	cfg := cliConfig(t, true, nil) // issuer http://<listen>, both on free ports, log level error
	ctx, cancel := context.WithCancel(context.Background())
	s := &devServer{
		Issuer: cfg.Issuer,
		Admin:  "http://" + cfg.AdminListen,
		Out:    &cliBuffer{},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { s.done <- serve(ctx, cfg, true, s.Out) }()
	t.Cleanup(func() {
		if err := s.stop(10 * time.Second); err != nil {
			t.Errorf("stopping the dev server: %v", err)
		}
	})

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second) // RSA key generation is slow under -race
	for _, base := range []string{s.Issuer, s.Admin} {
		for {
			resp, err := client.Get(base + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case err := <-s.done:
				s.done <- err // for stop
				t.Fatalf("serve ended before answering: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/healthz never answered 200 (last error: %v)", base, err)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	return s
}

// stop cancels serve's context and returns its result, or an error when it
// has not returned within wait. Calling it again returns nil.
func (s *devServer) stop(wait time.Duration) error {
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
		}
		return err
	case <-time.After(wait):
		return fmt.Errorf("serve has not returned %s after its context was cancelled", wait)
	}
}

// devGet fetches u and returns the status, the Content-Type and the body.
func devGet(t *testing.T, client *http.Client, u string) (int, string, string) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// devOutboxMessage is one entry of /dev/outbox.json.
type devOutboxMessage struct {
	To     string `json:"to"`
	Body   string `json:"body"`
	SentAt string `json:"sent_at"`
}

// outbox reads /dev/outbox.json, newest message first. It decodes into raw
// objects as well, so that tests can see fields the struct does not name.
func (s *devServer) outbox(t *testing.T) ([]devOutboxMessage, []map[string]any) {
	t.Helper()
	status, ctype, body := devGet(t, &http.Client{Timeout: 5 * time.Second}, s.Issuer+"/dev/outbox.json")
	if status != http.StatusOK || !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("/dev/outbox.json: %d %s\n%s", status, ctype, body)
	}
	var msgs []devOutboxMessage
	var raw []map[string]any
	if err := json.Unmarshal([]byte(body), &msgs); err != nil {
		t.Fatalf("/dev/outbox.json is not a list of messages: %v\n%s", err, body)
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	return msgs, raw
}

// smsOriginLine is the SMS's last line, bound to the issuer's host
// (the origin-bound one-time code format): "@host #123456".
var smsOriginLine = regexp.MustCompile(`^@(\S+) #([0-9]{6})$`)

// latestCode returns the code of the newest SMS sent to e164, checking that
// the message ends with "@<issuer host> #<code>".
func (s *devServer) latestCode(t *testing.T, e164 string) string {
	t.Helper()
	msgs, _ := s.outbox(t)
	for _, m := range msgs {
		if m.To != e164 {
			continue
		}
		lines := strings.Split(strings.TrimRight(m.Body, "\n"), "\n")
		last := strings.TrimSpace(lines[len(lines)-1])
		sm := smsOriginLine.FindStringSubmatch(last)
		if sm == nil {
			t.Fatalf("the SMS to %s does not end with \"@host #code\":\n%s", e164, m.Body)
		}
		if host := strings.TrimPrefix(s.Issuer, "http://"); sm[1] != host {
			t.Errorf("the SMS is bound to %q, want the issuer's host %q", sm[1], host)
		}
		return sm[2]
	}
	t.Fatalf("no SMS to %s in the outbox: %+v", e164, msgs)
	return ""
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	csrfInput  = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
)

func TestDevServerSmoke(t *testing.T) {
	s := startDevServer(t)
	client := &http.Client{Timeout: 10 * time.Second}

	// The banner says where everything is.
	for _, want := range []string{s.Issuer + "/dev/demo", s.Issuer + "/dev/outbox", strings.TrimPrefix(s.Admin, "http://")} {
		if !strings.Contains(s.Out.String(), want) {
			t.Errorf("the dev banner does not mention %s:\n%s", want, s.Out)
		}
	}

	// The start page links every dev page.
	status, ctype, body := devGet(t, client, s.Issuer+"/")
	if status != http.StatusOK || !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("/: %d %s", status, ctype)
	}
	for _, link := range []string{`href="/dev/demo"`, `href="/dev/outbox"`, `href="/.well-known/openid-configuration"`, `href="/.well-known/jwks.json"`} {
		if !strings.Contains(body, link) {
			t.Errorf("/ has no link %s", link)
		}
	}

	// The outbox page refreshes itself; the outbox starts empty.
	status, _, body = devGet(t, client, s.Issuer+"/dev/outbox")
	if status != http.StatusOK || !regexp.MustCompile(`<meta http-equiv="refresh" content="\d+">`).MatchString(body) {
		t.Errorf("/dev/outbox: %d, want 200 with a meta refresh:\n%s", status, body)
	}
	if status, _, body := devGet(t, client, s.Issuer+"/dev/outbox.json"); status != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("/dev/outbox.json before any login: %d %q, want 200 []", status, body)
	}

	// Discovery names this issuer and its endpoints.
	status, ctype, body = devGet(t, client, s.Issuer+"/.well-known/openid-configuration")
	if status != http.StatusOK || !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("discovery: %d %s", status, ctype)
	}
	var disc map[string]any
	if err := json.Unmarshal([]byte(body), &disc); err != nil {
		t.Fatalf("discovery is not JSON: %v", err)
	}
	for key, want := range map[string]string{
		"issuer":                 s.Issuer,
		"authorization_endpoint": s.Issuer + "/oauth2/auth",
		"token_endpoint":         s.Issuer + "/oauth2/token",
		"jwks_uri":               s.Issuer + "/.well-known/jwks.json",
	} {
		if disc[key] != want {
			t.Errorf("discovery %s = %v, want %s", key, disc[key], want)
		}
	}

	// Health on the admin listener.
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, _, body := devGet(t, client, s.Admin+path); status != http.StatusOK || strings.TrimSpace(body) != "ok" {
			t.Errorf("admin %s: %d %q, want 200 ok", path, status, body)
		}
	}

	// A phone submitted through the demo's login puts one SMS in the outbox.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Timeout: 10 * time.Second, Jar: jar}
	status, _, body = devGet(t, browser, s.Issuer+"/dev/demo/login")
	action, csrf := formAction.FindStringSubmatch(body), csrfInput.FindStringSubmatch(body)
	if status != http.StatusOK || action == nil || csrf == nil || !strings.Contains(body, `name="phone"`) {
		t.Fatalf("/dev/demo/login did not end on the phone page: %d\n%s", status, body)
	}
	before := time.Now().Add(-time.Second)
	resp, err := browser.PostForm(s.Issuer+html.UnescapeString(action[1]), url.Values{
		"csrf_token": {html.UnescapeString(csrf[1])}, "phone": {devPhone},
	})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="code"`) {
		t.Fatalf("the phone submission did not end on the code page: %d\n%s", resp.StatusCode, page)
	}
	msgs, raw := s.outbox(t)
	if len(msgs) != 1 {
		t.Fatalf("outbox after one phone submission: %d messages, want 1: %+v", len(msgs), msgs)
	}
	if len(raw[0]) != 3 {
		t.Errorf("an outbox message has the fields %v, want exactly to, body and sent_at", raw[0])
	}
	m := msgs[0]
	if m.To != devE164 {
		t.Errorf("to = %q, want %q", m.To, devE164)
	}
	sentAt, err := time.Parse(time.RFC3339, m.SentAt)
	if err != nil {
		t.Errorf("sent_at %q is not RFC 3339: %v", m.SentAt, err)
	} else if sentAt.Before(before) || sentAt.After(time.Now().Add(time.Second)) {
		t.Errorf("sent_at %s is not the time of the submission (%s)", sentAt, before)
	}
	code := s.latestCode(t, devE164)
	if _, _, body := devGet(t, client, s.Issuer+"/dev/outbox"); !strings.Contains(html.UnescapeString(body), devE164) || !strings.Contains(body, "#"+code) {
		t.Errorf("/dev/outbox does not show the message to %s:\n%s", devE164, body)
	}

	// serve wires the metrics: the admin listener's /metrics counts that SMS
	// (the outbox sender, the guard and the factor report to one registry);
	// the public listener does not serve them.
	status, _, body = devGet(t, client, s.Admin+"/metrics")
	for _, want := range []string{
		`otpgate_sms_sent_total{calling_code="33",provider="outbox"} 1`,
		`otpgate_challenges_total{factor="sms",outcome="started"} 1`,
		`otpgate_http_requests_total{method="POST",route="/login/phone",status="303"} 1`,
		"go_goroutines ",
	} {
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("admin /metrics: %d, no %s", status, want)
		}
	}
	if status, _, _ := devGet(t, client, s.Issuer+"/metrics"); status != http.StatusNotFound {
		t.Errorf("public /metrics: %d, want 404", status)
	}

	// Cancelling serve's context stops it promptly and closes both listeners.
	start := time.Now()
	if err := s.stop(5 * time.Second); err != nil {
		t.Fatalf("serve after cancel: %v", err)
	}
	t.Logf("serve returned %v after its context was cancelled", time.Since(start).Round(100*time.Microsecond))
	for _, base := range []string{s.Issuer, s.Admin} {
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after serve returned", base)
		}
	}
}
