package fleet

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weirgw/weir/event"
)

// Bounds on what one gateway's records can make the store keep. A
// gateway chooses its endpoint and bus names and every string it sends;
// these caps are what it costs at most (docs/SECURITY.md).
const (
	MaxIDLen       = 128 // a longer gateway id is refused (certificates allow 64)
	maxLinks       = 8   // endpoints followed per gateway
	maxBuses       = 16  // Modbus buses followed per gateway
	maxEvents      = 128 // events strip, newest kept
	maxText        = 200 // bytes of an event's text, a host name, a field value
	maxLatest      = 16  // telemetry sources in the latest table
	maxLatestBytes = 32 << 10
	maxKey         = 64
)

// Event is one mark on a gateway's events strip.
type Event struct {
	Time     int64  `json:"t"`    // ns, the record's time
	Type     string `json:"type"` // outage, reconnect, certificate, alert, tamper, config, clock, bus, spool, collector
	Severity string `json:"sev"`  // info, warning, critical
	Text     string `json:"text"`
}

// Latest is the newest telemetry record of one source.
type Latest struct {
	Time    int64       `json:"t"`
	Source  string      `json:"source"`
	Message string      `json:"message"`
	Fields  [][2]string `json:"fields"`
}

type spoolState struct {
	Time       int64   `json:"t"`
	Records    int64   `json:"records"`
	Bytes      int64   `json:"bytes"`
	Oldest     float64 `json:"oldest_s"`
	IntakeHeld bool    `json:"intake_held,omitempty"`
	Lost       bool    `json:"lost,omitempty"` // the report told of evicted or expired records
}

// LinkState is an endpoint as its newest link report has it.
type LinkState struct {
	Time        int64   `json:"t"`
	State       string  `json:"state"`
	Transport   string  `json:"transport,omitempty"`
	Active      bool    `json:"active,omitempty"`
	RTT         float64 `json:"rtt_ms"`
	Loss        float64 `json:"loss"`
	Goodput     float64 `json:"goodput_bps"`
	Outage      float64 `json:"outage_s"`
	Reconnects  uint64  `json:"reconnects"`
	CertWarning string  `json:"cert_warning,omitempty"`
	LastError   string  `json:"last_error,omitempty"`
}

type clockState struct {
	Time      int64  `json:"t"` // of the record whose quality this is
	Source    string `json:"source,omitempty"`
	State     string `json:"state,omitempty"`
	Bound     int64  `json:"bound_ns"` // -1: unknown
	Mode      string `json:"mode,omitempty"`
	WasLocked bool   `json:"was_locked,omitempty"`
}

// BusState is a Modbus bus as its newest report has it.
type BusState struct {
	Time  int64   `json:"t"`
	State string  `json:"state"`
	FER   float64 `json:"fer_1m"`
}

