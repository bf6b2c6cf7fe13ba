package process

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"regexp"
	"strings"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

// redactor replaces values with a mask or a keyed token.
type redactor struct {
	m      *match.Matcher
	fields []string
	re     *regexp.Regexp
	group  bool // replace the first group, not the whole match
	mask   string
	key    []byte // hmac, when set
}

// minHMACKey is the shortest key accepted: a short key lets anyone who
// guesses it turn tokens back into values by trying them.
const minHMACKey = 16

// tokenPrefix marks a keyed token, so a reader tells it from a value.
const tokenPrefix = "hmac:"

func newRedactor(c *RedactConfig, errs *[]error) processor {
	r := &redactor{m: matchErrs(c.Match, errs), fields: c.Fields, mask: c.Mask}
	if len(c.Fields) == 0 && c.Regex == "" {
		*errs = append(*errs, keyErr("fields", "missing: name the fields to redact, or give a regex"))
	}
	for i, f := range c.Fields {
		if f == "" {
			*errs = append(*errs, keyErr("fields", "[%d] is empty", i))
		}
	}
	if c.Regex != "" {
		re, err := regexp.Compile(c.Regex)
		if err != nil {
			*errs = append(*errs, keyErr("regex", "%v", err))
		} else {
			r.re, r.group = re, re.NumSubexp() > 0
		}
	}
	switch c.With {
	case "", "mask":
		if r.mask == "" {
			r.mask = "***"
		}
		if c.HMACKey != "" {
			*errs = append(*errs, keyErr("hmac_key", "given with with: mask (did you mean with: hmac?)"))
		}
	case "hmac":
		if len(c.HMACKey) < minHMACKey {
			*errs = append(*errs, keyErr("hmac_key", "%d bytes: with: hmac needs a key of at least %d", len(c.HMACKey), minHMACKey))
		}
		r.key = []byte(c.HMACKey)
	default:
		*errs = append(*errs, keyErr("with", "%q is not mask or hmac", c.With))
	}
	return r
}

func (r *redactor) apply(e *event.Event) verdict {
	if !r.m.Match(e) {
		return pass
	}
	v, owned := pass, false
	var mac hash.Hash
	if r.re != nil {
		if s, ok := r.replace(e.Message, &mac); ok {
			e.Message, v = s, changed
		}
	}
	for _, k := range r.fields {
		for i := range e.Fields {
			f := &e.Fields[i]
			if f.Key != k {
				continue
			}
			if r.re != nil {
				if f.Value.Type != event.TypeString && f.Value.Type != event.TypeBytes {
					continue
				}
				if s, ok := r.replace(f.Value.Str, &mac); ok {
					own(e, &owned)
					e.Fields[i].Value, v = event.Value{Type: event.TypeString, Str: s}, changed
				}
				continue
			}
			t := r.token(f.Value.String(), &mac)
			own(e, &owned)
			e.Fields[i].Value, v = event.Value{Type: event.TypeString, Str: t}, changed
		}
	}
	return v
}

// replace redacts what the regex matches in s.
func (r *redactor) replace(s string, mac *hash.Hash) (string, bool) {
	locs := r.re.FindAllStringSubmatchIndex(s, -1)
	if len(locs) == 0 {
		return s, false
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for _, l := range locs {
		from, to := l[0], l[1]
		if r.group {
			from, to = l[2], l[3]
			if from < 0 {
				continue // the group took no part in this match
			}
		}
		if from < last {
			continue
		}
		b.WriteString(s[last:from])
		b.WriteString(r.token(s[from:to], mac))
		last = to
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// token is what replaces v: the mask, or the keyed hash of v.
func (r *redactor) token(v string, mac *hash.Hash) string {
	if r.key == nil {
		return r.mask
	}
	if *mac == nil {
		*mac = hmac.New(sha256.New, r.key)
	}
	h := *mac
	h.Reset()
	h.Write([]byte(v))
	var sum [sha256.Size]byte
	// 96 bits: no two values a site logs share a token in practice, and
	// a token stays short on the wire.
	return tokenPrefix + hex.EncodeToString(h.Sum(sum[:0])[:12])
}
