package gateway

import (
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Environment overrides. Every key that holds one value (text, a number,
// a duration, a size, true or false, or a list of text) can be set by a
// variable named after its path: uplink.tls.key_pem is
// WEIR_UPLINK_TLS_KEY_PEM. A variable wins over the file and the
// defaults. Its value is read as it would be written in the file (a
// duration needs its unit, a list is written [a, b]), except that text is
// taken as it is, quotes and all; an empty variable sets text to ""
// (clearing what the file gave) and a list to none, and is an error for
// anything else. A variable naming a key of an optional input
// (inputs.syslog, audit, integrity) turns that input on, as the key would
// in the file.

// settingForms are keys that give one setting in different forms: the
// file may name a key file, the environment may hold the key itself.
// A variable for any form replaces every form the file gave.
func settingForms() [][]string {
	return [][]string{
		{"uplink.tls.key", "uplink.tls.key_pem"},
	}
}

// envSetting is a key the environment can name.
type envSetting struct {
	path  string
	index [][]int // field indexes from Config, one step per struct level
	typ   reflect.Type
	// what, for keys that cannot be set from a variable: "a section",
	// "a list of mappings".
	what string
}

// envName is the variable for key path.
func envName(path string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// envSettings lists every key of Config by variable name.
func envSettings() map[string]envSetting {
	out := map[string]envSetting{}
	var walk func(prefix string, t reflect.Type, index [][]int, depth int)
	walk = func(prefix string, t reflect.Type, index [][]int, depth int) {
		if depth > maxDepth {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !configField(f) {
				continue
			}
			p := joinKey(prefix, fieldKey(f))
			idx := append(append([][]int(nil), index...), f.Index)
			s := envSetting{path: p, index: idx, typ: f.Type}
			ft := f.Type
			if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
				ft = ft.Elem()
			}
			switch {
			case ft == durationType || ft.Kind() != reflect.Struct && reflect.PointerTo(ft).Implements(textUnmarshalerType):
			case ft.Kind() == reflect.Struct:
				s.what = "a section"
				walk(p, ft, idx, depth+1)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				s.what = "a list of mappings"
			case ft.Kind() == reflect.Map:
				s.what = "a mapping"
			}
			out[envName(p)] = s
		}
	}
	walk("", reflect.TypeFor[Config](), nil, 0)
	return out
}

// field reaches s's field in c, turning on an optional section on the
// way (from its defaults) when on is true; without on, a section that is
// off yields an invalid Value.
func (s envSetting) field(c *Config, on bool) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for i, step := range s.index {
		v = v.FieldByIndex(step)
		if i == len(s.index)-1 {
			break
		}
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !on {
					return reflect.Value{}
				}
				e := reflect.New(v.Type().Elem())
				e.Elem().Set(itemDefault(v.Type().Elem()))
				v.Set(e)
			}
			v = v.Elem()
		}
	}
	return v
}

// applyEnv applies the WEIR_* variables of environ to c. It returns the
// variables used, sorted, and the key each set.
func applyEnv(c *Config, environ []string) (used []string, keys map[string]string, probs []Problem) {
	settings := envSettings()
	keys = map[string]string{}
	vals := map[string]string{}
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix+"_") && name != EnvPrefix+"_CONFIG" {
			vals[name] = val
		}
	}
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	setBy := map[string]bool{}
	for _, name := range names {
		val := vals[name]
		s, ok := settings[name]
		if !ok {
			probs = append(probs, Problem{Env: name, Message: unknownVariable(name, settings)})
			continue
		}
		if s.what != "" {
			probs = append(probs, Problem{Env: name, Key: s.path, Message: s.what + exampleVariable(s.path, settings)})
			continue
		}
		d := &decoder{env: name}
		setEnv(d, s.field(c, true), s.path, val)
		if len(d.probs) > 0 {
			probs = append(probs, d.probs...)
			continue
		}
		used = append(used, name)
		keys[s.path] = name
		setBy[s.path] = true
	}
	for _, forms := range settingForms() {
		var given []string
		for _, k := range forms {
			if setBy[k] {
				given = append(given, envName(k))
			}
		}
		if len(given) > 1 {
			probs = append(probs, Problem{Env: given[0], Key: forms[0],
				Message: strings.Join(given, " and ") + " give one setting twice, in two forms; set one of them"})
			continue
		}
		if len(given) == 0 {
			continue
		}
		for _, k := range forms {
			if setBy[k] {
				continue
			}
			if f := settings[envName(k)].field(c, false); f.IsValid() {
				f.SetZero()
			}
		}
	}
	return used, keys, probs
}

// setEnv sets field v from a variable's text.
func setEnv(d *decoder, v reflect.Value, path, val string) {
	t := v.Type()
	switch {
	case t.Kind() == reflect.String:
		v.SetString(val) // text as it is: a PEM key, a path with quotes
		return
	case val == "" && t.Kind() == reflect.Slice:
		v.Set(reflect.MakeSlice(t, 0, 0))
		return
	case val == "":
		d.problem(nil, path, "found an empty value, expected %s", expect(t))
		return
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(val), &doc); err != nil || len(doc.Content) == 0 {
		d.problem(nil, path, "found %q, expected %s", clipText(val, 60), expect(t))
		return
	}
	d.decode(doc.Content[0], v, path, 0)
}

// unknownVariable words a WEIR_* variable that names no key.
func unknownVariable(name string, settings map[string]envSetting) string {
	var all []string
	for n, s := range settings {
		if s.what == "" {
			all = append(all, n)
		}
	}
	sort.Strings(all)
	msg := "names no configuration key"
	if s := suggest(name, all); len(s) > 0 {
		return msg + "; " + didYouMean(s)
	}
	return msg + " (" + EnvPrefix + "_ and the key's path in capitals, . as _: uplink.window is " + envName("uplink.window") + ")"
}

// exampleVariable ends the message for a variable naming a section or a
// list: what can be set instead.
func exampleVariable(path string, settings map[string]envSetting) string {
	var under []string
	for _, s := range settings {
		if s.what == "" && strings.HasPrefix(s.path, path+".") {
			under = append(under, envName(s.path))
		}
	}
	sort.Strings(under)
	if len(under) > 0 {
		return "; a variable sets one key in it, such as " + under[0]
	}
	return ", written in the configuration file, not in a variable"
}
