package ui

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/weirgw/weir/uplink/collector/fleet"
)

// plotDef is one plot of the gateway page: the series whose names start
// with prefix (one line each, named by what follows ':').
type plotDef struct {
	id, title, unit, prefix string
	scale                   float64
	format                  func(float64) string
}

var plotDefs = []plotDef{
	{"rtt", "Link RTT", "ms", "link.rtt_ms:", 1, func(v float64) string { return si(v, "") }},
	{"loss", "Link loss (over a minute)", "%", "link.loss:", 100, func(v float64) string { return trim(v) }},
	{"goodput", "Link goodput", "bit/s", "link.goodput_bps:", 1, func(v float64) string { return si(v, "") }},
	{"backlog", "Backlog", "records", "backlog.records", 1, func(v float64) string { return si(v, "") }},
	{"backlog-age", "Age of the oldest unacknowledged record", "s", "backlog.age_s", 1, func(v float64) string { return si(v, "") }},
	{"offset", "PTP offset (at each clock state change)", "ns", "clock.offset_ns", 1, fmtNS},
	{"bound", "Clock error bound", "ns", "clock.bound_ns", 1, fmtNS},
	{"fer", "Frame-error rate per bus", "%", "bus.fer:", 100, func(v float64) string { return trim(v) }},
	{"rate", "Records per second by kind", "records/s", "rate:", 1, func(v float64) string { return si(v, "") }},
}

type gatewayView struct {
	Now, ID, Level, Host, Site string
	Reasons                    []string
	Range                      string
	Ranges                     []rangeLink
	Summary                    [][2]string
	Plots                      []plotView
	Strip                      stripView
	Events                     []eventView
	Latest                     []latestView
	Notes                      []string
	Legend                     legend
}

type rangeLink struct {
	Name, Link string
	Active     bool
}

type eventView struct {
	Time, Type, Severity, Text string
}

type latestView struct {
	Source, Time, Message string
	Fields                [][2]string
}

func (s *Server) gatewayPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	rg, ok := fleet.ParseRange(r.URL.Query().Get("range"))
	if !ok {
		rg = fleet.Hour
	}
	d, found := s.store.Detail(id)
	if !found {
		w.WriteHeader(http.StatusNotFound)
		s.render(w, "notfound.html", struct{ ID string }{clean(id)})
		return
	}
	now := s.now()
	series, err := s.store.Series(id, rg)
	v := gatewayView{Now: now.UTC().Format("2006-01-02 15:04:05 UTC"), ID: clean(id), Level: d.Row.Level.String(),
		Host: clean(d.Row.Host), Site: clean(d.Row.Site.String()), Range: rg.String()}
	if err != nil {
		s.log.Warn("fleet page: series", "gateway", id, "err", err)
		v.Notes = append(v.Notes, "Some series could not be read: "+clean(err.Error()))
	}
	for _, reason := range d.Row.Reasons {
		v.Reasons = append(v.Reasons, clean(reason))
	}
	for _, name := range []string{"hour", "day", "week"} {
		v.Ranges = append(v.Ranges, rangeLink{Name: name, Link: gatewayLink(id) + "&range=" + name, Active: name == rg.String()})
	}
	v.Summary = summary(&d, now)
	if s.seals != nil {
		if line, failed, ok := s.seals(id); ok {
			v.Summary = append(v.Summary, [2]string{"Seals", clean(line)})
			if failed {
				v.Reasons = append(v.Reasons, "tamper-evident log fails (see Seals)")
			}
		}
	}
	start, end := now.Add(-rg.Duration()), now
	for _, pd := range plotDefs {
		var ps []fleet.Points
		var labels []string
		for _, p := range series {
			if pd.prefix[len(pd.prefix)-1] == ':' {
				name, ok := strings.CutPrefix(p.Name, pd.prefix)
				if !ok {
					continue
				}
				labels = append(labels, clean(name))
			} else if p.Name != pd.prefix {
				continue
			} else {
				labels = append(labels, pd.title)
			}
			ps = append(ps, p)
		}
		v.Plots = append(v.Plots, plot(pd.id, pd.title, pd.unit, ps, labels, pd.scale, start, end, pd.format))
	}
	v.Strip = strip(d.Events, start, end)
	for i := len(d.Events) - 1; i >= 0; i-- {
		e := d.Events[i]
		t := time.Unix(0, e.Time)
		if t.Before(start) {
			continue
		}
		v.Events = append(v.Events, eventView{Time: t.UTC().Format("2006-01-02 15:04:05"), Type: e.Type, Severity: e.Severity, Text: clean(e.Text)})
	}
	for _, l := range d.Latest {
		lv := latestView{Source: clean(l.Source), Time: time.Unix(0, l.Time).UTC().Format("2006-01-02 15:04:05"), Message: clean(l.Message)}
		for _, f := range l.Fields {
			lv.Fields = append(lv.Fields, [2]string{clean(f[0]), clean(f[1])})
		}
		v.Latest = append(v.Latest, lv)
	}
	if dr := d.Dropped; dr.Series+dr.Links+dr.Buses+dr.Latest > 0 {
		v.Notes = append(v.Notes, "This gateway sent more than the store keeps: "+dropped(dr))
	}
	v.Legend = s.legend()
	s.render(w, "gateway.html", v)
}

