package match

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/weirgw/weir/event"
)

// fieldCond is a compiled Field.
type fieldCond struct {
	key     string
	text    *textCond // nil: no text condition
	lo, hi  float64   // bounds; ±Inf when not given
	loOpen  bool      // lo excluded (above) rather than included (at_least)
	hiOpen  bool
	numeric bool // some numeric condition is given
	exists  int8 // -1 not given, 0 false, 1 true
}

func compileField(f Field, path string, errs *[]error) fieldCond {
	c := fieldCond{key: f.Key, lo: math.Inf(-1), hi: math.Inf(1), exists: -1}
	if f.Key == "" {
		*errs = append(*errs, fmt.Errorf("%s.key: no field named", path))
	}
	if t := compileText(f.text(), path, errs); !t.empty() {
		c.text = t
	}
	bound := func(v *float64, lower, open bool) {
		if v == nil {
			return
		}
		c.numeric = true
		switch {
		case lower && (*v > c.lo || *v == c.lo && open):
			c.lo, c.loOpen = *v, open
		case !lower && (*v < c.hi || *v == c.hi && open):
			c.hi, c.hiOpen = *v, open
		}
	}
	bound(f.AtLeast, true, false)
	bound(f.Above, true, true)
	bound(f.AtMost, false, false)
	bound(f.Below, false, true)
	for _, v := range []*float64{f.Above, f.Below, f.AtLeast, f.AtMost} {
		if v != nil && math.IsNaN(*v) {
			*errs = append(*errs, fmt.Errorf("%s: a bound is NaN, which no value satisfies", path))
			break
		}
	}
	if c.numeric && (c.lo > c.hi || c.lo == c.hi && (c.loOpen || c.hiOpen)) {
		*errs = append(*errs, fmt.Errorf("%s: the bounds exclude every value", path))
	}
	if f.Exists != nil {
		c.exists = 0
		if *f.Exists {
			c.exists = 1
		}
		if !*f.Exists && (c.text != nil || c.numeric) {
			*errs = append(*errs, fmt.Errorf("%s.exists: false, with conditions on the value, matches nothing", path))
		}
	}
	return c
}

// cost ranks conditions for evaluation order: a regular expression last.
func (c *fieldCond) cost() int {
	if c.text != nil && c.text.re != nil {
		return 1
	}
	return 0
}

func (c *fieldCond) match(e *event.Event) bool {
	var v *event.Value
	for i := range e.Fields {
		if e.Fields[i].Key == c.key {
			v = &e.Fields[i].Value
			break
		}
	}
	if v == nil {
		return c.exists == 0
	}
	if c.exists == 0 {
		return false
	}
	if c.numeric {
		n, ok := number(v)
		if !ok || !c.within(n) {
			return false
		}
	}
	if c.text != nil {
		return c.text.matchValue(v)
	}
	return true
}

func (c *fieldCond) within(n float64) bool {
	if n < c.lo || n == c.lo && c.loOpen {
		return false
	}
	return !(n > c.hi || n == c.hi && c.hiOpen)
}

// number is v as a number: integers and floats, and text that reads as a
// decimal number.
func number(v *event.Value) (float64, bool) {
	switch v.Type {
	case event.TypeInt:
		return float64(v.Int()), true
	case event.TypeUint:
		return float64(v.Num), true
	case event.TypeFloat:
		f := v.Float()
		return f, !math.IsNaN(f)
	case event.TypeString:
		if !numeric(v.Str) {
			return 0, false
		}
		f, err := strconv.ParseFloat(v.Str, 64)
		return f, err == nil && !math.IsNaN(f)
	}
	return 0, false
}

// numeric says whether s can be a decimal number, so that text which is
// not one costs no failed parse (whose error would allocate).
func numeric(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	digits := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digits = true
		case c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E':
		default:
			return false
		}
	}
	return digits
}

// matchValue applies the text conditions to a typed value: text as it is,
// numbers written in decimal (and compared as numbers with the values of
// in that are numbers), booleans as true or false.
func (c *textCond) matchValue(v *event.Value) bool {
	switch v.Type {
	case event.TypeString, event.TypeBytes:
		return c.match(v.Str)
	case event.TypeBool:
		if v.Bool() {
			return c.match("true")
		}
		return c.match("false")
	}
	n, _ := number(v)
	var buf [40]byte
	var b []byte
	switch v.Type {
	case event.TypeInt:
		b = strconv.AppendInt(buf[:0], v.Int(), 10)
	case event.TypeUint:
		b = strconv.AppendUint(buf[:0], v.Num, 10)
	case event.TypeFloat:
		b = strconv.AppendFloat(buf[:0], v.Float(), 'g', -1, 64)
	default:
		return false
	}
	if len(c.in) > 0 {
		ok := false
		for i, x := range c.in {
			if c.nums[i] == n || string(b) == x {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if c.prefix != "" && (len(b) < len(c.prefix) || string(b[:len(c.prefix)]) != c.prefix) {
		return false
	}
	if len(c.contains) > 0 {
		ok := false
		for _, x := range c.contains {
			if strings.Contains(string(b), x) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return c.re == nil || c.matchNumber(b)
}

// matchNumber runs the regular expression over a number's text in a
// pooled buffer: the regexp package keeps its input beyond the call as
// far as the compiler can tell, so a buffer on the stack would be moved
// to the heap on every call.
func (c *textCond) matchNumber(b []byte) bool {
	buf := c.bufs.Get().(*[40]byte)
	ok := c.re.Match(append(buf[:0], b...))
	c.bufs.Put(buf)
	return ok
}
