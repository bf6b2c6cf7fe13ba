package match

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/weirgw/weir/event"
)

// Matcher is a compiled Spec. A nil *Matcher matches every record.
type Matcher struct {
	kinds    uint32 // bit per event.Kind; 0: any
	sevs     uint8  // bit per event.Severity; 0: any
	prios    uint8  // bit per event.Priority; 0: any
	sources  []string
	prefixes []string
	host     *textCond
	message  *textCond
	fields   []fieldCond
	all      []*Matcher
	any      []*Matcher
	not      *Matcher
}

// maxNesting bounds all/any/not: a configuration several levels deep is
// already hard to read.
const maxNesting = 16

// Compile checks s and builds its Matcher. Errors name the key within s
// that is wrong ("fields[1].regex: ..."), every one at once.
func Compile(s Spec) (*Matcher, error) {
	var errs []error
	m := compile(s, "", 0, &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

func compile(s Spec, path string, depth int, errs *[]error) *Matcher {
	fail := func(key, format string, a ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", join(path, key), fmt.Sprintf(format, a...)))
	}
	m := &Matcher{}
	if depth > maxNesting {
		fail("", "nested more than %d levels deep", maxNesting)
		return m
	}
	for i, k := range s.Kind {
		kind, ok := ParseKind(k)
		if !ok {
			fail(fmt.Sprintf("kind[%d]", i), "%q is not a record kind (%s)", k, strings.Join(kindNames(), ", "))
			continue
		}
		m.kinds |= 1 << kind
	}
	for i, src := range s.Source {
		if src == "" {
			fail(fmt.Sprintf("source[%d]", i), "empty source name")
		}
	}
	m.sources = s.Source
	for i, p := range s.SourcePrefix {
		if p == "" {
			fail(fmt.Sprintf("source_prefix[%d]", i), "empty prefix (it would match every source)")
		}
	}
	m.prefixes = s.SourcePrefix
	for i, v := range s.Severity {
		sev, ok := ParseSeverity(v)
		if !ok {
			fail(fmt.Sprintf("severity[%d]", i), "%q is not a severity (%s)", v, strings.Join(severityNames(), ", "))
			continue
		}
		m.sevs |= 1 << sev
	}
	if s.SeverityAtLeast != "" {
		sev, ok := ParseSeverity(s.SeverityAtLeast)
		if !ok {
			fail("severity_at_least", "%q is not a severity (%s)", s.SeverityAtLeast, strings.Join(severityNames(), ", "))
		} else {
			var at uint8
			for v := event.Severity(0); v <= sev; v++ {
				at |= 1 << v
			}
			if m.sevs == 0 {
				m.sevs = at
			} else {
				m.sevs &= at
				if m.sevs == 0 {
					fail("severity_at_least", "%s excludes every severity listed in severity", s.SeverityAtLeast)
				}
			}
		}
	}
	for i, p := range s.Priority {
		pr, err := event.ParsePriority(p)
		if err != nil {
			fail(fmt.Sprintf("priority[%d]", i), "%q is not a priority (normal, critical or bulk)", p)
			continue
		}
		m.prios |= 1 << pr
	}
	if s.Host != nil {
		m.host = compileText(*s.Host, join(path, "host"), errs)
	}
	if s.Message != nil {
		m.message = compileText(*s.Message, join(path, "message"), errs)
	}
	for i, f := range s.Fields {
		m.fields = append(m.fields, compileField(f, join(path, fmt.Sprintf("fields[%d]", i)), errs))
	}
	// All must hold, so the order is free: a regular expression runs
	// only on records the cheaper conditions let through.
	slices.SortStableFunc(m.fields, func(a, b fieldCond) int { return a.cost() - b.cost() })
	for i, sub := range s.All {
		m.all = append(m.all, compile(sub, join(path, fmt.Sprintf("all[%d]", i)), depth+1, errs))
	}
	for i, sub := range s.Any {
		m.any = append(m.any, compile(sub, join(path, fmt.Sprintf("any[%d]", i)), depth+1, errs))
	}
	if s.Not != nil {
		m.not = compile(*s.Not, join(path, "not"), depth+1, errs)
	}
	return m
}

func join(path, key string) string {
	switch {
	case path == "":
		return key
	case key == "":
		return path
	}
	return path + "." + key
}

// Match reports whether e satisfies the matcher. It allocates nothing.
func (m *Matcher) Match(e *event.Event) bool {
	if m == nil {
		return true
	}
	if m.kinds != 0 && m.kinds&(1<<e.Kind) == 0 ||
		m.sevs != 0 && (e.Severity > 7 || m.sevs&(1<<e.Severity) == 0) ||
		m.prios != 0 && (e.Priority > 7 || m.prios&(1<<e.Priority) == 0) {
		return false
	}
	if len(m.sources) > 0 && !oneOf(e.Source, m.sources) {
		return false
	}
	if len(m.prefixes) > 0 && !prefixOf(e.Source, m.prefixes) {
		return false
	}
	if m.host != nil && !m.host.match(e.Host) {
		return false
	}
	if m.message != nil && !m.message.match(e.Message) {
		return false
	}
	for i := range m.fields {
		if !m.fields[i].match(e) {
			return false
		}
	}
	for _, sub := range m.all {
		if !sub.Match(e) {
			return false
		}
	}
	if len(m.any) > 0 {
		ok := false
		for _, sub := range m.any {
			if sub.Match(e) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return m.not == nil || !m.not.Match(e)
}

// Kinds is the set of record kinds the matcher can match, a bit per
// event.Kind (1 << kind), so that a caller holding many matchers can pass
// over a record in one test. It errs on the side of more kinds.
func (m *Matcher) Kinds() uint32 {
	const every = ^uint32(0)
	if m == nil {
		return every
	}
	k := every
	if m.kinds != 0 {
		k = m.kinds
	}
	for _, sub := range m.all {
		k &= sub.Kinds()
	}
	if len(m.any) > 0 {
		var u uint32
		for _, sub := range m.any {
			u |= sub.Kinds()
		}
		k &= u
	}
	return k
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

func prefixOf(s string, set []string) bool {
	for _, p := range set {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// ParseKind reads a record kind's name.
func ParseKind(s string) (event.Kind, bool) {
	for k := event.Kind(0); k < 32; k++ {
		n := k.String()
		if strings.HasPrefix(n, "kind(") {
			break
		}
		if n == s {
			return k, true
		}
	}
	return 0, false
}

func kindNames() []string {
	var out []string
	for k := event.Kind(0); k < 32; k++ {
		n := k.String()
		if strings.HasPrefix(n, "kind(") {
			break
		}
		out = append(out, n)
	}
	return out
}

// ParseSeverity reads a syslog severity's name (emerg ... debug), or its
// number 0..7.
func ParseSeverity(s string) (event.Severity, bool) {
	for v := event.Severity(0); v <= event.SevDebug; v++ {
		if v.String() == s {
			return v, true
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= int(event.SevDebug) {
		return event.Severity(n), true
	}
	return 0, false
}

func severityNames() []string {
	var out []string
	for v := event.Severity(0); v <= event.SevDebug; v++ {
		out = append(out, v.String())
	}
	return out
}

// textCond is a compiled Text.
type textCond struct {
	in       []string  // equals and in
	nums     []float64 // each of in as a number, NaN where it is not one
	prefix   string
	contains []string
	re       *regexp.Regexp
	bufs     *sync.Pool // with re: buffers for a number's text
}

func compileText(t Text, path string, errs *[]error) *textCond {
	c := &textCond{prefix: t.Prefix, contains: t.Contains}
	if t.Equals != "" {
		c.in = append(c.in, t.Equals)
	}
	c.in = append(c.in, t.In...)
	for _, v := range c.in {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			f = math.NaN()
		}
		c.nums = append(c.nums, f)
	}
	for i, s := range t.Contains {
		if s == "" {
			*errs = append(*errs, fmt.Errorf("%s.contains[%d]: empty text (it would match everything)", path, i))
		}
	}
	if t.Regex != "" {
		re, err := regexp.Compile(t.Regex)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s.regex: %s", path, strings.TrimPrefix(err.Error(), "error parsing regexp: ")))
		}
		c.re = re
		c.bufs = &sync.Pool{New: func() any { return new([40]byte) }}
	}
	return c
}

func (c *textCond) empty() bool {
	return len(c.in) == 0 && c.prefix == "" && len(c.contains) == 0 && c.re == nil
}

func (c *textCond) match(s string) bool {
	if len(c.in) > 0 && !oneOf(s, c.in) {
		return false
	}
	if c.prefix != "" && !strings.HasPrefix(s, c.prefix) {
		return false
	}
	if len(c.contains) > 0 {
		ok := false
		for _, x := range c.contains {
			if strings.Contains(s, x) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return c.re == nil || c.re.MatchString(s)
}