func dropped(d fleet.Dropped) string {
	var parts []string
	add := func(n uint64, what string) {
		if n > 0 {
			parts = append(parts, si(float64(n), "")+" "+what)
		}
	}
	add(d.Series, "samples of series past the cap")
	add(d.Links, "records of endpoints past the cap")
	add(d.Buses, "records of buses past the cap")
	add(d.Latest, "records of telemetry sources past the cap")
	return strings.Join(parts, ", ")
}

// summary is the gateway's row as a list, plus each endpoint and bus.
func summary(d *fleet.Detail, now time.Time) [][2]string {
	rv := rowOf(&d.Row, now)
	out := [][2]string{
		{"Health", rv.Level},
		{"Last record", orDash(rv.LastRecord, rv.LastRecordAt)},
		{"Last ack", orDash(rv.LastAck, rv.LastAckAt)},
		{"Backlog", orDash(rv.Backlog, "records, "+rv.Bytes+", oldest "+rv.Oldest)},
		{"Clock", orDash(rv.Clock, rv.ClockTitle+", bound "+rv.Bound)},
		{"Alerts", rv.Alerts + " in the window"},
		{"Configuration", orDash(rv.Config, rv.ConfigResult)},
		{"Tamper", orDash(rv.Tamper, "")},
		{"Records taken", fmtCount(int64(d.Records))},
	}
	eps := make([]string, 0, len(d.Links))
	for ep := range d.Links {
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	for _, ep := range eps {
		l := d.Links[ep]
		val := clean(l.State) + ", RTT " + si(l.RTT, "ms") + ", loss " + pct(l.Loss) + ", goodput " + si(l.Goodput, "bit/s") +
			", " + si(l.Outage, "s") + " down in all, " + fmtCount(int64(l.Reconnects)) + " reconnects"
		if l.LastError != "" {
			val += "; last error: " + clean(l.LastError)
		}
		out = append(out, [2]string{"Endpoint " + clean(ep), val})
	}
	buses := make([]string, 0, len(d.Buses))
	for b := range d.Buses {
		buses = append(buses, b)
	}
	sort.Strings(buses)
	for _, b := range buses {
		bs := d.Buses[b]
		out = append(out, [2]string{"Bus " + clean(b), clean(bs.State) + ", frame errors " + pct(bs.FER) + " of the last minute"})
	}
	return out
}

func orDash(v, more string) string {
	if v == "" {
		return "–"
	}
	if more == "" {
		return v
	}
	return v + " (" + more + ")"
}
