package sms_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/storage/memory"
)

// node parses a YAML mapping the way the config file's provider block arrives.
func node(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// lines returns the problems of err, one per line, in order.
func lines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func wantLines(t *testing.T, err error, want ...string) {
	t.Helper()
	if got := lines(err); !slices.Equal(got, want) {
		t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

const orangeOK = `
client_id: app
client_secret: orange-hunter2
sender_address: "tel:+33600000000"
`

func TestTypes(t *testing.T) {
	if got := sms.Types(); !slices.Equal(got, []string{"log", "orange", "outbox", "twilio", "webhook"}) {
		t.Errorf("Types() = %q", got)
	}
}

func TestDecodeProviderProblems(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("from-a-file-hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, typ, config string
		dev               bool
		want              []string
	}{
		{"valid", "orange", orangeOK, false, nil},
		{"unknown key", "orange", orangeOK + "client_secrt: x\n", false, []string{
			"sms.providers[1].config: option 'client_secrt' is unknown (line 5); did you mean 'client_secret'?",
		}},
		{"unknown type", "sns", "", false, []string{
			"sms.providers[1]: option 'type' must be one of 'log', 'orange', 'outbox', 'twilio', 'webhook', got 'sns'",
		}},
		{"bare number for a duration", "orange", orangeOK + "timeout: 30\n", false, []string{
			"sms.providers[1].config: option 'timeout' must be a duration like '10s' or '1m', got '30' (line 5)",
		}},
		{"twice", "orange", orangeOK + "client_id: other\n", false, []string{
			"sms.providers[1].config: option 'client_id' is set twice (lines 2 and 5)",
		}},
		{"secret never quoted", "orange", "client_id: app\nclient_secret: [hunter2]\nsender_address: '+33600000000'\n", false, []string{
			"sms.providers[1].config: option 'client_secret' must be a single value, not a list or a mapping (line 2)",
		}},
		{"not a mapping", "orange", "[a, b]", false, []string{
			"sms.providers[1]: option 'config' must be a mapping of options (line 1)",
		}},
		{"every value problem at once", "orange", "base_url: http://api.example.com\nclient_secret: x\nsender_address: '0600000000'\nsender_name: MUCH-TOO-LONG\ntimeout: 2m\n", false, []string{
			"sms.providers[1].config: option 'base_url' must use https outside --dev (http is allowed only for localhost and loopback addresses), got 'http://api.example.com'",
			"sms.providers[1].config: option 'client_id' is required: the application's client id from the Orange Developer console",
			"sms.providers[1].config: option 'sender_address' must be the contract's number like 'tel:+33600000000', got '0600000000'",
			"sms.providers[1].config: option 'sender_name' must be at most 11 characters, got 13",
			"sms.providers[1].config: option 'timeout' must be between 100ms and 1m, got '2m0s'",
		}},
		{"http allowed for loopback", "orange", orangeOK + "base_url: http://127.0.0.1:9000\n", false, nil},
		{"http allowed with --dev", "orange", orangeOK + "base_url: http://sms.test\n", true, nil},
		{"secret file", "orange", "client_id: app\nclient_secret_file: " + secretFile + "\nsender_address: '+33600000000'\n", false, nil},
		{"secret and file", "orange", orangeOK + "client_secret_file: " + secretFile + "\n", false, []string{
			"sms.providers[1].config: option 'client_secret' and 'client_secret_file' are both set: set only one",
		}},
		{"missing secret file", "orange", "client_id: app\nclient_secret_file: " + filepath.Join(dir, "nope") + "\nsender_address: '+33600000000'\n", false, []string{
			"sms.providers[1].config: option 'client_secret_file' names a file that cannot be read: open " + filepath.Join(dir, "nope") + ": no such file or directory",
		}},
		{"log outside dev", "log", "", false, []string{
			"sms.providers[1]: option 'type' must not be 'log' outside --dev: it writes every code in clear to the logs",
		}},
		{"log with dev", "log", "", true, nil},
		{"log has no options", "log", "level: info\n", true, []string{
			"sms.providers[1].config: option 'level' is unknown (line 1)",
		}},
		{"twilio", "twilio", "account_sid: AC0123456789abcdef0123456789abcdef\nauth_token: hunter2\nfrom: '+15005550006'\n", false, nil},
		{"twilio problems", "twilio", "account_sid: XX1\nauth_token: hunter2\napi_key_sid: SK0123456789abcdef0123456789abcdef\nfrom: '+15005550006'\nmessaging_service_sid: MG0123456789abcdef0123456789abcdef\n", false, []string{
			"sms.providers[1].config: option 'account_sid' must be the account SID, 'AC' and 32 hexadecimal digits, got 'XX1'",
			"sms.providers[1].config: option 'auth_token' and 'api_key_sid'/'api_key_secret' are both set: use one way to authenticate",
			"sms.providers[1].config: option 'from' and 'messaging_service_sid' are both set: set only one",
		}},
		{"webhook", "webhook", "url: https://gw.example.com/sms?tenant=1\nsecret: 0123456789abcdef0123456789abcdef\n", false, nil},
		{"webhook short secret", "webhook", "url: https://gw.example.com/sms\nsecret: hunter2\n", false, []string{
			"sms.providers[1].config: option 'secret' must be at least 32 characters long (set it or 'secret_file'), got 7: use e.g. 'openssl rand -base64 32'",
		}},
		{"outbox", "outbox", "size: 0\n", true, []string{
			"sms.providers[1].config: option 'size' must be between 1 and 10000, got '0'",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := sms.DecodeProvider(sms.ProviderSpec{Key: "sms.providers[1]", Name: "primary", Type: tt.typ, Config: node(t, tt.config)}, tt.dev)
			wantLines(t, err, tt.want...)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a problem quotes a secret: %v", err)
			}
			if err == nil && (p.Name != "primary" || p.Type != tt.typ || p.Config == nil) {
				t.Errorf("provider = %+v", p)
			}
		})
	}
}

func TestDecodeFillsDefaultsAndFiles(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("from-a-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := sms.DecodeProvider(sms.ProviderSpec{Name: "o", Type: "orange", Config: node(t,
		"client_id: app\nclient_secret_file: "+file+"\nsender_address: '+33600000000'\n")}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Config.(*sms.OrangeConfig)
	if c.BaseURL != sms.OrangeBaseURL || c.Timeout != sms.DefaultTimeout || c.ClientSecret != "from-a-file" {
		t.Errorf("config = %+v; want the defaults and the secret from the file", c)
	}
}

func TestSetupDecode(t *testing.T) {
	spec := func(i int, name, typ, config string) sms.ProviderSpec {
		return sms.ProviderSpec{Key: "sms.providers[" + string(rune('0'+i)) + "]", Name: name, Type: typ, Config: node(t, config)}
	}
	s := sms.Setup{
		Providers: []sms.ProviderSpec{
			spec(0, "primary", "orange", orangeOK),
			spec(1, "primary", "outbox", ""),
			spec(2, "Bad Name", "outbox", ""),
		},
		Routes:    map[string][]string{"+33": {"primary", "nope"}, "33": {"primary"}, "*": {}},
		RoutesKey: "sms.routes",
	}
	_, err := s.Decode(true)
	wantLines(t, err,
		"sms.providers[1]: option 'name' must be unique, got 'primary' which sms.providers[0] already uses",
		"sms.providers[2]: option 'name' must be 1 to 32 lower-case letters, digits, '-' or '_', starting with a letter or digit, got 'Bad Name'",
		"sms.routes: option '*' must list at least one provider name",
		"sms.routes: option '+33' names provider 'nope' at [1], which is not in the providers list",
		"sms.routes: option '33' must be '*' or a calling-code prefix like '+33' or '+1'",
	)
}

func TestSetupOpen(t *testing.T) {
	store := memory.New()
	defer store.Close()
	s := sms.Setup{Providers: []sms.ProviderSpec{{Name: "dev", Type: "outbox", Config: node(t, "size: 5\n")}}}
	f, err := s.Open(sms.Deps{Store: store, Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Send(context.Background(), sms.Message{To: "+33612345678", Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := store.ListOutbox(context.Background(), 10); len(msgs) != 1 {
		t.Errorf("outbox holds %d messages, want 1", len(msgs))
	}
	if err := f.StartupCheck(context.Background()); err != nil {
		t.Errorf("StartupCheck with no checker: %v", err)
	}

	// The log sender refuses to open outside --dev even if handed a config.
	if _, err := (&sms.LogConfig{}).Open(sms.Deps{}); err == nil {
		t.Error("log sender opened outside --dev")
	}
	if _, err := (sms.Setup{Providers: []sms.ProviderSpec{{Name: "l", Type: "log"}}}).Open(sms.Deps{}); err == nil {
		t.Error("Setup.Open accepted the log sender outside --dev")
	}
}

func TestRetryableClassification(t *testing.T) {
	plain := errors.New("boom")
	if sms.Retryable(plain) || sms.FailureOf(plain) != sms.FailureUnknown || sms.Retryable(nil) {
		t.Error("an unclassified error must count as possibly sent")
	}
	inner := &sms.SendError{Failure: sms.FailureUnavailable, Err: plain}
	outer := &sms.SendError{Failure: sms.FailureUnknown, Err: errors.Join(inner, plain)}
	if sms.Retryable(outer) {
		t.Error("the outermost classification must win")
	}
	if !sms.Retryable(inner) || !sms.Retryable(&sms.SendError{Failure: sms.FailureRejected}) {
		t.Error("unavailable and rejected are retryable")
	}
}
