package gateway

import (
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/hostlog"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/line"
	"github.com/weirgw/weir/sensors/modbus/poll"
	"github.com/weirgw/weir/sensors/syslog"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink/siem/outputs"
)

// The configuration file is read by walking its YAML node tree against
// Config's Go types, so that the schema is the structs themselves (a key
// added to a package's Config is known here at once) and every problem
// carries the line and column it was found at. Each value is checked
// against its field's type before it is stored: a section must be a
// mapping, a list a list, a duration must have a unit, a number must be a
// number. Nothing is converted behind the operator's back.
//
// What a value left out means: a key absent or with no value (null)
// keeps its default; a list with no value is empty; an optional section
// (inputs.syslog, audit, integrity) with no value is off.

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// maxDepth bounds the walk: the configuration is a few levels deep, and
// aliases could otherwise make a small file expand without end.
const maxDepth = 32

// maxNodes bounds the values read, aliases expanded: a configuration has a
// few thousand at most.
const maxNodes = 1_000_000

// place is where a key and its value are in the file.
type place struct {
	keyLine, keyCol int
	valLine, valCol int
}

// decoder decodes one source (the defaults, the file, one variable) onto
// a Config, collecting problems instead of stopping at the first.
type decoder struct {
	file   string // the file, for problems
	env    string // the variable, when decoding one
	probs  []Problem
	places map[string]place // key path → where, for the file's keys
	bad    []string         // keys whose value was refused
	nodes  int              // nodes visited, to bound alias expansion
}

// problem refuses the value at path.
func (d *decoder) problem(n *yaml.Node, path, format string, a ...any) {
	d.bad = append(d.bad, path)
	d.keyProblem(n, path, format, a...)
}

// keyProblem reports a problem with a key of the mapping at path.
func (d *decoder) keyProblem(n *yaml.Node, path, format string, a ...any) {
	p := Problem{File: d.file, Env: d.env, Key: keyName(path), Message: fmt.Sprintf(format, a...)}
	if d.env != "" {
		p.File = ""
	} else if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.probs = append(d.probs, p)
}

func keyName(path string) string {
	if path == "" {
		return TopLevel
	}
	return path
}

