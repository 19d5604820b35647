package sms_test

import (
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/otpgate/otpgate/config"
	"github.com/otpgate/otpgate/factors/sms"
)

// TestExampleProvidersDecode decodes the providers of otpgate.example.yaml
// through the registry, as the server does at start, so that the example's
// options stay true to each sender type. The example reads its secrets from
// files that exist only in a deployment: the test writes them in place.
func TestExampleProvidersDecode(t *testing.T) {
	cfg, err := config.Load("../../otpgate.example.yaml", false, func(name string) string {
		if name == "OTPGATE_SYSTEM_SECRET" {
			return "example-test-system-secret-0123456789abcdef"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	setup := sms.Setup{RoutesKey: "sms.routes", Routes: cfg.SMS.Routes}
	for i, p := range cfg.SMS.Providers {
		n := p.Config.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if k := n.Content[j]; strings.HasSuffix(k.Value, "_file") {
				k.Value = strings.TrimSuffix(k.Value, "_file")
				n.Content[j+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "example-secret-0123456789abcdef0123456789"}
			}
		}
		setup.Providers = append(setup.Providers, sms.ProviderSpec{Key: fmt.Sprintf("sms.providers[%d]", i), Name: p.Name, Type: p.Type, Config: n})
	}
	providers, err := setup.Decode(false)
	if err != nil {
		t.Fatalf("the example's providers do not decode:\n%v", err)
	}
	if len(providers) != 2 {
		t.Errorf("decoded %d providers", len(providers))
	}
	o := providers[0].Config.(*sms.OrangeConfig)
	if o.BaseURL != sms.OrangeBaseURL || o.Timeout != sms.DefaultTimeout {
		t.Errorf("the example's orange options %+v differ from the defaults it shows", o)
	}
}
