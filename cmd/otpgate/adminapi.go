package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Where `otpgate clients` and `otpgate keys` find the admin API.
const (
	envAdminURL       = "OTPGATE_ADMIN_URL"
	envAdminToken     = "OTPGATE_ADMIN_TOKEN"
	envAdminTokenFile = "OTPGATE_ADMIN_TOKEN_FILE"
	defaultAdminURL   = "http://127.0.0.1:8081"
)

// adminFlags are the flags every admin command shares.
type adminFlags struct {
	url       string
	token     string
	tokenFile string
	json      bool
	timeout   time.Duration
	getenv    func(string) string
}

// register adds the flags to a command group (persistent: its sub-commands
// inherit them). The token is not a flag default, so --help never shows it.
func (f *adminFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.url, "admin-url", "", "admin API base URL (default $"+envAdminURL+" or "+defaultAdminURL+")")
	pf.StringVar(&f.token, "admin-token", "", "admin API token (default $"+envAdminToken+"; prefer the variable: flags show in ps)")
	pf.StringVar(&f.tokenFile, "admin-token-file", "", "file holding the admin API token (default $"+envAdminTokenFile+")")
	pf.BoolVar(&f.json, "json", false, "print the API's JSON instead of a table")
	pf.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for the admin API")
}

// client resolves the flags and the environment into an admin API client.
func (f *adminFlags) client() (*adminClient, error) {
	getenv := f.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	base := f.url
	if base == "" {
		base = getenv(envAdminURL)
	}
	if base == "" {
		base = defaultAdminURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--admin-url (or %s) must be an http(s) URL like %s, got %q", envAdminURL, defaultAdminURL, base)
	}
	token := f.token
	if token == "" {
		token = getenv(envAdminToken)
	}
	file := f.tokenFile
	if file == "" && token == "" {
		file = getenv(envAdminTokenFile)
	}
	if token == "" && file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("admin token file: %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	if token == "" {
		return nil, fmt.Errorf("no admin token: set %s (or --admin-token, --admin-token-file) to the server's admin.token; `otpgate serve --dev` prints one at start", envAdminToken)
	}
	return &adminClient{
		base:  strings.TrimRight(base, "/"),
		token: token,
		http:  &http.Client{Timeout: f.timeout},
	}, nil
}

// adminClient calls the admin API.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

// apiError is a refusal from the admin API, carrying its error_description.
type apiError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *apiError) Error() string {
	msg := e.Description
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	code := e.Code
	if code != "" {
		code += ", "
	}
	s := fmt.Sprintf("%s (%sHTTP %d)", msg, code, e.Status)
	if e.Status == http.StatusUnauthorized {
		s += "; check " + envAdminToken + " or --admin-token against the server's admin.token"
	}
	return s
}

// do sends a request with a JSON body (when in is not nil) and returns the
// raw JSON answer, or an *apiError for any status outside 2xx.
func (c *adminClient) do(ctx context.Context, method, path string, in any) (json.RawMessage, error) {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is in the message below already
		}
		return nil, fmt.Errorf("cannot reach the admin API at %s: %v (is otpgate serve running? set --admin-url or %s)", c.base, err, envAdminURL)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("admin API %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(raw, e) != nil || (e.Code == "" && e.Description == "") {
			e.Description = strings.TrimSpace(string(raw))
			if len(e.Description) > 200 || e.Description == "" {
				e.Description = http.StatusText(resp.StatusCode)
			}
			e.Description = fmt.Sprintf("%s %s: %s (is %s the admin listener?)", method, path, e.Description, c.base)
		}
		return nil, e
	}
	return raw, nil
}

// printJSON writes raw indented, for --json.
func printJSON(w io.Writer, raw json.RawMessage) error {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}
