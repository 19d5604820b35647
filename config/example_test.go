package config

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The example at the repository root is the configuration reference: these
// tests keep it loadable, complete and true to Defaults.
const exampleFile = "../otpgate.example.yaml"

func TestExampleLoads(t *testing.T) {
	c, err := Load(exampleFile, false, env(map[string]string{"OTPGATE_SYSTEM_SECRET": testSecret}))
	if err != nil {
		t.Fatalf("production, with OTPGATE_SYSTEM_SECRET:\n%v", err)
	}
	if _, err := Load(exampleFile, true, nil); err != nil {
		t.Fatalf("--dev:\n%v", err)
	}

	// Every value the example shows is the production default, except the
	// options that have none and its one example client.
	want := Defaults(false)
	want.Issuer = "https://id.example.com"
	want.SystemSecret = testSecret
	// The example's providers, checked here by name and type; their options
	// are the registry's to check (factors/sms tests decode them).
	var providers []string
	for _, p := range c.SMS.Providers {
		providers = append(providers, p.Name+":"+p.Type)
		if p.Config.Node == nil || p.Config.Node.Kind != yaml.MappingNode {
			t.Errorf("provider %s: config %v, want a mapping", p.Name, p.Config.Node)
		}
	}
	if got := strings.Join(providers, " "); got != "primary:orange backup:twilio" {
		t.Errorf("example providers = %s", got)
	}
	want.SMS.Providers = c.SMS.Providers
	want.Clients = []ClientConfig{{
		ClientID:                 "example-app",
		ClientName:               "Example app",
		RedirectURIs:             []string{"https://app.example.com/callback", "http://127.0.0.1/callback"},
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		ResponseTypes:            []string{"code"},
		Scope:                    "openid phone offline_access",
		TokenEndpointAuthMethod:  "none",
		IDTokenSignedResponseAlg: "RS256",
	}}
	// Compared as YAML, where an empty list and no list read the same.
	if got, want := toYAML(c), toYAML(want); got != want {
		t.Errorf("the example differs from the defaults it documents.\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	exampleKeys(t, root.Content[0], "", documented)

	for _, key := range typeKeys(reflect.TypeFor[Config](), "") {
		if !documented[key] {
			t.Errorf("%s: key %q is missing; add it with its default and a comment", exampleFile, key)
		}
	}
}

// typeKeys lists the key paths of t, items of lists of structs included
// without an index: "clients.client_id".
func typeKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		path := join(prefix, name)
		keys = append(keys, path)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			keys = append(keys, typeKeys(ft, path)...)
		}
	}
	return keys
}

// exampleKeys records the key paths of n in keys, and fails for a key
// without a comment.
func exampleKeys(t *testing.T, n *yaml.Node, prefix string, keys map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := join(prefix, k.Value)
			keys[path] = true
			if k.HeadComment == "" && k.LineComment == "" && v.LineComment == "" {
				t.Errorf("%s:%d: key %q has no comment", exampleFile, k.Line, path)
			}
			exampleKeys(t, v, path, keys)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			exampleKeys(t, item, prefix, keys)
		}
	}
}
