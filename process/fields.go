package process

import (
	"slices"
	"sort"
	"unicode/utf8"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

// A processor that changes fields works on its own copy of the record's
// slice, made at the first change: an input may build many records on
// one backing array.
func own(e *event.Event, owned *bool) {
	if !*owned {
		e.Fields = slices.Clone(e.Fields)
		*owned = true
	}
}

type renamer struct{ pairs []RenamePair }

func newRenamer(c *RenameConfig, errs *[]error) processor {
	if len(c.Fields) == 0 {
		*errs = append(*errs, keyErr("fields", "missing: a list of {from, to}"))
	}
	for i, p := range c.Fields {
		if p.From == "" || p.To == "" {
			*errs = append(*errs, keyErr("fields", "[%d]: from and to are both needed", i))
		}
	}
	return &renamer{pairs: c.Fields}
}

func (r *renamer) apply(e *event.Event) verdict {
	v, owned := pass, false
	for _, p := range r.pairs {
		for i := range e.Fields {
			if e.Fields[i].Key == p.From {
				own(e, &owned)
				e.Fields[i].Key, v = p.To, changed
			}
		}
	}
	return v
}

type adder struct {
	m      *match.Matcher
	fields []event.Field
}

func newAdder(c *AddFieldsConfig, errs *[]error) processor {
	a := &adder{m: matchErrs(c.Match, errs)}
	if len(c.Fields) == 0 {
		*errs = append(*errs, keyErr("fields", "missing: a map of key: value (site: plant-3)"))
	}
	keys := make([]string, 0, len(c.Fields))
	for k := range c.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !validKey(k) {
			*errs = append(*errs, keyErr("fields."+k, "not a field key (letters, digits, _ . -)"))
		}
		a.fields = append(a.fields, event.Str(k, c.Fields[k]))
	}
	return a
}

func (a *adder) apply(e *event.Event) verdict {
	if !a.m.Match(e) {
		return pass
	}
	out := make([]event.Field, 0, len(e.Fields)+len(a.fields))
	for _, f := range e.Fields {
		if !slices.ContainsFunc(a.fields, func(x event.Field) bool { return x.Key == f.Key }) {
			out = append(out, f)
		}
	}
	e.Fields = append(out, a.fields...)
	return changed
}

type fieldDropper struct {
	m    *match.Matcher
	keys []string
}

func newFieldDropper(c *DropFieldsConfig, errs *[]error) processor {
	if len(c.Fields) == 0 {
		*errs = append(*errs, keyErr("fields", "missing: the keys to drop"))
	}
	return &fieldDropper{m: matchErrs(c.Match, errs), keys: c.Fields}
}

func (d *fieldDropper) apply(e *event.Event) verdict {
	if !d.m.Match(e) {
		return pass
	}
	hit := false
	for i := range e.Fields {
		if slices.Contains(d.keys, e.Fields[i].Key) {
			hit = true
			break
		}
	}
	if !hit {
		return pass
	}
	out := make([]event.Field, 0, len(e.Fields))
	for _, f := range e.Fields {
		if !slices.Contains(d.keys, f.Key) {
			out = append(out, f)
		}
	}
	e.Fields = out
	return changed
}

type truncator struct {
	field string // "" for the message
	max   int
	flag  string
}

func newTruncator(c *TruncateConfig, errs *[]error) processor {
	t := &truncator{field: c.Field, max: c.MaxBytes}
	if c.Field == "" {
		*errs = append(*errs, keyErr("field", "missing: message or a field's key"))
	}
	if c.MaxBytes <= 0 {
		*errs = append(*errs, keyErr("max_bytes", "%d: must be above 0", c.MaxBytes))
	}
	if t.field == "message" {
		t.field = ""
	}
	t.flag = "truncated." + c.Field
	return t
}

func (t *truncator) apply(e *event.Event) verdict {
	if t.field == "" {
		if len(e.Message) <= t.max {
			return pass
		}
		n := len(e.Message)
		e.Message = cut(e.Message, t.max)
		e.Fields = append(slices.Clip(e.Fields), event.Uint(t.flag, uint64(n)))
		return changed
	}
	owned := false
	for i := range e.Fields {
		f := &e.Fields[i]
		if f.Key != t.field || f.Value.Type != event.TypeString && f.Value.Type != event.TypeBytes || len(f.Value.Str) <= t.max {
			continue
		}
		own(e, &owned)
		f = &e.Fields[i]
		n := len(f.Value.Str)
		f.Value.Str = cut(f.Value.Str, t.max)
		e.Fields = append(e.Fields, event.Uint(t.flag, uint64(n)))
		return changed
	}
	return pass
}

// cut shortens s to at most n bytes, backing off to a rune's start where
// the cut would split a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}
