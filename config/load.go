package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts the name of every environment variable Load reads.
const EnvPrefix = "OTPGATE_"

// Load builds the configuration the server runs with:
//
//  1. Defaults(dev);
//  2. the YAML file at path on top, when path is not empty; an unknown key is
//     an error;
//  3. environment overrides: every scalar key, and every list of scalars as a
//     comma-separated value, is read from OTPGATE_ followed by its path in
//     upper case with dots turned into underscores (OTPGATE_ISSUER,
//     OTPGATE_SMS_CODE_TTL, OTPGATE_PHONE_ALLOWED_REGIONS=FR,BE); an empty
//     variable counts as unset and clients cannot be set this way;
//  4. the secrets named by *_file options, with trailing newlines trimmed;
//  5. storage, when set neither in the file nor in the environment, becomes
//     "redis" if redis.url is set and "memory" otherwise; empty client options
//     get their defaults; region codes are upper-cased;
//  6. Validate(dev).
//
// getenv is usually os.Getenv; nil reads no environment. Every problem found
// on the way is returned at once in a *Errors, and the Config is then zero.
// Only an unreadable or syntactically broken file stops at the first problem.
func Load(path string, dev bool, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c := Defaults(dev)
	c.Storage = "" // so that step 5 can tell whether it was chosen
	// The dev sender is a default only when no provider is configured.
	devSender := c.SMS.Sender
	c.SMS.Sender = ""
	var errs Errors
	// reported holds keys whose value loading already complained about, so
	// that validation does not add a second, misleading line for them.
	reported := map[string]bool{}

	if path != "" {
		if err := decodeFile(path, &c, &errs); err != nil {
			return Config{}, &Errors{err}
		}
	}
	applyEnv(&c, getenv, &errs)
	readSecretFiles(reflect.ValueOf(&c).Elem(), "", &errs, reported)
	readHeadersFile(&c.Tracing, &errs)
	if c.SMS.Sender == "" && len(c.SMS.Providers) == 0 {
		c.SMS.Sender = devSender
	}
	c = c.normalize()

	var invalid *Errors
	if errors.As(c.Validate(dev), &invalid) {
		for _, err := range *invalid {
			if p, ok := err.(*Problem); !ok || !reported[p.Key] {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return Config{}, &errs
	}
	return c, nil
}

// decodeFile decodes the YAML file at path onto c. Problems with keys and
// values go to errs, each naming its key; the returned error is for a file
// that cannot be read or parsed at all.
func decodeFile(path string, c *Config, errs *Errors) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(root.Content) == 0 {
		return nil // empty file
	}

	// yaml.v3 reports unknown keys and bad values by Go type and line
	// ("field code_tl not found in type config.SMSConfig"); checkNode walks
	// the same tree to report them by key path instead. The strict decoder
	// stays as the authority: anything it refuses that checkNode did not
	// explain is reported as it says it.
	before := len(*errs)
	checkNode(root.Content[0], reflect.TypeFor[Config](), "", false, errs)

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) && len(*errs) == before {
		*errs = append(*errs, fmt.Errorf("config file %s: %w", path, err))
	}
	return nil
}

// DecodeStrict decodes node, a YAML mapping such as a plug-in's config block,
// into v, a pointer to a struct with yaml tags, the way Load decodes the file.
// It is the one decoding helper of every plug-in registry (SMS senders,
// factors):
//
//   - every key must be a field of the struct, appear once, and hold a value
//     of the field's type; a duration must be written with its unit ("10s");
//     every problem is reported, each a *Problem named key.option with its
//     line, together in a *Errors;
//   - the struct is then filled by yaml.v3 with KnownFields, the authority on
//     what decodes;
//   - last, a string option "x_file" that is set is read into its sibling "x"
//     (trailing newlines trimmed), so that secrets can live in files; setting
//     both is a problem.
//
// key is the path of node ("sms.providers[1].config") and must not be empty.
// Fields absent from node keep the values v already holds: the defaults. A nil
// or null node changes nothing but still reads the *_file options. Values of
// fields tagged secret are never quoted.
func DecodeStrict(node *yaml.Node, key string, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("config: DecodeStrict needs a pointer to a struct, got %T", v))
	}
	var errs Errors
	if node != nil {
		for node.Kind == yaml.AliasNode {
			node = node.Alias
		}
		if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
			node = node.Content[0]
		}
	}
	if node != nil && node.Tag != "!!null" && node.Kind != 0 {
		checkNode(node, rv.Elem().Type(), key, false, &errs)
		if len(errs) == 0 {
			// yaml.Node.Decode has no KnownFields: go through the text.
			data, err := yaml.Marshal(node)
			if err == nil {
				dec := yaml.NewDecoder(bytes.NewReader(data))
				dec.KnownFields(true)
				err = dec.Decode(v)
			}
			if err != nil {
				errs.add(key, "cannot be decoded: %v", err)
			}
		}
	}
	if len(errs) == 0 {
		readSecretFiles(rv.Elem(), key, &errs, map[string]bool{})
	}
	return errs.err()
}

