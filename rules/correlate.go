package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
)

// The correlation patterns.
const (
	PatternSourceAttack = "source_attack"
	PatternDistributed  = "distributed"
	PatternEscalating   = "escalating"
)

// Patterns lists the correlation patterns.
func Patterns() []string {
	return []string{PatternSourceAttack, PatternDistributed, PatternEscalating}
}

const (
	patSA = iota
	patDist
	patEsc
	patCount
)

// maxMembers bounds the records a correlation alert names by sequence;
// the others carry its id all the same.
const maxMembers = 64

// correlator keeps the correlation groups, under the engine's lock.
type correlator struct {
	cfg     CorrelationConfig
	fp      string
	window  int64
	saMask  uint8
	escMask uint8
	groups  [patCount]map[string]*corrGroup
	found   [patCount]uint64
	last    [patCount]*AlertInfo
}

// corrGroup is one open correlation: a pattern's events for one key (a
// source, or a rule) from its first event for the window.
type corrGroup struct {
	id      string
	key     string
	start   int64 // first event's time
	last    int64 // newest event's time
	n       int
	members []seqRef
	keys    []string         // distributed: the devices seen
	sevs    []event.Severity // escalating: the events' severities, in order
	fired   bool
}

func newCorrelator(cfg CorrelationConfig, fp string) *correlator {
	c := &correlator{cfg: cfg, fp: fp, window: int64(cfg.Window),
		saMask: severityMask(cfg.SourceAttack.SeverityAtLeast), escMask: severityMask(cfg.Escalating.SeverityAtLeast)}
	for i := range c.groups {
		c.groups[i] = map[string]*corrGroup{}
	}
	return c
}

// open returns the pattern's group for key at t, starting a new one when
// there is none or the last one's window has passed (or it is full).
func (c *correlator) open(e *Engine, pat int, key string, t int64, full bool) *corrGroup {
	m := c.groups[pat]
	if g, ok := m[key]; ok && t < g.start+c.window && !full {
		return g
	}
	if _, ok := m[key]; !ok && len(m) >= e.max {
		var oldest *corrGroup
		for _, g := range m {
			if oldest == nil || g.last < oldest.last {
				oldest = g
			}
		}
		delete(m, oldest.key)
		e.stats.forgotten++
	}
	key = strings.Clone(key)
	g := &corrGroup{key: key, start: t, id: Patterns()[pat] + ":" + key + ":" + strconv.FormatInt(t/int64(time.Second), 10)}
	m[key] = g
	return g
}

func (g *corrGroup) join(ref seqRef, t int64) {
	g.n++
	g.last = max(g.last, t)
	if len(g.members) < maxMembers {
		g.members = append(g.members, ref)
	}
}

// joined notes on p that the record joined g.
func joined(p *Pending, g *corrGroup) {
	if !slices.Contains(p.ids, g.id) {
		p.ids = append(p.ids, g.id)
		p.fired = append(p.fired, g.fired)
	}
}

// distributed takes an event of rule r: the rule's group collects the
// devices it comes from.
func (c *correlator) distributed(e *Engine, p *Pending, r *rule, ev *event.Event, t int64, ref seqRef) {
	cfg := c.cfg.Distributed
	if !cfg.Enabled {
		return
	}
	var dev string
	for _, k := range cfg.By {
		if dev = attr(ev, k); dev != "" {
			break
		}
	}
	if dev == "" {
		return
	}
	g := c.open(e, patDist, r.cfg.Name, t, false)
	g.join(ref, t)
	if !slices.Contains(g.keys, dev) && len(g.keys) < maxMembers {
		g.keys = append(g.keys, strings.Clone(dev))
	}
	if !g.fired && len(g.keys) >= cfg.Keys {
		level := max(cfg.Level, r.cfg.Level)
		msg := fmt.Sprintf("%s distributed: %s from %d devices within %s (%s)", level, r.cfg.Name, len(g.keys),
			span(g.start, g.last), strings.Join(g.keys, ", "))
		c.fire(e, p, patDist, g, level, r.cfg.Name, ref, t, msg)
	}
	joined(p, g)
}

