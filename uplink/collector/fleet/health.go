package fleet

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Level is a gateway's health, worst last.
type Level int

const (
	LevelOK Level = iota
	LevelUnknown
	LevelWarning
	LevelCritical
	LevelSilent
)

var levelNames = [...]string{"ok", "unknown", "warning", "critical", "silent"}

func (l Level) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// ParseLevel maps a name back to its Level.
func ParseLevel(s string) (Level, bool) {
	for i, n := range levelNames {
		if n == s {
			return Level(i), true
		}
	}
	return 0, false
}

// Thresholds of the health rules (the fleet page's legend and the README
// repeat them).
const (
	WarnLoss        = 0.02 // loss over a minute, on any endpoint
	WarnRTTms       = 1000.0
	WarnBacklogAge  = 5 * time.Minute
	CritBacklogAge  = time.Hour
	DefaultStale    = 3 * time.Minute
	DefaultAlertWin = time.Hour
)

// Link is one endpoint's figures in a row: the active one, or the worst.
type Link struct {
	Endpoint  string
	State     string
	Transport string
	RTTms     float64
	Loss      float64
	Goodput   float64
	Known     bool
}

// Row is one gateway on the fleet page: what its newest records say, and
// its health by the rules above.
type Row struct {
	ID      string
	Host    string
	Site    Site
	Level   Level
	Reasons []string
	Score   float64 // orders rows of one level: larger is worse

	LastRecord time.Time // the newest record's time (the gateway's clock)
	LastAck    time.Time // when a batch was last written (the collector's clock)

	BacklogKnown   bool
	BacklogRecords int64
	BacklogBytes   int64
	BacklogAge     float64 // seconds the oldest unacknowledged record waited
	IntakeHeld     bool

	Link Link

	ClockSource string
	ClockState  string
	ClockBound  int64 // ns; -1 unknown

	BusKnown bool
	Bus      string // the bus with the highest frame-error rate
	BusFER   float64

	Alerts    int    // alert records within the alert window
	LastAlert string // the newest one's text

	ConfigVersion string // applied configuration (issue 16's records); empty until they come
	ConfigResult  string

	Tamper      string // open, closed, or empty (no record)
	CertWarning string
}

