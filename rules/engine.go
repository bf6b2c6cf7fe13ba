package rules

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

// AlertSource is the source of the alerts the engine raises. The engine
// never evaluates its own alerts.
const AlertSource = "weir:rules"

// Options are the engine's surroundings.
type Options struct {
	// Host is the gateway's own host name: a record naming another host
	// (syslog from a PLC) is that host's, for the correlation patterns.
	Host string
	// Now is the clock for Tick and status; nil: time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Engine evaluates records against a rule set. Its methods are safe for
// concurrent use.
type Engine struct {
	host string
	now  func() time.Time
	log  *slog.Logger

	set       atomic.Pointer[ruleSet]
	evaluated atomic.Uint64

	mu    sync.Mutex // guards what follows and every rule's and group's state
	rules map[string]*rule
	corr  *correlator
	max   int // groups per rule and pattern
	stats counters
}

// ruleSet is what Observe reads without a lock: immutable once stored.
type ruleSet struct {
	enabled bool
	rules   []*rule
	byKind  [32][]*rule // the rules whose matcher can take each kind
	kinds   uint32
	corr    *correlator
}

type counters struct {
	matched   uint64
	alerts    [levelCount]uint64
	held      uint64 // conditions met within a cooldown
	late      uint64 // records older than their rule's window when they came
	forgotten uint64 // groups forgotten for max_groups or idleness
	unstamped uint64 // records without a time, taken at the engine's clock
}

// New builds an engine with cfg loaded.
func New(cfg Config, opts Options) (*Engine, error) {
	e := &Engine{host: opts.Host, now: opts.Now, log: opts.Log, rules: map[string]*rule{}}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if _, err := e.Load(cfg); err != nil {
		return nil, err
	}
	return e, nil
}

// Changes says what a Load did to each rule's state.
type Changes struct {
	Kept    []string `json:"kept"`    // unchanged: windows kept
	Reset   []string `json:"reset"`   // changed: windows start empty
	Added   []string `json:"added"`   // new
	Removed []string `json:"removed"` // gone
	// Correlation: the correlation section changed, its groups start empty.
	Correlation bool `json:"correlation_reset"`
}

// Load takes a new configuration. Rules whose definition is unchanged
// keep their windows, cooldowns and escalation; the others start empty.
// An invalid configuration changes nothing.
// Check says whether cfg would load, changing nothing: a reload asks it
// of every part before it applies anything.
func Check(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	for _, rc := range cfg.Effective() {
		if _, err := compileRule(rc); err != nil {
			return fmt.Errorf("rules: rule %s: %w", rc.Name, err)
		}
	}
	return nil
}

func (e *Engine) Load(cfg Config) (Changes, error) {
	var ch Changes
	if err := cfg.Validate(); err != nil {
		return ch, fmt.Errorf("rules: %w", err)
	}
	fresh := map[string]*rule{}
	var order []*rule
	for _, rc := range cfg.Effective() {
		r, err := compileRule(rc)
		if err != nil {
			return ch, fmt.Errorf("rules: rule %s: %w", rc.Name, err)
		}
		fresh[rc.Name] = r
		order = append(order, r)
	}
	cfp := fingerprint(cfg.Correlation)

	e.mu.Lock()
	defer e.mu.Unlock()
	for i, r := range order {
		old, ok := e.rules[r.cfg.Name]
		switch {
		case ok && old.fp == r.fp:
			order[i] = old
			fresh[r.cfg.Name] = old
			ch.Kept = append(ch.Kept, r.cfg.Name)
		case ok:
			ch.Reset = append(ch.Reset, r.cfg.Name)
		default:
			ch.Added = append(ch.Added, r.cfg.Name)
		}
	}
	for name := range e.rules {
		if _, ok := fresh[name]; !ok {
			ch.Removed = append(ch.Removed, name)
		}
	}
	slices.Sort(ch.Removed)
	corr := e.corr
	if corr == nil || corr.fp != cfp {
		ch.Correlation = corr != nil
		corr = newCorrelator(cfg.Correlation, cfp)
	}
	e.rules, e.corr, e.max = fresh, corr, cfg.MaxGroups
	set := &ruleSet{enabled: cfg.Enabled, rules: order, corr: corr}
	for _, r := range order {
		k := r.m.Kinds()
		set.kinds |= k
		for kind := range set.byKind {
			if k&(1<<kind) != 0 {
				set.byKind[kind] = append(set.byKind[kind], r)
			}
		}
	}
	e.set.Store(set)
	return ch, nil
}

func compileRule(rc RuleConfig) (*rule, error) {
	m, err := match.Compile(rc.Match)
	if err != nil {
		return nil, err
	}
	r := &rule{cfg: rc, fp: fingerprint(rc), m: m, groups: map[string]*group{},
		window: int64(rc.Window), forNS: int64(rc.For), cooldown: int64(rc.Cooldown)}
	if r.cooldown == 0 {
		r.cooldown = r.window
		if rc.Type == TypeSustained || rc.Type == TypeAbsent {
			r.cooldown = int64(DefaultStateCooldown)
		}
	}
	if rc.Type == TypeSustained {
		if r.when, err = match.Compile(rc.When); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// DefaultStateCooldown is the cooldown of a sustained or absent rule that
// names none: a condition that holds for hours is worth a reminder, not a
// stream of alerts.
const DefaultStateCooldown = time.Hour

// fingerprint tells one definition from another.
func fingerprint(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Pending is what Observe found in a batch: the alerts to raise once
// Commit learns the batch's sequences.
type Pending struct {
	seqs  *batchSeqs
	fires []firing
	ids   []string // scratch: the correlation groups one record joined
	fired []bool
}

// Observe evaluates a batch of stamped records, before they are encoded,
// and returns nil when no rule matched any of them. It adds the
// correlation fields to records that join a correlation group. Hand what
// it returns to Commit once the batch is spooled.
func (e *Engine) Observe(evs []event.Event) *Pending {
	set := e.set.Load()
	if set == nil || !set.enabled || len(set.rules) == 0 {
		return nil
	}
	e.evaluated.Add(uint64(len(evs)))
	var p *Pending
	for i := range evs {
		ev := &evs[i]
		if set.kinds&(1<<ev.Kind) == 0 || ev.Source == AlertSource {
			continue
		}
		correlate := false
		for _, r := range set.byKind[ev.Kind] {
			if !r.m.Match(ev) {
				continue
			}
			if p == nil {
				p = &Pending{seqs: &batchSeqs{}}
				e.mu.Lock()
			}
			t := e.timeOf(ev)
			ref := seqRef{b: p.seqs, i: uint32(i)}
			e.stats.matched++
			r.matched++
			if !e.observe(p, r, ev, t, ref) || !r.cfg.Correlate {
				continue
			}
			if !correlate {
				correlate = true
				p.ids, p.fired = p.ids[:0], p.fired[:0]
			}
			set.corr.distributed(e, p, r, ev, t, ref)
		}
		if correlate {
			set.corr.bySource(e, p, ev, e.timeOf(ev), seqRef{b: p.seqs, i: uint32(i)})
			tagCorrelation(ev, p.ids, p.fired)
		}
	}
	if p != nil {
		e.mu.Unlock()
	}
	return p
}

func (e *Engine) timeOf(ev *event.Event) int64 {
	if ev.Time != 0 {
		return ev.Time
	}
	e.stats.unstamped++
	return e.now().UnixNano()
}

// tagCorrelation gives a record the ids of the groups it joined: one in
// correlation_id (a group that fired first, else the first joined), and
// all of them in correlation_ids when there are several. The record's
// fields are copied, not appended to in place: a source may share them.
func tagCorrelation(ev *event.Event, ids []string, fired []bool) {
	if len(ids) == 0 {
		return
	}
	primary := ids[0]
	for i, f := range fired {
		if f {
			primary = ids[i]
			break
		}
	}
	fs := make([]event.Field, len(ev.Fields), len(ev.Fields)+2)
	copy(fs, ev.Fields)
	fs = append(fs, event.Str("correlation_id", primary))
	if len(ids) > 1 {
		fs = append(fs, event.Str("correlation_ids", strings.Join(ids, ",")))
	}
	ev.Fields = fs
}

// observe applies one matching record to rule r and reports whether it is
// an event for the correlation patterns: a record a count rule counted,
// or one on which a sustained rule's condition holds. What rate and
// absent rules watch (counters, readings) is routine, not an event.
func (e *Engine) observe(p *Pending, r *rule, ev *event.Event, t int64, ref seqRef) bool {
	g := e.group(r, groupKey(r.cfg.GroupBy, ev), t)
	if t > g.seen {
		g.seen = t
	}
	switch r.cfg.Type {
	case TypeCount:
		w := 1.0
		if r.cfg.Weight != "" {
			var ok bool
			if w, ok = fieldNumber(ev, r.cfg.Weight); !ok || w <= 0 {
				return false
			}
		}
		e.count(p, r, g, t, w, ref)
		return true
	case TypeRate:
		errs, ok1 := sumFields(ev, r.cfg.Rate.Errors)
		tot, ok2 := sumFields(ev, r.cfg.Rate.Total)
		if ok1 && ok2 {
			e.rate(p, r, g, sample{t: t, errs: errs, tot: tot, ref: ref})
		}
	case TypeSustained:
		if t < g.observed {
			e.stats.late++ // an older state than the one in force
			return false
		}
		g.observed = t
		if !r.when.Match(ev) {
			g.on = false // the cooldown still runs: a flapping condition alerts once per cooldown
			return false
		}
		if !g.on {
			g.on, g.since, g.onRef = true, t, ref
		}
		e.sustained(p, r, g, t, ref)
		return true
	case TypeAbsent:
		if t >= g.seen {
			g.lastRef = ref
		}
	}
	return false
}

// group returns r's group key, creating it (and forgetting the least
// recently seen group past max_groups).
func (e *Engine) group(r *rule, key string, t int64) *group {
	if g, ok := r.groups[key]; ok {
		return g
	}
	if len(r.groups) >= e.max {
		var oldest *group
		for _, g := range r.groups {
			if oldest == nil || g.seen < oldest.seen {
				oldest = g
			}
		}
		delete(r.groups, oldest.key)
		e.stats.forgotten++
	}
	g := &group{key: strings.Clone(key), seen: t}
	r.groups[g.key] = g
	return g
}

// groupKey is the record's group under by: each key's value (source,
// host, or a field), joined with "/"; "" without group_by.
func groupKey(by []string, ev *event.Event) string {
	switch len(by) {
	case 0:
		return ""
	case 1:
		return attr(ev, by[0])
	}
	parts := make([]string, len(by))
	for i, k := range by {
		parts[i] = attr(ev, k)
	}
	return strings.Join(parts, "/")
}

// attr is a record's value for key: source, host, or a field's value as
// text ("" when absent).
func attr(ev *event.Event, key string) string {
	switch key {
	case "source":
		return ev.Source
	case "host":
		return ev.Host
	}
	for i := range ev.Fields {
		if f := &ev.Fields[i]; f.Key == key {
			if f.Value.Type == event.TypeString {
				return f.Value.Str
			}
			return f.Value.String()
		}
	}
	return ""
}

func fieldNumber(ev *event.Event, key string) (float64, bool) {
	for i := range ev.Fields {
		f := &ev.Fields[i]
		if f.Key != key {
			continue
		}
		switch f.Value.Type {
		case event.TypeInt:
			return float64(f.Value.Int()), true
		case event.TypeUint:
			return float64(f.Value.Num), true
		case event.TypeFloat:
			return f.Value.Float(), true
		case event.TypeString:
			v, err := strconv.ParseFloat(f.Value.Str, 64)
			return v, err == nil
		}
		return 0, false
	}
	return 0, false
}

func sumFields(ev *event.Event, keys []string) (float64, bool) {
	var s float64
	found := false
	for _, k := range keys {
		if v, ok := fieldNumber(ev, k); ok {
			s += v
			found = true
		}
	}
	return s, found
}

// Commit gives the first sequence of the batch Observe returned p for (the
// others follow it) and returns the alert records to spool. A nil p
// returns nothing.
func (e *Engine) Commit(p *Pending, first uint64) []event.Event {
	if p == nil || len(p.fires) == 0 && first == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p.seqs.first = first
	return e.alerts(p.fires)
}

// CommitKept is Commit for a batch of which only some records were
// spooled, in order: kept[j] is the index, in the batch observed, of the
// j-th record spooled (the processors dropped the others); n is the
// batch's length when observed. A record left out is named by no
// sequence in an alert.
func (e *Engine) CommitKept(p *Pending, first uint64, n int, kept []int32) []event.Event {
	if p == nil {
		return nil
	}
	e.mu.Lock()
	if p.seqs != nil {
		pos := make([]int32, n)
		for i := range pos {
			pos[i] = -1
		}
		for j, i := range kept {
			if int(i) < n {
				pos[i] = int32(j)
			}
		}
		p.seqs.pos = pos
	}
	e.mu.Unlock()
	return e.Commit(p, first)
}

// Tick judges what fires on time passing (sustained conditions held long
// enough, silences) at the engine's clock, and forgets groups idle for a
// long time; it returns the alert records to spool. Call it every second
// or so.
func (e *Engine) Tick() []event.Event {
	now := e.now().UnixNano()
	set := e.set.Load()
	if set == nil || !set.enabled {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var fires []firing
	p := &Pending{}
	for _, r := range set.rules {
		for key, g := range r.groups {
			switch r.cfg.Type {
			case TypeSustained:
				if g.on {
					e.sustained(p, r, g, now, g.onRef)
				}
			case TypeAbsent:
				e.absent(p, r, g, now)
			}
			if now-g.seen > e.idle(r) {
				delete(r.groups, key)
				e.stats.forgotten++
			}
		}
	}
	fires = p.fires
	set.corr.expire(now)
	return e.alerts(fires)
}

// idle is how long a group may see no record before it is forgotten: a
// day, or ten times the rule's span if longer, so that an absent rule
// stops reporting a device removed from the site.
func (e *Engine) idle(r *rule) int64 {
	return max(int64(24*time.Hour), 10*max(r.window, r.forNS, r.cooldown))
}

// Enabled reports whether records are being evaluated.
func (e *Engine) Enabled() bool {
	s := e.set.Load()
	return s != nil && s.enabled && len(s.rules) > 0
}