// checkNode reports, by key path, every key of n that t does not have and
// every value that cannot be decoded into its field. A secret value is never
// quoted.
func checkNode(n *yaml.Node, t reflect.Type, path string, secret bool, errs *Errors) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Tag == "!!null" {
		return // keeps the default
	}
	switch {
	case t == reflect.TypeFor[PluginConfig]():
		// A plug-in's options: its registry decodes them.
		if n.Kind != yaml.MappingNode {
			errs.add(path, "must be a mapping of options (line %d)", n.Line)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			errs.add(path, "must be a mapping, like {\"+33\": [a], \"*\": [b]} (line %d)", n.Line)
			return
		}
		seen := map[string]int{} // key → line
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if line, dup := seen[k.Value]; dup {
				errs.add(join(path, k.Value), "is set twice (lines %d and %d)", line, k.Line)
				continue
			}
			seen[k.Value] = k.Line
			checkNode(v, t.Elem(), join(path, k.Value), false, errs)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if path == "" {
				*errs = append(*errs, fmt.Errorf("config file: line %d: the file must be a mapping of options, like 'issuer: https://id.example.com'", n.Line))
			} else {
				errs.add(path, "must be a mapping of options (line %d)", n.Line)
			}
			return
		}
		seen := map[string]int{} // key → line
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if line, dup := seen[k.Value]; dup {
				errs.add(join(path, k.Value), "is set twice (lines %d and %d)", line, k.Line)
				continue
			}
			seen[k.Value] = k.Line
			if k.Value == "<<" { // merge key: the merged mappings belong to t too
				for v.Kind == yaml.AliasNode {
					v = v.Alias
				}
				if v.Kind == yaml.SequenceNode {
					for _, m := range v.Content {
						checkNode(m, t, path, false, errs)
					}
				} else {
					checkNode(v, t, path, false, errs)
				}
				continue
			}
			f, ok := fieldByYAML(t, k.Value)
			if !ok {
				errs.add(join(path, k.Value), "is unknown (line %d)%s", k.Line, suggest(t, k.Value))
				continue
			}
			checkNode(v, f.Type, join(path, k.Value), f.Tag.Get("secret") != "", errs)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			errs.add(path, "must be a list, like [a, b] or one '- item' per line (line %d)", n.Line)
			return
		}
		for i, item := range n.Content {
			checkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), false, errs)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			errs.add(path, "must be a single value, not a list or a mapping (line %d)", n.Line)
			return
		}
		// yaml.v3 reads a bare integer into a time.Duration as nanoseconds.
		bad := t == durationType && n.Tag == "!!int" && n.Value != "0"
		if bad || n.Decode(reflect.New(t).Interface()) != nil {
			errs.add(path, "%s (line %d)", typeProblem(t, n.Value, secret), n.Line)
		}
	}
}

// applyEnv sets every scalar option (and list of scalars) outside clients
// from its OTPGATE_* variable.
func applyEnv(c *Config, getenv func(string) string, errs *Errors) {
	walk(reflect.ValueOf(c).Elem(), "", false, func(o option) {
		name := EnvName(o.path)
		raw := getenv(name)
		if raw == "" {
			return
		}
		if msg := setText(o, raw); msg != "" {
			errs.add(o.path, "(from %s) %s", name, msg)
		}
	})
}

// EnvName returns the environment variable of the option at path:
// "sms.code_ttl" → "OTPGATE_SMS_CODE_TTL".
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// setText sets o from raw, and returns what is wrong with raw, or "".
func setText(o option, raw string) string {
	v := o.value
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if u.UnmarshalText([]byte(raw)) != nil {
			return typeProblem(v.Type(), raw, o.secret())
		}
		return ""
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return typeProblem(v.Type(), raw, o.secret())
		}
		v.SetInt(int64(n))
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return typeProblem(v.Type(), raw, o.secret())
		}
		v.SetBool(b)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if err != nil {
			return typeProblem(v.Type(), raw, o.secret())
		}
		v.SetFloat(f)
	case reflect.Slice: // of strings: the only lists outside clients
		var list []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		panic(fmt.Sprintf("config: option %s: no environment syntax for %s", o.path, v.Type()))
	}
	return ""
}

