package process

import (
	"errors"
	"fmt"
	"strings"

	"github.com/weirgw/weir/event"
)

// dissect is a compiled dissect pattern: a literal prefix, then keys each
// followed by the literal that ends it ("" for the last: the rest).
type dissect struct {
	prefix string
	keys   []dissectKey
}

type dissectKey struct {
	name  string // "" to skip
	delim string
	pad   bool // -> : the delimiter may repeat
}

// maxDissectKeys bounds a pattern: a few dozen keys is already a long
// line format.
const maxDissectKeys = 64

func compileDissect(pattern string) (*dissect, error) {
	if pattern == "" {
		return nil, errors.New("missing: format: dissect needs a pattern such as \"%{ts} %{level} %{msg}\"")
	}
	d := &dissect{}
	rest := pattern
	i := strings.Index(rest, "%{")
	if i < 0 {
		return nil, fmt.Errorf("%q has no %%{key}", pattern)
	}
	d.prefix, rest = rest[:i], rest[i:]
	for rest != "" {
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return nil, fmt.Errorf("%%{ at byte %d has no closing }", len(pattern)-len(rest))
		}
		name := rest[2:end]
		rest = rest[end+1:]
		k := dissectKey{}
		if n, ok := strings.CutSuffix(name, "->"); ok {
			name, k.pad = n, true
		}
		if strings.HasPrefix(name, "?") {
			name = ""
		}
		if strings.ContainsAny(name, "%{") {
			return nil, fmt.Errorf("key %q: %%{ inside a key", name)
		}
		k.name = name
		next := strings.Index(rest, "%{")
		if next < 0 {
			k.delim, rest = rest, ""
		} else {
			k.delim, rest = rest[:next], rest[next:]
			if k.delim == "" {
				return nil, fmt.Errorf("key %q: two keys with nothing between them cannot be told apart", name)
			}
		}
		d.keys = append(d.keys, k)
		if len(d.keys) > maxDissectKeys {
			return nil, fmt.Errorf("more than %d keys", maxDissectKeys)
		}
	}
	return d, nil
}

// parse cuts s by the pattern; a line that does not fit it adds nothing.
func (d *dissect) parse(s string, add func(string, event.Value) bool) bool {
	rest, ok := strings.CutPrefix(s, d.prefix)
	if !ok {
		return false
	}
	// Cut first, add after: a line that does not fit the whole pattern
	// adds nothing.
	var vals [maxDissectKeys + 1]string
	for i, k := range d.keys {
		if k.delim == "" {
			vals[i] = rest
			rest = ""
			continue
		}
		j := strings.Index(rest, k.delim)
		if j < 0 {
			return false
		}
		vals[i] = rest[:j]
		rest = rest[j+len(k.delim):]
		if k.pad {
			for strings.HasPrefix(rest, k.delim) {
				rest = rest[len(k.delim):]
			}
		}
	}
	if rest != "" {
		return false // text after the pattern's last literal
	}
	for i, k := range d.keys {
		if k.name != "" && !add(k.name, str(vals[i])) {
			break
		}
	}
	return true
}
