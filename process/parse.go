package process

import (
	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

// parser turns a record's text into fields.
type parser struct {
	m         *match.Matcher
	from      string // "" for the message
	prefix    string
	maxFields int
	parse     func(s string, add func(key string, v event.Value) bool) bool
}

const defaultMaxFields = 32

func newParser(c *ParseConfig, errs *[]error) processor {
	p := &parser{m: matchErrs(c.Match, errs), from: c.From, prefix: c.Prefix, maxFields: c.MaxFields}
	if p.from == "message" {
		p.from = ""
	}
	if c.MaxFields < 0 {
		*errs = append(*errs, keyErr("max_fields", "%d is negative", c.MaxFields))
	}
	if p.maxFields == 0 {
		p.maxFields = defaultMaxFields
	}
	if c.Pattern != "" && c.Format != "dissect" {
		*errs = append(*errs, keyErr("pattern", "only format: dissect takes a pattern"))
	}
	switch c.Format {
	case "dissect":
		d, err := compileDissect(c.Pattern)
		if err != nil {
			*errs = append(*errs, keyErr("pattern", "%v", err))
		} else {
			p.parse = d.parse
		}
	case "kv":
		p.parse = parseKV
	case "json":
		p.parse = parseJSON
	case "sd":
		p.parse = parseSD
	case "":
		*errs = append(*errs, keyErr("format", "missing: dissect, kv, json or sd"))
	default:
		*errs = append(*errs, keyErr("format", "%q is not dissect, kv, json or sd", c.Format))
	}
	return p
}

func (p *parser) apply(e *event.Event) verdict {
	if !p.m.Match(e) {
		return pass
	}
	text := e.Message
	if p.from != "" {
		f := fieldOf(e, p.from)
		if f == nil || f.Value.Type != event.TypeString && f.Value.Type != event.TypeBytes {
			return pass
		}
		text = f.Value.Str
	}
	// The fields are appended to a copy: the record's own slice may be
	// shared with the batch the input keeps.
	var out []event.Field
	n := 0
	ok := p.parse(text, func(key string, v event.Value) bool {
		if n >= p.maxFields {
			return false
		}
		if out == nil {
			out = make([]event.Field, len(e.Fields), len(e.Fields)+4)
			copy(out, e.Fields)
		}
		out = append(out, event.Field{Key: p.prefix + key, Value: v})
		n++
		return true
	})
	if !ok || out == nil {
		return pass
	}
	e.Fields = out
	return changed
}

func str(s string) event.Value { return event.Value{Type: event.TypeString, Str: s} }