// bySource takes an event for the patterns keyed by its source: the
// record's source, with its host when that is not the gateway's own
// (syslog from a PLC is the PLC's).
func (c *correlator) bySource(e *Engine, p *Pending, ev *event.Event, t int64, ref seqRef) {
	sa, esc := c.cfg.SourceAttack, c.cfg.Escalating
	bit := uint8(1) << ev.Severity
	takeSA := sa.Enabled && ev.Severity <= event.SevDebug && c.saMask&bit != 0
	takeEsc := esc.Enabled && ev.Severity <= event.SevDebug && c.escMask&bit != 0
	if !takeSA && !takeEsc {
		return
	}
	key := ev.Source
	if ev.Host != "" && ev.Host != e.host {
		key += "@" + ev.Host
	}
	if takeSA {
		g := c.open(e, patSA, key, t, false)
		g.join(ref, t)
		if !g.fired && g.n >= sa.Events {
			msg := fmt.Sprintf("%s source_attack: %d high or critical events from %s within %s", sa.Level, g.n, key,
				span(g.start, g.last))
			c.fire(e, p, patSA, g, sa.Level, "", ref, t, msg)
		}
		joined(p, g)
	}
	if takeEsc {
		prev := c.groups[patEsc][key]
		g := c.open(e, patEsc, key, t, prev != nil && len(prev.sevs) >= esc.Within)
		g.join(ref, t)
		g.sevs = append(g.sevs, ev.Severity)
		if chain := rising(g.sevs); !g.fired && len(chain) >= esc.Steps {
			names := make([]string, len(chain))
			for i, s := range chain {
				names[i] = s.String()
			}
			msg := fmt.Sprintf("%s escalating: severities rising %s from %s within %d events", esc.Level,
				strings.Join(names, " → "), key, len(g.sevs))
			c.fire(e, p, patEsc, g, esc.Level, "", ref, t, msg)
		}
		joined(p, g)
	}
}

// span writes the time between two events to the second, 1s at least.
func span(from, to int64) string {
	return short(max(time.Duration(to-from).Round(time.Second), time.Second))
}

// rising is the longest run of severities, in order though not
// necessarily adjacent, each more severe than the one before.
func rising(sevs []event.Severity) []event.Severity {
	n := len(sevs)
	length, prev := make([]int, n), make([]int, n)
	best := -1
	for i := range sevs {
		length[i], prev[i] = 1, -1
		for j := 0; j < i; j++ {
			if sevs[j] > sevs[i] && length[j]+1 > length[i] {
				length[i], prev[i] = length[j]+1, j
			}
		}
		if best < 0 || length[i] > length[best] {
			best = i
		}
	}
	var out []event.Severity
	for i := best; i >= 0; i = prev[i] {
		out = append(out, sevs[i])
	}
	slices.Reverse(out)
	return out
}

func (c *correlator) fire(e *Engine, p *Pending, pat int, g *corrGroup, level Level, ruleName string, ref seqRef, t int64, msg string) {
	g.fired = true
	c.found[pat]++
	e.stats.alerts[level]++
	c.last[pat] = &AlertInfo{At: e.now(), Level: level, Message: msg, Group: g.key, CorrelationID: g.id}
	f := firing{rule: ruleName, typ: Patterns()[pat], level: level, count: float64(g.n), window: c.cfg.Window,
		first: g.members[0], last: ref, firstT: g.start, lastT: t, corrID: g.id, message: msg,
		related: slices.Clone(g.members), moreRelated: g.n - len(g.members), group: g.key}
	if pat == patDist {
		f.keys = slices.Clone(g.keys)
	}
	p.fires = append(p.fires, f)
}

// expire forgets groups no record can join any more (late records are
// given a window's grace).
func (c *correlator) expire(now int64) {
	for _, m := range c.groups {
		for k, g := range m {
			if now-g.start > 2*c.window && now-g.last > c.window {
				delete(m, k)
			}
		}
	}
}