// parseYAML reads one YAML document; a syntax error is a problem on its
// line. An empty document is nil.
func parseYAML(file string, b []byte) (*yaml.Node, []Problem) {
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, []Problem{syntaxProblem(file, b, err)}
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, []Problem{{File: file, Line: next.Line, Column: next.Column,
			Message: "a second YAML document (after ---); the configuration is one document"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, []Problem{syntaxProblem(file, b, err)}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem words the YAML parser's error for the file's reader.
func syntaxProblem(file string, b []byte, err error) Problem {
	p := Problem{File: file, Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Message = "not valid YAML: " + m[2]
		lines := strings.Split(string(b), "\n")
		if p.Line >= 1 && p.Line <= len(lines) && strings.Contains(lines[p.Line-1], "\t") {
			p.Message += " (a tab: YAML is indented with spaces only)"
		}
	}
	return p
}

// decodeInto decodes root onto v (which holds the defaults so far).
func (d *decoder) decodeInto(root *yaml.Node, v reflect.Value, path string) {
	if root == nil {
		return
	}
	d.decode(root, v, path, 0)
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	d.nodes++
	if d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.problem(n, path, "more than %d values, through aliases; write the configuration out", maxNodes)
		}
		return
	}
	if depth > maxDepth {
		d.problem(n, path, "nested too deep")
		return
	}
	if n.Kind == yaml.AliasNode {
		d.decode(n.Alias, v, path, depth+1)
		return
	}
	t := v.Type()
	if isNull(n) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Map:
			v.SetZero() // an optional section: off
		case reflect.Slice:
			v.Set(reflect.MakeSlice(t, 0, 0)) // a list: none
		}
		return // anything else keeps its default
	}
	if t == durationType {
		d.duration(n, v, path)
		return
	}
	if t.Kind() != reflect.Struct && reflect.PointerTo(t).Implements(textUnmarshalerType) {
		d.text(n, v, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if n.Kind != yaml.MappingNode && t.Elem().Kind() == reflect.Struct {
			d.problem(n, path, "found %s, expected %s", found(n), expect(t))
			return
		}
		if v.IsNil() {
			e := reflect.New(t.Elem())
			e.Elem().Set(itemDefault(t.Elem()))
			v.Set(e)
		}
		d.decode(n, v.Elem(), path, depth+1)
	case reflect.Struct:
		d.mapping(n, v, path, depth)
	case reflect.Slice:
		if n.Kind == yaml.ScalarNode && t.Elem().Kind() == reflect.String {
			d.problem(n, path, "found %s, expected a list of text values, such as [%s]", found(n), clipText(n.Value, 60))
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.problem(n, path, "found %s, expected %s", found(n), expect(t))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.remember(p, item, item)
			s.Index(i).Set(itemDefault(t.Elem()))
			d.decode(item, s.Index(i), p, depth+1)
		}
		v.Set(s)
	case reflect.Map:
		d.stringMap(n, v, path, depth)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.problem(n, path, "found %s, which cannot be read", found(n))
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.scalar(n, v, path)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// remember notes where path is, for problems found later (Validate).
func (d *decoder) remember(path string, key, val *yaml.Node) {
	if d.places != nil {
		d.places[path] = place{key.Line, key.Column, val.Line, val.Column}
	}
}

// mapping decodes a YAML mapping onto struct v, key by key.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, depth int) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.problem(n, path, "found %s, expected %s", found(n), expect(t))
		return
	}
	// Merge keys (<<: *anchor) first, so keys written here win.
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			d.merge(val, v, path, depth)
		}
	}
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind == yaml.AliasNode {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.keyProblem(k, path, "found %s as a key, expected a key name", found(k))
			continue
		}
		f, ok := fieldByKey(t, k.Value)
		if !ok {
			d.keyProblem(k, path, "%s", unknownKey(t, path, k.Value))
			continue
		}
		name := fieldKey(f)
		if prev, dup := first[name]; dup {
			d.keyProblem(k, path, "`%s` is given twice (first at line %d); give it once", k.Value, prev.Line)
			continue
		}
		first[name] = k
		p := joinKey(path, name)
		d.remember(p, k, val)
		d.decode(val, v.FieldByIndex(f.Index), p, depth+1)
	}
}

// merge applies a merge key's value: a mapping, or a list of them.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.SequenceNode {
		for _, m := range n.Content {
			d.merge(m, v, path, depth+1)
		}
		return
	}
	d.mapping(n, v, path, depth+1)
}

// stringMap decodes a mapping with keys of the operator's choosing.
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string, depth int) {
	t := v.Type()
	if n.Kind != yaml.MappingNode || t.Key().Kind() != reflect.String {
		d.problem(n, path, "found %s, expected %s", found(n), expect(t))
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.keyProblem(k, path, "found %s as a key, expected a key name", found(k))
			continue
		}
		p := joinKey(path, k.Value)
		d.remember(p, k, val)
		e := reflect.New(t.Elem()).Elem()
		e.Set(itemDefault(t.Elem()))
		d.decode(val, e, p, depth+1)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), e)
	}
	v.Set(m)
}

// scalar decodes text, booleans and numbers.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	bad := func() { d.problem(n, path, "found %s, expected %s", found(n), expect(t)) }
	if n.Kind != yaml.ScalarNode {
		bad()
		return
	}
	tag := n.ShortTag()
	switch t.Kind() {
	case reflect.String:
		switch tag {
		case "!!str", "!!int", "!!float", "!!timestamp":
			// The text as written: 007 stays 007.
			v.SetString(n.Value)
		case "!!bool":
			d.problem(n, path, "found %s, expected text; write \"%s\" in quotes if that is meant", n.Value, n.Value)
		default:
			bad()
		}
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			bad()
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.notNumber(n, v, path)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if tag != "!!int" || n.Decode(&u) != nil || v.OverflowUint(u) {
			d.notNumber(n, v, path)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil || v.OverflowFloat(f) {
			d.notNumber(n, v, path)
			return
		}
		v.SetFloat(f)
	default:
		d.problem(n, path, "cannot be set from the configuration")
	}
}

