package event

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MarshalJSON renders e in the sink format (AppendJSON). The shape is
// stable: keys are snake_case and never renamed. A message that is not
// valid UTF-8 is also given whole in message_base64, since JSON strings
// cannot carry arbitrary bytes and a SOC must see exactly what the device
// wrote; so is a string field's value (as <key>_base64).
func (e *Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// AppendJSON appends e in the sink format to dst, built without
// reflection or a second pass: the collector writes every record it
// receives this way. The format was defined as encoding/json's rendering
// of a struct and a map of fields; sinks written then must still verify,
// so FuzzAppendJSON holds AppendJSON to that rendering byte for byte.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"gateway":`...)
	dst = appendJSONString(dst, e.Gateway)
	dst = append(dst, `,"time":"`...)
	dst = time.Unix(0, e.Time).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","time_ns":`...)
	dst = strconv.AppendInt(dst, e.Time, 10)
	dst = append(dst, `,"time_quality":{"source":`...)
	dst = appendJSONString(dst, e.Quality.Source.String())
	dst = append(dst, `,"state":`...)
	dst = appendJSONString(dst, e.Quality.State.String())
	dst = append(dst, `,"error_bound_ns":`...)
	if e.Quality.ErrorBound >= 0 {
		dst = strconv.AppendInt(dst, e.Quality.ErrorBound, 10)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, '}')
	if e.Observed != 0 {
		dst = append(dst, `,"observed":"`...)
		dst = time.Unix(0, e.Observed).UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"source":`...)
	dst = appendJSONString(dst, e.Source)
	dst = append(dst, `,"kind":`...)
	dst = appendJSONString(dst, e.Kind.String())
	dst = append(dst, `,"severity":`...)
	dst = appendJSONString(dst, e.Severity.String())
	dst = append(dst, `,"priority":`...)
	dst = appendJSONString(dst, e.Priority.String())
	if e.Host != "" {
		dst = append(dst, `,"host":`...)
		dst = appendJSONString(dst, e.Host)
	}
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, e.Message)
	if !utf8.ValidString(e.Message) {
		dst = append(dst, `,"message_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(e.Message))
		dst = append(dst, '"')
	}
	if len(e.Fields) > 0 {
		dst = appendJSONFields(dst, e.Fields)
	}
	if e.Checksum != ChecksumNone {
		dst = append(dst, `,"checksum":`...)
		dst = appendJSONString(dst, e.Checksum.String())
	}
	return append(dst, '}')
}

// appendJSONFields appends the fields object as MarshalJSON's map renders
// it: keys sorted, a later field of the same key (or a field named like
// another's _base64 companion) replacing an earlier one.
func appendJSONFields(dst []byte, fields []Field) []byte {
	type kv struct {
		key string
		val Value
		b64 bool // the base64 companion of a string that is not UTF-8
	}
	var buf [16]kv
	kvs := buf[:0]
	put := func(x kv) {
		for i := range kvs {
			if kvs[i].key == x.key {
				kvs[i] = x
				return
			}
		}
		kvs = append(kvs, x)
	}
	for _, f := range fields {
		put(kv{key: f.Key, val: f.Value})
		if f.Value.Type == TypeString && !utf8.ValidString(f.Value.Str) {
			put(kv{key: f.Key + "_base64", val: f.Value, b64: true})
		}
	}
	slices.SortFunc(kvs, func(a, b kv) int { return strings.Compare(a.key, b.key) })
	dst = append(dst, `,"fields":{`...)
	for i, x := range kvs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, x.key)
		dst = append(dst, ':')
		if x.b64 {
			dst = append(dst, '"')
			dst = base64.StdEncoding.AppendEncode(dst, []byte(x.val.Str))
			dst = append(dst, '"')
			continue
		}
		dst = x.val.appendJSON(dst)
	}
	return append(dst, '}')
}

// appendJSON appends v as a JSON value: numbers and booleans as such,
// a float JSON cannot hold (NaN, ±Inf) and bytes (hex) as strings.
func (v Value) appendJSON(dst []byte) []byte {
	switch v.Type {
	case TypeString:
		return appendJSONString(dst, v.Str)
	case TypeInt:
		return strconv.AppendInt(dst, v.Int(), 10)
	case TypeUint:
		return strconv.AppendUint(dst, v.Num, 10)
	case TypeFloat:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return appendJSONString(dst, v.String())
		}
		return appendJSONFloat(dst, f)
	case TypeBool:
		return strconv.AppendBool(dst, v.Bool())
	}
	return appendJSONString(dst, v.String())
}

// appendJSONFloat formats f as encoding/json does (ECMAScript's shortest
// form: an exponent below 1e-6 and from 1e21 on).
func appendJSONFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as JavaScript writes it
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendJSONString quotes s as encoding/json does: HTML's <, > and & and
// the line and paragraph separators escaped, each byte of invalid UTF-8
// replaced by U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