// typeProblem says which syntax a value of type t needs. The value is quoted
// unless it is a secret.
var durationType = reflect.TypeFor[time.Duration]()

func typeProblem(t reflect.Type, raw string, secret bool) string {
	var want string
	switch {
	case t == reflect.TypeFor[Duration]():
		want = "must be a duration like '30s', '5m' or '720h'"
	case t == durationType: // in plug-in options
		want = "must be a duration like '10s' or '1m'"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		want = "must be a whole number"
	case t.Kind() == reflect.Bool:
		want = "must be true or false"
	case t.Kind() == reflect.Float64:
		want = "must be a number like '0.5'"
	default:
		want = "must be a " + t.String()
	}
	if secret {
		return want
	}
	return fmt.Sprintf("%s, got '%s'", want, raw)
}

// readSecretFiles reads every string option "x_file" that is set, in the
// struct v and under it, into its sibling "x", naming options after prefix.
// Both set is an error: which one should win is not obvious.
func readSecretFiles(v reflect.Value, prefix string, errs *Errors, reported map[string]bool) {
	walk(v, prefix, true, func(o option) {
		base, ok := strings.CutSuffix(o.name, "_file")
		if !ok || o.value.Kind() != reflect.String || o.value.String() == "" {
			return
		}
		target, ok := fieldValueByYAML(o.parent, base)
		if !ok || target.Kind() != reflect.String {
			return
		}
		file := o.value.String()
		targetPath := strings.TrimSuffix(o.path, "_file")
		if target.String() != "" {
			errs.add(targetPath, "and '%s' are both set: set only one", o.name)
			reported[targetPath] = true
			return
		}
		data, err := os.ReadFile(file)
		if err != nil {
			errs.add(o.path, "names a file that cannot be read: %v", err)
			reported[targetPath] = true
			return
		}
		secret := strings.TrimRight(string(data), "\r\n")
		if secret == "" {
			errs.add(o.path, "names an empty file, got '%s'", file)
			reported[targetPath] = true
			return
		}
		target.SetString(secret)
	})
}

// redact replaces, in the struct v points to, every secret that is set.
func redact(v any) {
	walk(reflect.ValueOf(v).Elem(), "", true, func(o option) {
		s := o.value.String()
		switch {
		case s == "":
		case o.field.Tag.Get("secret") == "url":
			o.value.SetString(redactURL(s))
		case o.secret():
			o.value.SetString("REDACTED")
		}
	})
}

// redactURL hides the password of a URL, and a user name alone (redis://secret@host
// is read as a password by some clients), keeping the rest readable.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "REDACTED"
	}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		} else {
			u.User = url.User("REDACTED")
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// option is one leaf of the configuration: a scalar or a list of scalars.
type option struct {
	path   string              // "sms.code_ttl", "clients[0].client_secret"
	name   string              // its yaml key: "code_ttl"
	field  reflect.StructField // its field, for tags
	value  reflect.Value       // settable
	parent reflect.Value       // the struct holding it
}

func (o option) secret() bool { return o.field.Tag.Get("secret") != "" }

// walk calls fn for every option under the struct v, in field order. It goes
// into lists of structs (clients) only when intoLists is set.
func walk(v reflect.Value, prefix string, intoLists bool, fn func(option)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		path, fv := join(prefix, name), v.Field(i)
		switch {
		case f.Type.Kind() == reflect.Struct:
			walk(fv, path, intoLists, fn)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			if intoLists {
				for j := range fv.Len() {
					walk(fv.Index(j), fmt.Sprintf("%s[%d]", path, j), intoLists, fn)
				}
			}
		case f.Type.Kind() == reflect.Map || f.Type == reflect.TypeFor[PluginConfig]():
			// sms.routes and plug-in options: set only in the file.
		default:
			fn(option{path: path, name: name, field: f, value: fv, parent: v})
		}
	}
}

// yamlName returns the key of f, or "" when f has none.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

func fieldByYAML(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); yamlName(f) == key && key != "" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldValueByYAML(v reflect.Value, key string) (reflect.Value, bool) {
	f, ok := fieldByYAML(v.Type(), key)
	if !ok {
		return reflect.Value{}, false
	}
	return v.FieldByIndex(f.Index), true
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// suggest proposes the key of t closest to an unknown one, or returns "".
func suggest(t reflect.Type, unknown string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", 3 // farther than 2 edits is not a typo
	for i := range t.NumField() {
		name := yamlName(t.Field(i))
		if name == "" {
			continue
		}
		d := editDistance(norm(unknown), norm(name))
		if d < bestDist {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean '%s'?", best)
}

// editDistance is the Levenshtein distance between a and b.
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
