package process

import (
	"math"
	"slices"
	"strings"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

// deadband suppresses readings whose values stayed within their band of
// the last reading reported from the same source.
type deadband struct {
	m          *match.Matcher
	fields     []string
	ignore     []string
	abs, pct   float64
	heartbeat  int64
	maxSources int
	allow      bool
	last       map[string]*reported
}

// reported is what was last reported from a source.
type reported struct {
	at     int64
	state  string // quality, exception, clock state, checksum: any change is reported
	values map[string]float64
}

// defaultIgnore are the numeric fields of a Modbus reading that describe
// the poll, not the process.
var defaultIgnore = []string{"unit", "uncertainty_ns", "round_trip_us", "attempts", "requests"}

func newDeadband(c *DeadbandConfig, errs *[]error) processor {
	d := &deadband{fields: c.Fields, ignore: c.Ignore, abs: c.Absolute, pct: c.Percent,
		heartbeat: int64(c.Heartbeat), maxSources: c.MaxSources, allow: c.AllowCritical, last: map[string]*reported{}}
	spec := c.Match
	if isZeroSpec(spec) {
		spec.Kind = []string{"reading"}
	}
	d.m = matchErrs(spec, errs)
	if c.Ignore == nil {
		d.ignore = defaultIgnore
	}
	switch {
	case c.Absolute < 0 || math.IsNaN(c.Absolute) || math.IsInf(c.Absolute, 0):
		*errs = append(*errs, keyErr("absolute", "%v: must be 0 or more", c.Absolute))
	case c.Percent < 0 || math.IsNaN(c.Percent) || math.IsInf(c.Percent, 0):
		*errs = append(*errs, keyErr("percent", "%v: must be 0 or more", c.Percent))
	case c.Absolute == 0 && c.Percent == 0:
		*errs = append(*errs, keyErr("absolute", "missing: give absolute, percent or both"))
	}
	if c.Heartbeat <= 0 {
		*errs = append(*errs, keyErr("heartbeat", "missing: the longest a source may stay silent (\"60s\")"))
	}
	if c.MaxSources < 0 {
		*errs = append(*errs, keyErr("max_sources", "%d is negative", c.MaxSources))
	}
	if d.maxSources == 0 {
		d.maxSources = defaultMaxKeys
	}
	return d
}

func isZeroSpec(s match.Spec) bool {
	return len(s.Kind) == 0 && len(s.Source) == 0 && len(s.SourcePrefix) == 0 && len(s.Severity) == 0 &&
		s.SeverityAtLeast == "" && len(s.Priority) == 0 && s.Host == nil && s.Message == nil &&
		len(s.Fields) == 0 && len(s.All) == 0 && len(s.Any) == 0 && s.Not == nil
}

func (d *deadband) forget() { clear(d.last) }

func (d *deadband) apply(e *event.Event) verdict {
	if !d.m.Match(e) || !d.allow && Critical(e) {
		return pass
	}
	r := d.last[e.Source]
	if r == nil {
		if len(d.last) >= d.maxSources {
			return pass
		}
		r = &reported{values: map[string]float64{}}
		d.last[strings.Clone(e.Source)] = r
		d.report(r, e)
		return pass
	}
	if d.moved(r, e) {
		d.report(r, e)
		return pass
	}
	return drop
}

// moved says whether e must be reported: its state changed, the
// heartbeat is due, or a value left its band (or appeared, or vanished).
func (d *deadband) moved(r *reported, e *event.Event) bool {
	if !d.sameState(r.state, e) || e.Time-r.at >= d.heartbeat || e.Time < r.at {
		return true
	}
	seen := 0
	for i := range e.Fields {
		f := &e.Fields[i]
		v, ok := d.value(f)
		if !ok {
			continue
		}
		seen++
		old, had := r.values[f.Key]
		if !had || d.outside(old, v) {
			return true
		}
	}
	return seen != len(r.values)
}

func (d *deadband) outside(old, v float64) bool {
	if math.IsNaN(old) != math.IsNaN(v) {
		return true
	}
	delta := math.Abs(v - old)
	if d.abs > 0 && delta > d.abs {
		return true
	}
	return d.pct > 0 && delta > math.Abs(old)*d.pct/100
}

// value is a field's number, when the field is one compared.
func (d *deadband) value(f *event.Field) (float64, bool) {
	if len(d.fields) > 0 {
		if !slices.Contains(d.fields, f.Key) {
			return 0, false
		}
	} else if slices.Contains(d.ignore, f.Key) {
		return 0, false
	}
	switch f.Value.Type {
	case event.TypeFloat:
		return f.Value.Float(), true
	case event.TypeInt:
		return float64(f.Value.Int()), true
	case event.TypeUint:
		return float64(f.Value.Num), true
	case event.TypeBool:
		return float64(f.Value.Num), true
	}
	return 0, false
}

func (d *deadband) report(r *reported, e *event.Event) {
	r.at = e.Time
	r.state = d.state(e)
	clear(r.values)
	for i := range e.Fields {
		if v, ok := d.value(&e.Fields[i]); ok {
			r.values[strings.Clone(e.Fields[i].Key)] = v
		}
	}
}

// stateKeys are the text fields that say a reading's quality; a change
// in any of them is reported at once.
var stateKeys = [...]string{"quality", "exception", "cleared"}

// state is what of e is compared for a change of quality: the quality
// and exception fields, the clock's state, the checksum verdict and the
// severity.
func (d *deadband) state(e *event.Event) string {
	var b strings.Builder
	d.writeState(&b, e)
	return b.String()
}

func (d *deadband) writeState(b *strings.Builder, e *event.Event) {
	b.WriteByte(byte(e.Quality.State))
	b.WriteByte(byte(e.Checksum))
	b.WriteByte(byte(e.Severity))
	for _, k := range stateKeys {
		b.WriteByte(0)
		if f := fieldOf(e, k); f != nil {
			b.WriteString(f.Value.Str)
		}
	}
}

// sameState compares without building the string.
func (d *deadband) sameState(s string, e *event.Event) bool {
	if len(s) < 3 || s[0] != byte(e.Quality.State) || s[1] != byte(e.Checksum) || s[2] != byte(e.Severity) {
		return false
	}
	s = s[3:]
	for _, k := range stateKeys {
		if s == "" || s[0] != 0 {
			return false
		}
		s = s[1:]
		v := ""
		if f := fieldOf(e, k); f != nil {
			v = f.Value.Str
		}
		if !strings.HasPrefix(s, v) {
			return false
		}
		s = s[len(v):]
		if s != "" && s[0] != 0 {
			return false
		}
	}
	return s == ""
}
