package siem

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// LEEFRecord is a LEEF 2.0 line read back.
type LEEFRecord struct {
	Vendor, Product, Version, EventID string
	Delimiter                         byte
	Keys                              []string // in the order given
	Attrs                             map[string]string
}

// ParseLEEF reads one LEEF:2.0 line strictly: five header fields
// separated by unescaped '|' (escapes \\ and \| only), the delimiter
// (one character, or xNN / 0xNN), then key=value attributes separated by
// it, each key non-empty and without '=', no key twice, no line end
// anywhere.
func ParseLEEF(line string) (*LEEFRecord, error) {
	if !utf8.ValidString(line) {
		return nil, errors.New("leef: not UTF-8")
	}
	if strings.ContainsAny(line, "\r\n") {
		return nil, errors.New("leef: raw line end")
	}
	rest, ok := strings.CutPrefix(line, "LEEF:2.0|")
	if !ok {
		return nil, errors.New("leef: does not start with LEEF:2.0|")
	}
	var hdr [5]string
	for i := range hdr {
		v, n, err := cefHeaderField(rest)
		if err != nil {
			return nil, fmt.Errorf("leef: header field %d: %w", i+2, err)
		}
		hdr[i], rest = v, rest[n:]
	}
	d, err := ParseDelimiter(hdr[4])
	if err != nil || hdr[4] == "" || hdr[4] == "tab" {
		return nil, fmt.Errorf("leef: delimiter %q: not one character or xNN", hdr[4])
	}
	r := &LEEFRecord{Vendor: hdr[0], Product: hdr[1], Version: hdr[2], EventID: hdr[3], Delimiter: d, Attrs: map[string]string{}}
	if rest == "" {
		return r, nil
	}
	for _, a := range strings.Split(rest, string(d)) {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("leef: attribute %q is not key=value", clip(a))
		}
		if _, dup := r.Attrs[k]; dup {
			return nil, fmt.Errorf("leef: key %s given twice", k)
		}
		r.Keys = append(r.Keys, k)
		r.Attrs[k] = v
	}
	return r, nil
}