type stamped struct {
	Time   int64  `json:"t"`
	Value  string `json:"value"`
	Result string `json:"result,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Dropped counts what a gateway sent past the bounds.
type Dropped struct {
	Series  uint64 `json:"series,omitempty"`  // samples of series past MaxSeries
	Links   uint64 `json:"links,omitempty"`   // records of endpoints past maxLinks
	Buses   uint64 `json:"buses,omitempty"`   // records of buses past maxBuses
	Latest  uint64 `json:"latest,omitempty"`  // telemetry sources past maxLatest
	Outside uint64 `json:"outside,omitempty"` // records stamped outside the week kept (or ahead of the collector's clock)
}

// gw is one gateway's state, kept as JSON beside its series file.
type gw struct {
	ID         string `json:"id"`
	Host       string `json:"host,omitempty"`
	LastRecord int64  `json:"last_record"` // newest record time, ns
	LastAck    int64  `json:"last_ack"`    // collector's clock when a batch of it was last written
	Records    uint64 `json:"records"`
	Seq        uint64 `json:"seq"` // the highest sequence taken
	// Partial: written while a rebuild ran, so Seq does not say which
	// of the gateway's older records it holds.
	Partial  bool                  `json:"partial,omitempty"`
	Spool    *spoolState           `json:"spool,omitempty"`
	Links    map[string]*LinkState `json:"links,omitempty"`
	Clock    clockState            `json:"clock"`
	ClockRec *stamped              `json:"clock_record,omitempty"` // last weir:clock transition: value from → to
	Buses    map[string]*BusState  `json:"buses,omitempty"`
	Tamper   *stamped              `json:"tamper,omitempty"`
	Config   *stamped              `json:"config,omitempty"`
	Events   []Event               `json:"events,omitempty"`
	Latest   map[string]*Latest    `json:"latest,omitempty"`
	Dropped  Dropped               `json:"dropped"`

	series *seriesSet
	dirty  bool
}

func newGW(id string) *gw {
	return &gw{ID: id, Clock: clockState{Bound: -1}, Links: map[string]*LinkState{}, Buses: map[string]*BusState{},
		Latest: map[string]*Latest{}}
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func field(ev *event.Event, key string) (event.Value, bool) {
	for _, f := range ev.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return event.Value{}, false
}

// num reads a numeric field whatever its type (a JSON sink line gives
// every number back as a float).
func num(ev *event.Event, key string) (float64, bool) {
	v, ok := field(ev, key)
	if !ok {
		return 0, false
	}
	switch v.Type {
	case event.TypeInt:
		return float64(v.Int()), true
	case event.TypeUint:
		return float64(v.Num), true
	case event.TypeFloat:
		f := v.Float()
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	case event.TypeBool:
		if v.Bool() {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func str(ev *event.Event, key string) string {
	v, ok := field(ev, key)
	if !ok {
		return ""
	}
	if v.Type == event.TypeString {
		return clip(v.Str, maxText)
	}
	return clip(v.String(), maxText)
}

func flag(ev *event.Event, key string) bool {
	f, _ := num(ev, key)
	return f != 0
}

// addEvent keeps the strip in time order, at most maxEvents, and the same
// event once (a rebuild from the sink sees records again).
func (g *gw) addEvent(e Event) {
	e.Text = clip(e.Text, maxText)
	i := sort.Search(len(g.Events), func(i int) bool { return g.Events[i].Time > e.Time })
	for j := i - 1; j >= 0 && g.Events[j].Time == e.Time; j-- {
		if g.Events[j] == e {
			return
		}
	}
	if len(g.Events) >= maxEvents {
		if i == 0 {
			return // older than everything kept
		}
		g.Events = append(g.Events[:0], g.Events[1:]...)
		i--
	}
	g.Events = append(g.Events, Event{})
	copy(g.Events[i+1:], g.Events[i:])
	g.Events[i] = e
}

// isAlert is the gateway's own rule for its alert LED: an alert record,
// or anything critical or worse.
func isAlert(ev *event.Event) bool {
	return ev.Kind == event.KindAlert || ev.Severity <= event.SevCritical
}

func sevName(s event.Severity) string {
	switch {
	case s <= event.SevCritical:
		return "critical"
	case s <= event.SevWarning:
		return "warning"
	}
	return "info"
}

// apply takes one record into the gateway's state and series. now is the
// collector's clock: records stamped more than a week before it, or
// ahead of it by more than the allowed skew, change the state but draw
// no points.
func (g *gw) apply(ev *event.Event, now time.Time) {
	g.dirty = true
	g.Records++
	t := time.Unix(0, ev.Time)
	ahead := t.After(now.Add(maxSkew))
	plot := !ahead && t.After(now.Add(-week))
	if !plot {
		g.Dropped.Outside++
	}
	if !ahead && ev.Time > g.LastRecord {
		g.LastRecord = ev.Time
	}
	if ev.Host != "" {
		g.Host = clip(ev.Host, maxText)
	}
	sample := func(name string, agg Agg, v float64) {
		if plot {
			g.series.sample(name, agg, t, v)
		}
	}
	if !ahead && ev.Time >= g.Clock.Time {
		g.Clock.Time, g.Clock.Source, g.Clock.State, g.Clock.Bound = ev.Time, ev.Quality.Source.String(), ev.Quality.State.String(), ev.Quality.ErrorBound
		if ev.Quality.State == event.ClockLocked {
			g.Clock.WasLocked = true
		}
	}
	if ev.Quality.ErrorBound >= 0 {
		sample("clock.bound_ns", AggExtreme, float64(ev.Quality.ErrorBound))
	}
	sample("rate:"+ev.Kind.String(), AggSum, 1)
	newer := func(at *int64) bool {
		if ahead || ev.Time < *at {
			return false
		}
		*at = ev.Time
		return true
	}

	if _, ok := field(ev, "config_version"); ok {
		g.applyConfig(ev, newer)
	}
	switch {
	case ev.Kind == event.KindTelemetry && ev.Source == "weir:spool":
		g.applySpool(ev, sample, newer)
	case ev.Kind == event.KindTelemetry && ev.Source == "weir:uplink":
		g.applyLink(ev, sample, newer)
	case ev.Kind == event.KindTelemetry && ev.Source == "weir:clock":
		g.applyClock(ev, sample, newer)
	case ev.Kind == event.KindTelemetry && strings.HasPrefix(ev.Source, "modbus:"):
		if _, ok := field(ev, "frame_error_rate_1m"); ok {
			g.applyBus(ev, sample, newer)
		}
	}
	if isAlert(ev) {
		g.applyAlert(ev, newer)
	}
	if ev.Kind == event.KindTelemetry {
		if _, diag := field(ev, "verdict"); !diag {
			g.keepLatest(ev, ahead)
		}
	}
}

func (g *gw) applySpool(ev *event.Event, sample func(string, Agg, float64), newer func(*int64) bool) {
	recs, _ := num(ev, "backlog_records")
	oldest, _ := num(ev, "oldest_unacked_seconds")
	sample("backlog.records", AggExtreme, recs)
	sample("backlog.age_s", AggExtreme, oldest)
	if g.Spool == nil {
		g.Spool = &spoolState{}
	}
	if !newer(&g.Spool.Time) {
		return
	}
	bytes, _ := num(ev, "backlog_bytes")
	g.Spool.Records, g.Spool.Bytes, g.Spool.Oldest = int64(recs), int64(bytes), oldest
	g.Spool.IntakeHeld = flag(ev, "intake_held")
	g.Spool.Lost = ev.Priority == event.PriorityCritical
	if g.Spool.Lost {
		g.addEvent(Event{Time: ev.Time, Type: "spool", Severity: "critical", Text: ev.Message})
	}
}

func (g *gw) applyLink(ev *event.Event, sample func(string, Agg, float64), newer func(*int64) bool) {
	ep := str(ev, "endpoint")
	if ep == "" {
		ep = "default"
	}
	ep = clip(ep, 96)
	ls := g.Links[ep]
	if ls == nil {
		if len(g.Links) >= maxLinks {
			g.Dropped.Links++
			return
		}
		ls = &LinkState{}
		g.Links[ep] = ls
	}
	rtt, _ := num(ev, "srtt_ms")
	loss, _ := num(ev, "loss_1m")
	goodput, _ := num(ev, "goodput_bps")
	sample("link.rtt_ms:"+ep, AggExtreme, rtt)
	sample("link.loss:"+ep, AggExtreme, loss)
	sample("link.goodput_bps:"+ep, AggExtreme, goodput)
	prev := *ls
	if !newer(&ls.Time) {
		return
	}
	ls.State, ls.Transport, ls.Active = str(ev, "state"), str(ev, "transport"), flag(ev, "active")
	ls.RTT, ls.Loss, ls.Goodput = rtt, loss, goodput
	ls.Outage, _ = num(ev, "outage_seconds")
	r, _ := num(ev, "reconnects")
	ls.Reconnects = uint64(r)
	ls.LastError = str(ev, "last_error")
	ls.CertWarning = str(ev, "cert_warning")
	if prev.Time == 0 {
		if ls.CertWarning != "" {
			g.addEvent(Event{Time: ev.Time, Type: "certificate", Severity: "warning", Text: ls.CertWarning})
		}
		return
	}
	if d := ls.Outage - prev.Outage; d >= 1 {
		text := fmt.Sprintf("%s down %s since %s", ep, fmtSeconds(d), time.Unix(0, prev.Time).UTC().Format(time.TimeOnly))
		if ls.LastError != "" {
			text += ": " + ls.LastError
		}
		g.addEvent(Event{Time: ev.Time, Type: "outage", Severity: "warning", Text: text})
	}
	if ls.Reconnects > prev.Reconnects {
		g.addEvent(Event{Time: ev.Time, Type: "reconnect", Severity: "info",
			Text: fmt.Sprintf("%s reconnected %d times since %s", ep, ls.Reconnects-prev.Reconnects, time.Unix(0, prev.Time).UTC().Format(time.TimeOnly))})
	}
	if ls.State != prev.State && prev.State != "" {
		sev := "info"
		if ls.State != "connected" && ls.State != "standby" {
			sev = "warning"
		}
		g.addEvent(Event{Time: ev.Time, Type: "outage", Severity: sev, Text: fmt.Sprintf("%s %s → %s", ep, prev.State, ls.State)})
	}
	if ls.CertWarning != "" && ls.CertWarning != prev.CertWarning {
		g.addEvent(Event{Time: ev.Time, Type: "certificate", Severity: "warning", Text: ls.CertWarning})
	}
}

func (g *gw) applyClock(ev *event.Event, sample func(string, Agg, float64), newer func(*int64) bool) {
	if off, ok := num(ev, "offset_ns"); ok {
		sample("clock.offset_ns", AggExtreme, off)
	}
	if b, ok := num(ev, "error_bound_ns"); ok && b >= 0 {
		sample("clock.bound_ns", AggExtreme, b)
	}
	from, to := str(ev, "from"), str(ev, "to")
	if to == "" {
		// A periodic report (offset and bound only), not a transition.
		return
	}
	sev := "info"
	if from == "locked" {
		sev = "warning"
	}
	g.addEvent(Event{Time: ev.Time, Type: "clock", Severity: sev, Text: "clock " + from + " → " + to})
	if g.ClockRec == nil {
		g.ClockRec = &stamped{}
	}
	if newer(&g.ClockRec.Time) {
		g.ClockRec.Value, g.ClockRec.Result = to, str(ev, "mode")
		g.Clock.Mode = g.ClockRec.Result
	}
}

func (g *gw) applyBus(ev *event.Event, sample func(string, Agg, float64), newer func(*int64) bool) {
	name := clip(str(ev, "bus"), 48)
	if name == "" {
		name = clip(strings.TrimPrefix(ev.Source, "modbus:"), 48)
	}
	bs := g.Buses[name]
	if bs == nil {
		if len(g.Buses) >= maxBuses {
			g.Dropped.Buses++
			return
		}
		bs = &BusState{}
		g.Buses[name] = bs
	}
	fer, _ := num(ev, "frame_error_rate_1m")
	sample("bus.fer:"+name, AggExtreme, fer)
	prev := *bs
	if !newer(&bs.Time) {
		return
	}
	bs.State, bs.FER = str(ev, "state"), fer
	switch {
	case prev.Time == 0:
	case fer > 0 && prev.FER == 0:
		g.addEvent(Event{Time: ev.Time, Type: "bus", Severity: "warning",
			Text: fmt.Sprintf("bus %s: frame errors, %.1f%% of frames in the last minute", name, 100*fer)})
	case fer == 0 && prev.FER > 0:
		g.addEvent(Event{Time: ev.Time, Type: "bus", Severity: "info", Text: fmt.Sprintf("bus %s: no frame errors in the last minute", name)})
	}
	if prev.Time != 0 && bs.State != prev.State {
		g.addEvent(Event{Time: ev.Time, Type: "bus", Severity: "warning", Text: fmt.Sprintf("bus %s %s → %s", name, prev.State, bs.State)})
	}
}

func (g *gw) applyAlert(ev *event.Event, newer func(*int64) bool) {
	typ := "alert"
	switch {
	case ev.Source == "weir:board":
		typ = "tamper"
		if g.Tamper == nil {
			g.Tamper = &stamped{}
		}
		if newer(&g.Tamper.Time) {
			g.Tamper.Value = str(ev, "state")
		}
	case ev.Source == "weir:spool":
		typ = "spool"
		if g.Spool == nil {
			g.Spool = &spoolState{}
		}
		switch {
		case strings.HasPrefix(ev.Message, "spool: intake held"):
			if newer(&g.Spool.Time) {
				g.Spool.IntakeHeld = true
			}
		case strings.HasPrefix(ev.Message, "spool: intake resumed"):
			if newer(&g.Spool.Time) {
				g.Spool.IntakeHeld = false
			}
		}
	}
	g.addEvent(Event{Time: ev.Time, Type: typ, Severity: sevName(ev.Severity), Text: oneLine(ev.Message)})
}

func (g *gw) applyConfig(ev *event.Event, newer func(*int64) bool) {
	if g.Config == nil {
		g.Config = &stamped{}
	}
	prev := *g.Config
	if !newer(&g.Config.Time) {
		return
	}
	g.Config.Value, g.Config.Result, g.Config.Detail = clip(str(ev, "config_version"), 64), clip(str(ev, "config_result"), 32), str(ev, "config_error")
	if g.Config.Value != prev.Value || g.Config.Result != prev.Result {
		sev := "info"
		if !configOK(g.Config.Result) {
			sev = "warning"
		}
		text := "configuration " + g.Config.Value
		if g.Config.Result != "" {
			text += ": " + g.Config.Result
		}
		if g.Config.Detail != "" {
			text += " (" + g.Config.Detail + ")"
		}
		g.addEvent(Event{Time: ev.Time, Type: "config", Severity: sev, Text: text})
	}
}

func configOK(result string) bool {
	switch result {
	case "", "applied", "ok", "unchanged":
		return true
	}
	return false
}

// keepLatest keeps the newest telemetry record of each source (of each
// endpoint or bus for the sources that have several), within bounds.
func (g *gw) keepLatest(ev *event.Event, ahead bool) {
	key := clip(ev.Source, maxKey)
	if ep := str(ev, "endpoint"); ep != "" {
		key += " " + clip(ep, maxKey)
	} else if b := str(ev, "bus"); b != "" {
		key += " " + clip(b, maxKey)
	}
	cur := g.Latest[key]
	if cur == nil && len(g.Latest) >= maxLatest {
		g.Dropped.Latest++
		return
	}
	if cur != nil && (ahead || ev.Time < cur.Time) {
		return
	}
	l := &Latest{Time: ev.Time, Source: clip(ev.Source, maxKey), Message: clip(oneLine(ev.Message), maxText)}
	size := len(key) + len(l.Source) + len(l.Message)
	for _, f := range ev.Fields {
		if size >= maxLatestBytes/maxLatest {
			break
		}
		kv := [2]string{clip(f.Key, maxKey), clip(valueText(f.Value), maxText)}
		size += len(kv[0]) + len(kv[1]) + 32 // and the two string headers
		l.Fields = append(l.Fields, kv)
	}
	g.Latest[key] = l
}

// valueText prints a field's value for the table: floats to six
// significant digits, large ones whole.
func valueText(v event.Value) string {
	if v.Type != event.TypeFloat {
		return v.String()
	}
	f := v.Float()
	if math.Abs(f) >= 1e6 && math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}

// oneLine folds a message onto one line for the strip and tables.
func oneLine(s string) string {
	s = clip(s, 4*maxText)
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r\n", " ⏎ ", "\n", " ⏎ ", "\r", " ⏎ ").Replace(s)
	}
	return clip(s, maxText)
}

func fmtSeconds(s float64) string {
	return (time.Duration(s*float64(time.Second)) / time.Second * time.Second).String()
}
