package sms

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a plug-in's configuration. It names its key
// by full path and reads like the config package's messages:
//
//	sms.providers[1].config: option 'client_id' is required
type Problem struct {
	Key string // "sms.providers[1].config.client_id"
	Msg string // "is required"
}

// Error renders "section: option 'name' msg".
func (p *Problem) Error() string {
	section, option := "", p.Key
	if i := strings.LastIndexByte(p.Key, '.'); i >= 0 {
		section, option = p.Key[:i], p.Key[i+1:]
	}
	if section == "" {
		return fmt.Sprintf("option '%s' %s", option, p.Msg)
	}
	return fmt.Sprintf("%s: option '%s' %s", section, option, p.Msg)
}

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

// DecodeStrict decodes node, a YAML mapping such as a provider's config block,
// into v, a pointer to a struct with yaml tags. It is the one decoding helper
// of every plug-in registry (senders here, factors elsewhere):
//
//   - every key must be a field of the struct, appear once, and hold a value
//     of the field's type; a duration must be written with its unit ("10s");
//     every problem is reported, each a *Problem named key.option with its
//     line, joined with errors.Join;
//   - the struct is then filled by yaml.v3 with KnownFields, the authority on
//     what decodes;
//   - last, a string option "x_file" that is set is read into its sibling "x"
//     (trailing newlines trimmed), so that secrets can live in files; setting
//     both is a problem.
//
// Fields absent from node keep the values v already holds: the defaults. A nil
// or null node changes nothing but still reads the *_file options. Values of
// fields tagged secret:"true" are never quoted.
func DecodeStrict(node *yaml.Node, key string, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("sms: DecodeStrict needs a pointer to a struct, got %T", v))
	}
	ps := &problems{prefix: key}
	if node != nil {
		for node.Kind == yaml.AliasNode {
			node = node.Alias
		}
		if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
			node = node.Content[0]
		}
	}
	if node != nil && node.Tag != "!!null" && node.Kind != 0 {
		checkMapping(node, rv.Elem().Type(), ps)
		if len(ps.list) == 0 {
			// yaml.Node.Decode has no KnownFields: go through the text.
			data, err := yaml.Marshal(node)
			if err == nil {
				dec := yaml.NewDecoder(bytes.NewReader(data))
				dec.KnownFields(true)
				err = dec.Decode(v)
			}
			if err != nil {
				ps.add("", "cannot be decoded: %v", err)
			}
		}
	}
	if len(ps.list) == 0 {
		readFiles(rv.Elem(), ps)
	}
	return ps.err()
}

var durationType = reflect.TypeFor[time.Duration]()

// checkMapping reports by key path what the strict decoder would refuse.
func checkMapping(n *yaml.Node, t reflect.Type, ps *problems) {
	if n.Kind != yaml.MappingNode {
		ps.add("", "must be a mapping of options (line %d)", n.Line)
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		for val.Kind == yaml.AliasNode {
			val = val.Alias
		}
		if line, dup := seen[k.Value]; dup {
			ps.add(k.Value, "is set twice (lines %d and %d)", line, k.Line)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fieldByYAML(t, k.Value)
		if !ok {
			ps.add(k.Value, "is unknown (line %d)%s", k.Line, suggest(t, k.Value))
			continue
		}
		if val.Tag == "!!null" {
			continue
		}
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct && ft != durationType:
			sub := &problems{prefix: joinKey(ps.prefix, k.Value)}
			checkMapping(val, ft, sub)
			ps.list = append(ps.list, sub.list...)
		case ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map:
			want := yaml.SequenceNode
			if ft.Kind() == reflect.Map {
				want = yaml.MappingNode
			}
			if val.Kind != want {
				ps.add(k.Value, "must be a %s (line %d)", map[yaml.Kind]string{yaml.SequenceNode: "list", yaml.MappingNode: "mapping"}[want], val.Line)
			} else if err := val.Decode(reflect.New(ft).Interface()); err != nil {
				ps.add(k.Value, "has a value of the wrong type (line %d)", val.Line)
			}
		default:
			if val.Kind != yaml.ScalarNode {
				ps.add(k.Value, "must be a single value, not a list or a mapping (line %d)", val.Line)
				continue
			}
			secret := f.Tag.Get("secret") != ""
			// yaml.v3 reads a bare integer into a time.Duration as nanoseconds.
			bad := ft == durationType && val.Tag == "!!int" && val.Value != "0"
			if !bad {
				bad = val.Decode(reflect.New(ft).Interface()) != nil
			}
			if bad {
				ps.add(k.Value, "%s (line %d)", typeProblem(ft, val.Value, secret), val.Line)
			}
		}
	}
}

func typeProblem(t reflect.Type, raw string, secret bool) string {
	var want string
	switch {
	case t == durationType:
		want = "must be a duration like '10s' or '1m'"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		want = "must be a whole number"
	case t.Kind() == reflect.Bool:
		want = "must be true or false"
	default:
		want = "must be a " + t.String()
	}
	if secret {
		return want
	}
	return fmt.Sprintf("%s, got '%s'", want, raw)
}

// readFiles reads every string option "x_file" that is set into "x".
func readFiles(v reflect.Value, ps *problems) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		base, ok := strings.CutSuffix(name, "_file")
		if !ok || f.Type.Kind() != reflect.String || v.Field(i).String() == "" {
			continue
		}
		target, ok := fieldByYAML(t, base)
		if !ok || target.Type.Kind() != reflect.String {
			continue
		}
		tv := v.FieldByIndex(target.Index)
		path := v.Field(i).String()
		if tv.String() != "" {
			ps.add(base, "and '%s' are both set: set only one", name)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			ps.add(name, "names a file that cannot be read: %v", err)
			continue
		}
		secret := strings.TrimRight(string(data), "\r\n")
		if secret == "" {
			ps.add(name, "names an empty file, got '%s'", path)
			continue
		}
		tv.SetString(secret)
	}
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

func fieldByYAML(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); key != "" && yamlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// suggest proposes the option of t closest to an unknown one, or returns "".
func suggest(t reflect.Type, unknown string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	var names []string
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	best, bestDist := "", 3 // farther than 2 edits is not a typo
	for _, name := range names {
		if d := editDistance(norm(unknown), norm(name)); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean '%s'?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
