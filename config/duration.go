package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as in Go, "30s", "5m" or "720h", in
// the file and in the environment; convert with time.Duration(d).
type Duration time.Duration

func seconds(n int) Duration { return Duration(time.Duration(n) * time.Second) }
func minutes(n int) Duration { return Duration(time.Duration(n) * time.Minute) }
func hours(n int) Duration   { return Duration(time.Duration(n) * time.Hour) }

// String formats d without zero units: "5m", "720h", "1h30m", "30s", "0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// UnmarshalText parses a Go duration. A bare number other than 0 is refused:
// "300" could mean seconds or nanoseconds.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("not a duration: %q", text)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats d as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalYAML reads a scalar as text. Without it yaml.v3 would decode a YAML
// integer straight into the int64 underneath, making "code_ttl: 300" mean
// 300ns. Errors are *yaml.TypeError so that the decoder carries on with the
// rest of the document instead of stopping there.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || d.UnmarshalText([]byte(n.Value)) != nil {
		return &yaml.TypeError{Errors: []string{
			fmt.Sprintf("line %d: cannot read %q as a duration like '5m'", n.Line, n.Value),
		}}
	}
	return nil
}

// MarshalYAML writes d as String does.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