// notNumber says what is wrong with a value for a number, with a hint
// when it is a number in quotes.
func (d *decoder) notNumber(n *yaml.Node, v reflect.Value, path string) {
	hint := ""
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && d.env == "" {
		if _, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64); err == nil {
			hint = " (without quotes)"
		}
	}
	d.problem(n, path, "found %s, expected %s%s", found(n), expect(v.Type()), hint)
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str":
			x, err := time.ParseDuration(strings.TrimSpace(n.Value))
			if err == nil {
				v.SetInt(int64(x))
				return
			}
		case "!!int", "!!float":
			if f, err := strconv.ParseFloat(n.Value, 64); err == nil && f == 0 {
				v.SetInt(0) // no unit needed for nothing
				return
			}
			d.problem(n, path, "found %s without a unit, expected a duration with a unit, such as %sms or %ss (units: %s)",
				n.Value, n.Value, n.Value, durationUnits)
			return
		}
	}
	d.problem(n, path, "found %s, expected %s", found(n), expect(v.Type()))
}

func (d *decoder) text(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!str" || n.ShortTag() == "!!int") {
		p := reflect.New(v.Type())
		if err := p.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err == nil {
			v.Set(p.Elem())
			return
		}
	}
	d.problem(n, path, "found %s, expected %s", found(n), expect(v.Type()))
}

const durationUnits = "ns, us, ms, s, m, h"

// found describes a value as the operator wrote it.
func found(n *yaml.Node) string {
	switch n.Kind {
	case yaml.AliasNode:
		return found(n.Alias)
	case yaml.MappingNode:
		var keys []string
		for i := 0; i+1 < len(n.Content) && len(keys) < 3; i += 2 {
			keys = append(keys, clipText(n.Content[i].Value, 20))
		}
		if len(n.Content) > 6 {
			keys = append(keys, "...")
		}
		if len(keys) == 0 {
			return "an empty mapping ({})"
		}
		return "a mapping (" + strings.Join(keys, ", ") + ")"
	case yaml.SequenceNode:
		switch len(n.Content) {
		case 0:
			return "an empty list ([])"
		case 1:
			return "a list of 1 item"
		}
		return "a list of " + strconv.Itoa(len(n.Content)) + " items"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "no value"
		case "!!str":
			return strconv.Quote(clipText(n.Value, 60))
		}
		return clipText(n.Value, 60)
	}
	return "nothing"
}

func clipText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "..."
}

// expect describes what a field of type t takes.
func expect(t reflect.Type) string {
	switch t {
	case durationType:
		return "a duration with a unit, such as 250ms, 30s, 5m or 1h (units: " + durationUnits + ")"
	case reflect.TypeFor[spool.ByteSize]():
		return "a size such as 512MiB or 4GiB, or a number of bytes (units: B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
	case reflect.TypeFor[rules.Level]():
		return "a level: NONE, LOG, NOTIFY, PAGE, ESCALATE or CRITICAL (or 0 to 5)"
	}
	switch t.Kind() {
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Struct {
			return "a mapping of its keys (" + keyList(t.Elem(), 4) + "; {} takes every default), or no value for off"
		}
		return expect(t.Elem())
	case reflect.Struct:
		return "a mapping of its keys (" + keyList(t, 4) + ")"
	case reflect.Slice:
		e := t.Elem()
		if e.Kind() == reflect.Struct {
			return "a list, each item a mapping of keys (" + keyList(e, 4) + ")"
		}
		return "a list of " + plural(expect(e)) + ", such as [a, b]"
	case reflect.Map:
		return "a mapping"
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Int8, reflect.Int16, reflect.Int32:
		bits := t.Bits()
		return fmt.Sprintf("a whole number from %d to %d", -(int64(1) << (bits - 1)), int64(1)<<(bits-1)-1)
	case reflect.Uint, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return fmt.Sprintf("a whole number from 0 to %d", uint64(math.MaxUint64)>>(64-t.Bits()))
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a value"
}

func plural(s string) string {
	switch s {
	case "text":
		return "text values"
	case "a number":
		return "numbers"
	case "a whole number":
		return "whole numbers"
	}
	return "values (" + s + ")"
}

// keyList names up to n keys of struct t, in the order of its fields.
func keyList(t reflect.Type, n int) string {
	keys := fieldKeys(t)
	if len(keys) > n {
		keys = append(keys[:n:n], "...")
	}
	return strings.Join(keys, ", ")
}

// fieldKeys are the keys of struct t, in the order of its fields.
func fieldKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); configField(f) {
			keys = append(keys, fieldKey(f))
		}
	}
	return keys
}

