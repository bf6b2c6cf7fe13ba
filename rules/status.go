package rules

import (
	"fmt"
	"sort"
	"time"
)

// Rule and pattern states, as weir alerts shows them.
const (
	StateQuiet   = "quiet"        // nothing raised lately
	StateFiring  = "firing"       // raised within the window, or the condition holds now
	StateCooling = "cooling_down" // raised within the cooldown; the condition no longer holds
)

// Stats are the engine's counters since start.
type Stats struct {
	Evaluated    uint64            `json:"records_evaluated"`
	Matched      uint64            `json:"records_matched"` // rule matches (a record matching two rules counts twice)
	Alerts       map[string]uint64 `json:"alerts_by_level"`
	Correlations map[string]uint64 `json:"correlations_by_pattern"`
	// HeldByCooldown: times a rule's condition was met within its
	// cooldown, so no alert was raised.
	HeldByCooldown uint64 `json:"held_by_cooldown"`
	// Late: records older than their rule's window (or state) when they
	// came, not counted.
	Late uint64 `json:"late_records"`
	// GroupsForgotten: groups dropped for max_groups or a day idle.
	GroupsForgotten uint64 `json:"groups_forgotten"`
}

// Status is what weir alerts shows.
type Status struct {
	Enabled  bool            `json:"enabled"`
	At       time.Time       `json:"at"`
	Stats    Stats           `json:"stats"`
	Rules    []RuleStatus    `json:"rules"`
	Patterns []PatternStatus `json:"patterns"`
}

// RuleStatus is one rule's state.
type RuleStatus struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Level       Level  `json:"level"`
	Description string `json:"description,omitempty"`
	State       string `json:"state"`
	// Matched: records the rule matched since start (or its last change).
	Matched uint64 `json:"matched"`
	// Now: what the rule holds at this moment, in words ("4/10 within
	// 5m", "1.3% over 5m", "held 2m of 10m", "silent 40s of 5m").
	Now    string `json:"now"`
	Groups int    `json:"groups"`
	// FiringGroups names the groups firing or cooling down (at most 10).
	FiringGroups []string   `json:"firing_groups,omitempty"`
	Alerts       uint64     `json:"alerts"`
	LastAlert    *AlertInfo `json:"last_alert,omitempty"`
}

// PatternStatus is one correlation pattern's state.
type PatternStatus struct {
	Pattern  string     `json:"pattern"`
	Enabled  bool       `json:"enabled"`
	Level    Level      `json:"level"`
	State    string     `json:"state"`
	Open     int        `json:"open_groups"`
	Detected uint64     `json:"detected"`
	Last     *AlertInfo `json:"last_alert,omitempty"`
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.statsLocked()
}

func (e *Engine) statsLocked() Stats {
	st := Stats{Evaluated: e.evaluated.Load(), Matched: e.stats.matched, HeldByCooldown: e.stats.held,
		Late: e.stats.late, GroupsForgotten: e.stats.forgotten,
		Alerts: map[string]uint64{}, Correlations: map[string]uint64{}}
	for _, l := range Levels() {
		st.Alerts[l.String()] = e.stats.alerts[l]
	}
	for i, p := range Patterns() {
		if e.corr != nil {
			st.Correlations[p] = e.corr.found[i]
		} else {
			st.Correlations[p] = 0
		}
	}
	return st
}

