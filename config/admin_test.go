package config

import (
	"strings"
	"testing"
)

func TestAdminSection(t *testing.T) {
	const token = "admin-token-0123456789abcdef0123456789"
	tokenFile := writeFile(t, "admin-token", token+"\n")
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		token string
		every Duration
		want  []string
	}{
		{name: "defaults: no token, no rotation"},
		{name: "file", yaml: "admin:\n  token: " + token + "\n  key_rotation_interval: 2160h\n", token: token, every: hours(2160)},
		{name: "environment", env: map[string]string{"OTPGATE_ADMIN_TOKEN": token, "OTPGATE_ADMIN_KEY_ROTATION_INTERVAL": "720h"}, token: token, every: hours(720)},
		{name: "token file", env: map[string]string{"OTPGATE_ADMIN_TOKEN_FILE": tokenFile}, token: token},
		{name: "token and token file", yaml: "admin:\n  token: " + token + "\n  token_file: " + tokenFile + "\n", want: []string{
			"admin: option 'token' and 'token_file' are both set: set only one",
		}},
		{name: "short token", env: map[string]string{"OTPGATE_ADMIN_TOKEN": "hunter2"}, want: []string{
			"admin: option 'token' must be at least 32 characters long, got 7: use e.g. 'openssl rand -base64 32'",
		}},
		{name: "interval too short", yaml: "admin:\n  key_rotation_interval: 30m\n", want: []string{
			"admin: option 'key_rotation_interval' must be between 1h and 8760h, got '30m'",
		}},
		{name: "interval negative", yaml: "admin:\n  key_rotation_interval: -1h\n", want: []string{
			"admin: option 'key_rotation_interval' must be between 1h and 8760h, got '-1h'",
		}},
		{name: "interval shorter than a token", yaml: "tokens:\n  id_token_ttl: 3h\nadmin:\n  key_rotation_interval: 2h\n", want: []string{
			"admin: option 'key_rotation_interval' must be 0s or at least the longest token lifetime (tokens.id_token_ttl, tokens.access_token_ttl: 3h), got '2h'",
		}},
		{name: "unknown key", yaml: "admin:\n  tokn: x\n", want: []string{
			"admin: option 'tokn' is unknown (line 2); did you mean 'token'?",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = writeFile(t, "otpgate.yaml", tt.yaml)
			}
			c, err := Load(path, true, env(tt.env))
			wantProblems(t, err, tt.want...)
			if err != nil {
				return
			}
			if c.Admin.Token != tt.token || c.Admin.KeyRotationInterval != tt.every {
				t.Errorf("admin = %+v, want token %q and interval %v", c.Admin, tt.token, tt.every)
			}
		})
	}
}

func TestAdminTokenIsRedacted(t *testing.T) {
	c := prod()
	c.Admin.Token = "admin-hunter2-0123456789abcdef0123456789"
	if s := c.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "REDACTED") {
		t.Errorf("Config.String() shows the admin token:\n%s", s)
	}
	if err := c.Validate(false); err != nil {
		t.Errorf("a production config with an admin token: %v", err)
	}
	c.Admin.Token = "short-hunter2"
	if err := c.Validate(false); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a short token must be refused without being quoted: %v", err)
	}
}
