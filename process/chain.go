package process

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

// verdict is what a processor did with a record.
type verdict uint8

const (
	pass    verdict = iota // unchanged, kept
	changed                // changed, kept
	drop                   // not kept
)

// processor is one compiled step. apply may change e in place; it never
// keeps e or its fields past the call.
type processor interface {
	apply(e *event.Event) verdict
}

// counters are one step's figures.
type counters struct {
	in, out, dropped, changed atomic.Uint64
}

type step struct {
	typ string
	p   processor
	// mu serialises a stateful step (sample, deadband) across the
	// inputs that share its chain; nil for the stateless ones.
	mu *sync.Mutex
	n  counters
}

// Chain is a compiled list of steps, safe for concurrent use. A nil
// *Chain keeps every record as it is.
type Chain struct {
	steps []*step
}

// Compile checks steps and builds their Chain. Errors name the step by
// its index and key ("[2].redact.regex: ..."), every one at once.
func Compile(steps []Step) (*Chain, error) {
	var errs []error
	c := &Chain{}
	for i, s := range steps {
		typ, cfg, err := s.which()
		if err != nil {
			errs = append(errs, fmt.Errorf("[%d]: %w", i, err))
			continue
		}
		p, stateful, perrs := build(typ, cfg)
		for _, e := range perrs {
			errs = append(errs, fmt.Errorf("[%d].%s.%w", i, typ, e))
		}
		if len(perrs) > 0 {
			continue
		}
		st := &step{typ: typ, p: p}
		if stateful {
			st.mu = &sync.Mutex{}
		}
		c.steps = append(c.steps, st)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// which returns the one processor a Step configures.
func (s Step) which() (string, any, error) {
	v := reflect.ValueOf(s)
	var typ string
	var cfg any
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsNil() {
			continue
		}
		name := v.Type().Field(i).Tag.Get("yaml")
		if typ != "" {
			return "", nil, fmt.Errorf("both %s and %s: a step is one processor (make two steps)", typ, name)
		}
		typ, cfg = name, v.Field(i).Interface()
	}
	if typ == "" {
		return "", nil, errors.New("no processor (drop, keep, sample, redact, parse, rename, add_fields, drop_fields, truncate or deadband)")
	}
	return typ, cfg, nil
}

// keyErr is an error at key within a step's section; Compile puts the
// step's index and type in front.
func keyErr(key, format string, a ...any) error {
	return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...))
}

// matchErrs compiles a step's match, naming its keys under "match".
func matchErrs(s match.Spec, errs *[]error) *match.Matcher {
	m, err := match.Compile(s)
	if err != nil {
		for _, e := range unjoin(err) {
			*errs = append(*errs, fmt.Errorf("match.%w", e))
		}
		return nil
	}
	return m
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func build(typ string, cfg any) (processor, bool, []error) {
	var errs []error
	var p processor
	stateful := false
	switch c := cfg.(type) {
	case *FilterConfig:
		p = newFilter(c, typ == "keep", &errs)
	case *SampleConfig:
		p, stateful = newSampler(c, &errs), true
	case *RedactConfig:
		p = newRedactor(c, &errs)
	case *ParseConfig:
		p = newParser(c, &errs)
	case *RenameConfig:
		p = newRenamer(c, &errs)
	case *AddFieldsConfig:
		p = newAdder(c, &errs)
	case *DropFieldsConfig:
		p = newFieldDropper(c, &errs)
	case *TruncateConfig:
		p = newTruncator(c, &errs)
	case *DeadbandConfig:
		p, stateful = newDeadband(c, &errs), true
	default:
		errs = append(errs, fmt.Errorf("unknown processor %T", cfg))
	}
	return p, stateful, errs
}

// Apply runs evs through the chain in place and returns the records kept,
// evs compacted. orig, when not nil, holds an index per record and is
// compacted alongside, so that orig[i] says where kept record i was.
// A record the chain drops is gone from the batch; the batch's
// checkpoints are the caller's, spooled with what is kept.
func (c *Chain) Apply(evs []event.Event, orig []int32) []event.Event {
	if c == nil {
		return evs
	}
	for _, s := range c.steps {
		if len(evs) == 0 {
			break
		}
		if s.mu != nil {
			s.mu.Lock()
		}
		n := 0
		var ch, dr uint64
		for i := range evs {
			switch s.p.apply(&evs[i]) {
			case drop:
				dr++
				continue
			case changed:
				ch++
			}
			if n != i {
				evs[n] = evs[i]
				if orig != nil {
					orig[n] = orig[i]
				}
			}
			n++
		}
		if s.mu != nil {
			s.mu.Unlock()
		}
		s.n.in.Add(uint64(len(evs)))
		s.n.out.Add(uint64(n))
		if dr > 0 {
			s.n.dropped.Add(dr)
		}
		if ch > 0 {
			s.n.changed.Add(ch)
		}
		clear(evs[n:]) // what was dropped keeps nothing alive
		evs = evs[:n]
		if orig != nil {
			orig = orig[:n]
		}
	}
	return evs
}

// Forget drops what the stateful steps remember of the records they
// passed: the caller could not spool the batch it last applied. A
// deadband then reports the next reading of every source, rather than
// compare it with one that never reached the spool.
func (c *Chain) Forget() {
	if c == nil {
		return
	}
	for _, s := range c.steps {
		f, ok := s.p.(interface{ forget() })
		if !ok {
			continue
		}
		s.mu.Lock()
		f.forget()
		s.mu.Unlock()
	}
}

// Len is the number of steps.
func (c *Chain) Len() int {
	if c == nil {
		return 0
	}
	return len(c.steps)
}

// StepStats is one step's figures since the chain was compiled.
type StepStats struct {
	Index   int    `json:"index"`
	Type    string `json:"type"`
	In      uint64 `json:"in"`
	Out     uint64 `json:"out"`
	Dropped uint64 `json:"dropped"`
	Changed uint64 `json:"changed"`
}

// Stats returns every step's figures, in order.
func (c *Chain) Stats() []StepStats {
	if c == nil {
		return nil
	}
	out := make([]StepStats, len(c.steps))
	for i, s := range c.steps {
		out[i] = StepStats{Index: i, Type: s.typ, In: s.n.in.Load(), Out: s.n.out.Load(),
			Dropped: s.n.dropped.Load(), Changed: s.n.changed.Load()}
	}
	return out
}

// Critical says whether a record is one no processor drops, samples or
// suppresses without allow_critical: priority critical (tamper, the
// spool's own alarms, a device configured critical), an alert, an
// integrity record, or severity crit or worse.
func Critical(e *event.Event) bool {
	return e.Priority == event.PriorityCritical || e.Kind == event.KindAlert ||
		e.Kind == event.KindIntegrity || e.Severity <= event.SevCritical
}

// Warnings lists what a configuration check should tell about steps:
// those that may drop critical records. Keys are relative to the list
// ("[0].drop.allow_critical").
func Warnings(steps []Step) []string {
	var out []string
	for i, s := range steps {
		var allow bool
		typ, cfg, err := s.which()
		if err != nil {
			continue
		}
		switch c := cfg.(type) {
		case *FilterConfig:
			allow = c.AllowCritical
		case *SampleConfig:
			allow = c.AllowCritical
		case *DeadbandConfig:
			allow = c.AllowCritical
		}
		if allow {
			out = append(out, fmt.Sprintf("[%d].%s.allow_critical: true: this step can drop critical records (alerts, integrity, tamper, severity crit or worse)", i, typ))
		}
	}
	return out
}
