package sms

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/otpgate/otpgate/config"
)

// Problem is one thing wrong with a plug-in's configuration. It names its key
// by full path and is the config package's own, so it reads like its
// messages:
//
//	sms.providers[1].config: option 'client_id' is required
type Problem = config.Problem

// problems collects Problems under one key prefix.
type problems struct {
	prefix string
	list   []error
}

func (ps *problems) add(option, format string, args ...any) {
	ps.list = append(ps.list, &Problem{Key: joinKey(ps.prefix, option), Msg: fmt.Sprintf(format, args...)})
}

func (ps *problems) err() error { return errors.Join(ps.list...) }

func joinKey(prefix, option string) string {
	switch {
	case prefix == "":
		return option
	case option == "":
		return prefix
	}
	return prefix + "." + option
}

// DecodeStrict decodes node, a provider's config block named key, into v, a
// pointer to its config struct: see config.DecodeStrict, the one strict
// decoding helper of every plug-in registry.
func DecodeStrict(node *yaml.Node, key string, v any) error {
	return config.DecodeStrict(node, key, v)
}