// Status takes a snapshot at the engine's clock.
func (e *Engine) Status() Status {
	now := e.now()
	t := now.UnixNano()
	set := e.set.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{At: now, Stats: e.statsLocked()}
	if set == nil {
		return st
	}
	st.Enabled = set.enabled
	for _, r := range set.rules {
		rs := RuleStatus{Name: r.cfg.Name, Type: r.cfg.Type, Level: r.cfg.Level, Description: r.cfg.Description,
			State: StateQuiet, Matched: r.matched, Groups: len(r.groups), Alerts: r.alerts, LastAlert: r.last}
		keys := make([]string, 0, len(r.groups))
		for k := range r.groups {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var top *group
		for _, k := range keys {
			g := r.groups[k]
			s := r.state(g, t)
			if s != StateQuiet && len(rs.FiringGroups) < 10 && k != "" {
				rs.FiringGroups = append(rs.FiringGroups, k)
			}
			if rank(s) > rank(rs.State) {
				rs.State = s
			}
			if top == nil || r.fuller(g, top, t) {
				top = g
			}
		}
		rs.Now = r.describe(top, t)
		st.Rules = append(st.Rules, rs)
	}
	for i, p := range Patterns() {
		ps := PatternStatus{Pattern: p, State: StateQuiet}
		c := set.corr
		switch i {
		case patSA:
			ps.Enabled, ps.Level = c.cfg.SourceAttack.Enabled, c.cfg.SourceAttack.Level
		case patDist:
			ps.Enabled, ps.Level = c.cfg.Distributed.Enabled, c.cfg.Distributed.Level
		case patEsc:
			ps.Enabled, ps.Level = c.cfg.Escalating.Enabled, c.cfg.Escalating.Level
		}
		ps.Detected, ps.Last = c.found[i], c.last[i]
		for _, g := range c.groups[i] {
			if t < g.start+c.window {
				ps.Open++
				if g.fired {
					ps.State = StateFiring
				}
			}
		}
		st.Patterns = append(st.Patterns, ps)
	}
	return st
}

func rank(s string) int {
	switch s {
	case StateFiring:
		return 2
	case StateCooling:
		return 1
	}
	return 0
}

// state is a group's state at t.
func (r *rule) state(g *group, t int64) string {
	switch r.cfg.Type {
	case TypeSustained:
		if g.on && t-g.since >= r.forNS && r.cfg.Level != LevelNone {
			return StateFiring
		}
	case TypeAbsent:
		if t-g.seen >= r.forNS && r.cfg.Level != LevelNone {
			return StateFiring
		}
	default:
		if g.alerted && t-g.lastAlert < r.window {
			return StateFiring
		}
	}
	if g.alerted && t-g.lastAlert < r.cooldown {
		return StateCooling
	}
	return StateQuiet
}

// fuller says whether a is nearer firing than b, for the one group
// weir alerts describes.
func (r *rule) fuller(a, b *group, t int64) bool {
	switch r.cfg.Type {
	case TypeCount:
		return a.sum > b.sum
	case TypeRate:
		return a.ratio > b.ratio
	case TypeSustained:
		return a.on && (!b.on || a.since < b.since)
	case TypeAbsent:
		return a.seen < b.seen
	}
	return false
}

// describe says what g holds at t.
func (r *rule) describe(g *group, t int64) string {
	var s string
	switch r.cfg.Type {
	case TypeCount:
		if r.cfg.Level == LevelNone {
			s = "an event type: no alert of its own"
			break
		}
		var sum float64
		if g != nil {
			for _, h := range g.hits {
				if h.t > t-r.window {
					sum += h.w
				}
			}
			stage := g.stage
			s = fmt.Sprintf("%s/%s within %s", num(sum), num(r.need(stage)), short(r.cfg.Window))
		} else {
			s = fmt.Sprintf("0/%s within %s", num(r.cfg.Count), short(r.cfg.Window))
		}
	case TypeRate:
		ratio := 0.0
		if g != nil {
			ratio = g.ratio
		}
		s = fmt.Sprintf("%.2f%% of %.2f%% over %s", 100*ratio, 100*r.cfg.Rate.Above, short(r.cfg.Window))
	case TypeSustained:
		if g == nil || !g.on {
			s = "condition not holding"
		} else {
			s = fmt.Sprintf("held %s of %s", short(time.Duration(max(t-g.since, 0)).Round(time.Second)), short(r.cfg.For))
		}
	case TypeAbsent:
		if g == nil {
			s = "no record seen yet"
		} else {
			s = fmt.Sprintf("silent %s of %s", short(time.Duration(max(t-g.seen, 0)).Round(time.Second)), short(r.cfg.For))
		}
	}
	if g != nil && g.key != "" && r.cfg.Level != LevelNone {
		s += " (" + g.key + ")"
	}
	return s
}
