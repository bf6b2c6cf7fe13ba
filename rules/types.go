package rules

import (
	"fmt"
	"math"
	"time"
)

// need is what a count rule's group must reach at an escalation stage.
func (r *rule) need(stage int) float64 {
	if r.cfg.Escalation < 1 || stage == 0 {
		return r.cfg.Count
	}
	return r.cfg.Count * math.Pow(r.cfg.Escalation, float64(stage))
}

// level is the level of an alert at an escalation stage.
func (r *rule) level(stage int) Level {
	if r.cfg.Escalation < 1 {
		return r.cfg.Level
	}
	return r.cfg.Level.raise(stage)
}

// cooling reports whether an alert at t would come within the cooldown of
// the group's last one.
func (r *rule) cooling(g *group, t int64) bool {
	return g.alerted && t-g.lastAlert < r.cooldown
}

// count adds a hit of weight w at t. The window is (newest − window,
// newest]: a hit exactly one window older than the newest is out. Only
// hits after the group's last alert count towards the next one.
func (e *Engine) count(p *Pending, r *rule, g *group, t int64, w float64, ref seqRef) {
	newest := t
	if n := len(g.hits); n > 0 {
		newest = max(newest, g.hits[n-1].t)
	}
	if g.alerted {
		newest = max(newest, g.lastAlert)
	}
	cutoff := newest - r.window
	if t <= cutoff || g.alerted && t <= g.lastAlert {
		e.stats.late++
		return
	}
	// Escalation holds while alerts follow each other within a window
	// after the cooldown; after a longer quiet the rule starts over.
	if g.alerted && g.stage > 0 && newest-g.lastAlert >= r.cooldown+r.window {
		g.stage = 0
	}
	i := len(g.hits)
	for i > 0 && g.hits[i-1].t > t {
		i--
	}
	g.hits = append(g.hits, hit{})
	copy(g.hits[i+1:], g.hits[i:])
	g.hits[i] = hit{t: t, w: w, ref: ref}
	g.sum += w
	need := r.need(g.stage)
	drop := 0
	for drop < len(g.hits) && g.hits[drop].t <= cutoff {
		g.sum -= g.hits[drop].w
		drop++
	}
	// Only the newest hits that reach need matter: the window's memory
	// stays within need records.
	for drop < len(g.hits)-1 && g.sum-g.hits[drop].w >= need {
		g.sum -= g.hits[drop].w
		drop++
	}
	if drop > 0 {
		g.hits = append(g.hits[:0], g.hits[drop:]...)
	}
	if g.sum < need || r.cfg.Level == LevelNone {
		return
	}
	if r.cooling(g, newest) {
		e.stats.held++
		return
	}
	first, last := g.hits[0], g.hits[len(g.hits)-1]
	level := r.level(g.stage)
	what := "records"
	if r.cfg.Weight != "" {
		what = r.cfg.Weight
	}
	msg := fmt.Sprintf("%s %s: %s %s within %s", level, r.cfg.Name, num(g.sum), what, short(r.cfg.Window))
	if g.key != "" {
		msg += " (" + g.key + ")"
	}
	if g.stage > 0 {
		msg += fmt.Sprintf(", escalated %d", g.stage)
	}
	e.fire(p, r, g, newest, firing{typ: TypeCount, level: level, stage: g.stage, count: g.sum, window: r.cfg.Window,
		first: first.ref, last: last.ref, firstT: first.t, lastT: last.t, message: msg})
	if r.cfg.Escalation >= 1 {
		g.stage++
	}
	g.hits, g.sum = g.hits[:0], 0
}