// configField says whether f is a key of the configuration.
func configField(f reflect.StructField) bool {
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	return f.IsExported() && name != "-"
}

// fieldKey is f's key: its mapstructure tag, else its name in lower case.
func fieldKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

// fieldByKey finds the field of struct t that key k names, ignoring case.
func fieldByKey(t reflect.Type, k string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if configField(f) && strings.EqualFold(fieldKey(f), k) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// unknownKey words the problem of key k in section t at path: the
// nearest key of the section, else where the key belongs (below this
// section if it can, named from here), else the keys there are.
func unknownKey(t reflect.Type, path, k string) string {
	keys := fieldKeys(t)
	msg := "unknown key `" + clipText(k, 40) + "`; "
	if s := suggest(k, keys); len(s) > 0 {
		return msg + didYouMean(s)
	}
	here := schemaPath(path)
	var below, elsewhere []string
	for _, p := range schemaPaths(reflect.TypeFor[Config]()) {
		if last := p[strings.LastIndexAny(p, ".]")+1:]; !strings.EqualFold(last, k) {
			continue
		}
		if rel, ok := strings.CutPrefix(p, here+"."); ok || here == "" {
			below = append(below, cmp.Or(rel, p))
		} else {
			elsewhere = append(elsewhere, p)
		}
	}
	switch {
	case len(below) > 0 && len(below) <= 3:
		return msg + "it belongs in a section here: " + didYouMean(below)
	case len(elsewhere) > 0 && len(elsewhere) <= 3:
		return msg + "it belongs in another section: " + didYouMean(elsewhere)
	}
	return msg + "the keys here are " + strings.Join(keys, ", ")
}

// schemaPath writes a key path as schemaPaths does: list items as [].
func schemaPath(path string) string {
	return listIndex.ReplaceAllString(path, "[]")
}

var listIndex = regexp.MustCompile(`\[\d+\]`)

// schemaPaths lists every key path of t, list items written [].
func schemaPaths(t reflect.Type) []string {
	var out []string
	// A type that holds itself (a matcher's all, any and not) is walked
	// once per path: its keys are the same at every depth.
	onPath := map[reflect.Type]bool{}
	var walk func(prefix string, t reflect.Type, depth int)
	walk = func(prefix string, t reflect.Type, depth int) {
		if depth > maxDepth {
			return
		}
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			if t.Kind() == reflect.Slice {
				prefix += "[]"
			}
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == durationType || onPath[t] {
			return
		}
		onPath[t] = true
		defer delete(onPath, t)
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !configField(f) {
				continue
			}
			p := joinKey(prefix, fieldKey(f))
			out = append(out, p)
			walk(p, f.Type, depth+1)
		}
	}
	walk("", t, 0)
	return out
}

// itemDefault is what a list item or an optional section of type t
// starts from before its keys are decoded onto it: keys an item omits
// keep its input's defaults.
func itemDefault(t reflect.Type) reflect.Value {
	var d any
	switch t {
	case reflect.TypeFor[hostlog.FileConfig]():
		d = hostlog.DefaultFileConfig()
	case reflect.TypeFor[poll.BusConfig]():
		d = poll.DefaultBusConfig()
	case reflect.TypeFor[poll.DeviceConfig]():
		d = poll.DefaultDeviceConfig()
	case reflect.TypeFor[line.Config]():
		d = line.DefaultConfig()
	case reflect.TypeFor[syslog.Config]():
		d = syslog.DefaultConfig()
	case reflect.TypeFor[audit.Config]():
		d = audit.DefaultConfig()
	case reflect.TypeFor[integrity.Config]():
		d = integrity.DefaultConfig()
	case reflect.TypeFor[board.Config]():
		d = board.DefaultConfig()
	case reflect.TypeFor[outputs.Config]():
		d = outputs.DefaultConfig()
	case reflect.TypeFor[rules.RuleConfig]():
		d = rules.DefaultRule()
	default:
		return reflect.New(t).Elem()
	}
	return reflect.ValueOf(d)
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