// row works out g's row at now.
func (g *gw) row(now time.Time, o Options, site Site) Row {
	r := Row{ID: g.ID, Host: g.Host, Site: site, ClockBound: -1}
	var crit, warn []string
	var score float64
	if g.LastRecord > 0 {
		r.LastRecord = time.Unix(0, g.LastRecord)
	}
	if g.LastAck > 0 {
		r.LastAck = time.Unix(0, g.LastAck)
	}
	silent := g.LastAck > 0 && now.Sub(r.LastAck) > o.Stale
	if silent {
		score += now.Sub(r.LastAck).Seconds()
	}
	if s := g.Spool; s != nil && s.Time > 0 {
		r.BacklogKnown, r.BacklogRecords, r.BacklogBytes, r.BacklogAge, r.IntakeHeld = true, s.Records, s.Bytes, s.Oldest, s.IntakeHeld
		age := time.Duration(s.Oldest * float64(time.Second))
		switch {
		case age > CritBacklogAge:
			crit = append(crit, "backlog "+fmtAge(age)+" behind")
		case age > WarnBacklogAge:
			warn = append(warn, "backlog "+fmtAge(age)+" behind")
		}
		score += s.Oldest / 60
		if s.IntakeHeld {
			crit = append(crit, "spool intake held")
		}
		if s.Lost {
			crit = append(crit, "spool evicted records")
		}
	}
	// The row shows the active endpoint; the rules look at every one.
	var eps []string
	for ep := range g.Links {
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	var shown *LinkState
	for _, ep := range eps {
		l := g.Links[ep]
		if l.Time == 0 {
			continue
		}
		if shown == nil || (l.Active && !shown.Active) || (l.Active == shown.Active && l.Loss > shown.Loss) {
			shown = l
			r.Link = Link{Endpoint: ep, State: l.State, Transport: l.Transport, RTTms: l.RTT, Loss: l.Loss, Goodput: l.Goodput, Known: true}
		}
		if l.Loss > WarnLoss {
			warn = append(warn, fmt.Sprintf("loss %.1f%% on %s", 100*l.Loss, ep))
			score += 100 * l.Loss
		}
		if l.RTT > WarnRTTms {
			warn = append(warn, fmt.Sprintf("RTT %.0f ms on %s", l.RTT, ep))
		}
		if l.CertWarning != "" {
			warn = append(warn, l.CertWarning)
			r.CertWarning = l.CertWarning
		}
	}
	if r.Link.Known && r.Link.State != "connected" && !anyConnected(g) {
		warn = append(warn, "link "+r.Link.State+" at its last report")
	}
	r.ClockSource, r.ClockState, r.ClockBound = g.Clock.Source, g.Clock.State, g.Clock.Bound
	switch {
	case g.Clock.State == "holdover":
		warn = append(warn, "clock in holdover")
	case g.Clock.State == "freerun" && (g.Clock.Source == "ptp" || g.Clock.WasLocked):
		warn = append(warn, "clock free-running")
	}
	var buses []string
	for b := range g.Buses {
		buses = append(buses, b)
	}
	sort.Strings(buses)
	for _, b := range buses {
		bs := g.Buses[b]
		if bs.Time == 0 {
			continue
		}
		if !r.BusKnown || bs.FER > r.BusFER {
			r.BusKnown, r.Bus, r.BusFER = true, b, bs.FER
		}
		if bs.FER > 0 {
			warn = append(warn, fmt.Sprintf("frame errors on bus %s (%.1f%%)", b, 100*bs.FER))
			score += 100 * bs.FER
		}
		if bs.State == "down" {
			warn = append(warn, "bus "+b+" down")
		}
	}
	if t := g.Tamper; t != nil && t.Time > 0 {
		r.Tamper = t.Value
		if t.Value == "open" {
			crit = append(crit, "enclosure open")
		}
	}
	from := now.Add(-o.AlertWindow).UnixNano()
	critAlert := false
	for i := len(g.Events) - 1; i >= 0; i-- {
		e := g.Events[i]
		if e.Time < from {
			break
		}
		switch e.Type {
		case "alert", "tamper", "spool", "collector":
		default:
			continue
		}
		if e.Severity != "critical" && e.Severity != "warning" {
			continue
		}
		if r.Alerts == 0 {
			r.LastAlert = e.Text
		}
		r.Alerts++
		critAlert = critAlert || e.Severity == "critical"
	}
	if r.Alerts > 0 {
		msg := fmt.Sprintf("%d alerts in the last %s (newest: %s)", r.Alerts, fmtAge(o.AlertWindow), r.LastAlert)
		if r.Alerts == 1 {
			msg = fmt.Sprintf("an alert in the last %s: %s", fmtAge(o.AlertWindow), r.LastAlert)
		}
		if critAlert {
			crit = append(crit, msg)
		} else {
			warn = append(warn, msg)
		}
		score += float64(r.Alerts)
	}
	if c := g.Config; c != nil && c.Time > 0 {
		r.ConfigVersion, r.ConfigResult = c.Value, c.Result
		if !configOK(c.Result) {
			warn = append(warn, "configuration "+c.Value+" "+c.Result)
		}
	}
	switch {
	case silent:
		r.Level = LevelSilent
		r.Reasons = append([]string{"silent for " + fmtAge(now.Sub(r.LastAck))}, append(crit, warn...)...)
	case len(crit) > 0:
		r.Level, r.Reasons = LevelCritical, append(crit, warn...)
	case len(warn) > 0:
		r.Level, r.Reasons = LevelWarning, warn
	case g.Spool == nil && len(g.Links) == 0:
		r.Level, r.Reasons = LevelUnknown, []string{"no telemetry yet"}
	default:
		r.Level = LevelOK
	}
	r.Score = score + 10*float64(len(crit)) + float64(len(warn))
	return r
}

func anyConnected(g *gw) bool {
	for _, l := range g.Links {
		if l.State == "connected" {
			return true
		}
	}
	return false
}

// fmtAge prints a duration the way the page does: 45s, 12m, 3h, 2d.
func fmtAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// Worse orders rows worst first: by level, then score, then id.
func Worse(a, b *Row) bool {
	if a.Level != b.Level {
		return a.Level > b.Level
	}
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.ID < b.ID
}

// Matches reports whether the row contains q (case-insensitive) in its
// id, host, site or reasons.
func (r *Row) Matches(q string) bool {
	if q == "" {
		return true
	}
	q = strings.ToLower(q)
	for _, s := range append([]string{r.ID, r.Host, r.Site.String(), r.Link.Endpoint, r.Bus}, r.Reasons...) {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}