// rate adds a sample of a rate rule's counters. The increase is measured
// from the newest sample at or before the window's start (or the oldest
// after a counter reset) to the newest.
func (e *Engine) rate(p *Pending, r *rule, g *group, s sample) {
	n := len(g.samples)
	if n > 0 && s.t <= g.samples[n-1].t-r.window {
		e.stats.late++
		return
	}
	i := n
	for i > 0 && g.samples[i-1].t > s.t {
		i--
	}
	g.samples = append(g.samples, sample{})
	copy(g.samples[i+1:], g.samples[i:])
	g.samples[i] = s
	n++
	top := g.samples[n-1]
	cutoff := top.t - r.window
	base := 0
	for j := 1; j < n; j++ {
		if g.samples[j].t <= cutoff {
			base = j
		}
		// A counter that went down was reset (the gateway restarted):
		// nothing before it compares.
		if g.samples[j].errs < g.samples[j-1].errs || g.samples[j].tot < g.samples[j-1].tot {
			base = j
		}
	}
	if base > 0 {
		g.samples = append(g.samples[:0], g.samples[base:]...)
	}
	b := g.samples[0]
	dTot, dErr := top.tot-b.tot, top.errs-b.errs
	if len(g.samples) < 2 || dTot <= 0 || dTot < r.cfg.Rate.MinTotal {
		g.ratio = 0
		return
	}
	g.ratio = dErr / dTot
	if g.ratio <= r.cfg.Rate.Above || r.cfg.Level == LevelNone {
		return
	}
	if r.cooling(g, top.t) {
		e.stats.held++
		return
	}
	msg := fmt.Sprintf("%s %s: %.2f%% (%s of %s) over %s", r.cfg.Level, r.cfg.Name, 100*g.ratio, num(dErr), num(dTot),
		short(time.Duration(top.t-b.t)))
	if g.key != "" {
		msg += " (" + g.key + ")"
	}
	e.fire(p, r, g, top.t, firing{typ: TypeRate, level: r.cfg.Level, count: dErr, window: r.cfg.Window,
		first: b.ref, last: top.ref, firstT: b.t, lastT: top.t, message: msg})
}

// sustained fires when g's condition has held for the rule's duration at
// t (a record's time, or the clock at a Tick).
func (e *Engine) sustained(p *Pending, r *rule, g *group, t int64, ref seqRef) {
	if !g.on || t-g.since < r.forNS || r.cfg.Level == LevelNone || r.cooling(g, t) {
		return
	}
	msg := fmt.Sprintf("%s %s: condition held", r.cfg.Level, r.cfg.Name)
	if r.forNS > 0 {
		msg += " for " + short(time.Duration(t-g.since))
	}
	if g.key != "" {
		msg += " (" + g.key + ")"
	}
	e.fire(p, r, g, t, firing{typ: TypeSustained, level: r.cfg.Level, count: 1, window: r.cfg.For,
		first: g.onRef, last: ref, firstT: g.since, lastT: max(t, g.since), message: msg})
}

// absent fires when g saw no record for the rule's duration at now, and
// again every cooldown while the silence lasts (a device that comes back
// and goes again within the cooldown is not reported twice).
func (e *Engine) absent(p *Pending, r *rule, g *group, now int64) {
	if now-g.seen < r.forNS || r.cfg.Level == LevelNone || r.cooling(g, now) {
		return
	}
	msg := fmt.Sprintf("%s %s: no record for %s", r.cfg.Level, r.cfg.Name, short(time.Duration(now-g.seen).Round(time.Second)))
	if g.key != "" {
		msg += " (" + g.key + ")"
	}
	e.fire(p, r, g, now, firing{typ: TypeAbsent, level: r.cfg.Level, window: r.cfg.For,
		first: g.lastRef, last: g.lastRef, firstT: g.seen, lastT: g.seen, message: msg})
}

// fire records an alert of rule r's group g at t.
func (e *Engine) fire(p *Pending, r *rule, g *group, t int64, f firing) {
	f.rule, f.description, f.group = r.cfg.Name, r.cfg.Description, g.key
	g.alerted, g.lastAlert = true, t
	r.alerts++
	e.stats.alerts[f.level]++
	r.last = &AlertInfo{At: e.now(), Level: f.level, Message: f.message, Group: g.key}
	p.fires = append(p.fires, f)
}

// num writes a count without a needless fraction.
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3g", v)
}

// short writes a duration as written by hand: 5m, 1h30m, 90s.
func short(d time.Duration) string {
	s := d.String()
	if len(s) > 3 && s[len(s)-3:] == "m0s" {
		s = s[:len(s)-2]
	}
	if len(s) > 3 && s[len(s)-3:] == "h0m" {
		s = s[:len(s)-2]
	}
	return s
}
