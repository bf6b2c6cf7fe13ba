package ui

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weirgw/weir/uplink/collector/fleet"
)

// A column of the fleet table: its sort key, and how two rows compare by
// it (known says whether a row has a value; rows without one go last).
type column struct {
	key, label, title string
	num               func(r *fleet.Row, now time.Time) (float64, bool)
	text              func(r *fleet.Row) (string, bool)
}

func ageOf(t time.Time, now time.Time) (float64, bool) {
	if t.IsZero() {
		return 0, false
	}
	return now.Sub(t).Seconds(), true
}

var columns = []column{
	{key: "health", label: "Health", title: "worst first: silent, critical, warning, unknown, ok"},
	{key: "id", label: "Gateway", text: func(r *fleet.Row) (string, bool) { return r.ID, true }},
	{key: "site", label: "Site · host", text: func(r *fleet.Row) (string, bool) {
		s := r.Site.String()
		if r.Host != "" {
			s += " " + r.Host
		}
		return s, s != ""
	}},
	{key: "record", label: "Last record", title: "age of the newest record's time (the gateway's clock)",
		num: func(r *fleet.Row, now time.Time) (float64, bool) { return ageOf(r.LastRecord, now) }},
	{key: "ack", label: "Last ack", title: "since the collector last wrote and acknowledged a batch",
		num: func(r *fleet.Row, now time.Time) (float64, bool) { return ageOf(r.LastAck, now) }},
	{key: "backlog", label: "Backlog", title: "records not yet acknowledged, at the last report",
		num: func(r *fleet.Row, _ time.Time) (float64, bool) { return float64(r.BacklogRecords), r.BacklogKnown }},
	{key: "bytes", label: "Bytes", num: func(r *fleet.Row, _ time.Time) (float64, bool) { return float64(r.BacklogBytes), r.BacklogKnown }},
	{key: "oldest", label: "Oldest", title: "how long the oldest unacknowledged record has waited",
		num: func(r *fleet.Row, _ time.Time) (float64, bool) { return r.BacklogAge, r.BacklogKnown }},
	{key: "link", label: "Link", text: func(r *fleet.Row) (string, bool) { return r.Link.State, r.Link.Known }},
	{key: "rtt", label: "RTT", num: func(r *fleet.Row, _ time.Time) (float64, bool) { return r.Link.RTTms, r.Link.Known }},
	{key: "loss", label: "Loss", title: "over the last minute",
		num: func(r *fleet.Row, _ time.Time) (float64, bool) { return r.Link.Loss, r.Link.Known }},
	{key: "goodput", label: "Goodput", num: func(r *fleet.Row, _ time.Time) (float64, bool) { return r.Link.Goodput, r.Link.Known }},
	{key: "clock", label: "Clock", text: func(r *fleet.Row) (string, bool) { return r.ClockState, r.ClockState != "" }},
	{key: "bound", label: "Bound", title: "the newest record's time error bound",
		num: func(r *fleet.Row, _ time.Time) (float64, bool) { return float64(r.ClockBound), r.ClockBound >= 0 }},
	{key: "fer", label: "Worst bus", title: "the highest frame-error rate over the last minute among its Modbus buses",
		num: func(r *fleet.Row, _ time.Time) (float64, bool) { return r.BusFER, r.BusKnown }},
	{key: "alerts", label: "Alerts", title: "alert records within the alert window",
		num: func(r *fleet.Row, _ time.Time) (float64, bool) { return float64(r.Alerts), true }},
	{key: "config", label: "Config", title: "the applied configuration version and its result",
		text: func(r *fleet.Row) (string, bool) {
			return r.ConfigVersion + " " + r.ConfigResult, r.ConfigVersion != ""
		}},
	{key: "tamper", label: "Tamper", text: func(r *fleet.Row) (string, bool) { return r.Tamper, r.Tamper != "" }},
}

func columnOf(key string) (column, bool) {
	for _, c := range columns {
		if c.key == key {
			return c, true
		}
	}
	return column{}, false
}

// sortRows orders rows by column c; desc reverses the values, never the
// place of rows without one (last), and ties fall back to worst first.
func sortRows(rows []fleet.Row, c column, desc bool, now time.Time) {
	slices.SortStableFunc(rows, func(a, b fleet.Row) int {
		d := 0
		switch {
		case c.num != nil:
			va, oka := c.num(&a, now)
			vb, okb := c.num(&b, now)
			if oka != okb {
				if oka {
					return -1
				}
				return 1
			}
			d = cmp.Compare(va, vb)
		case c.text != nil:
			va, oka := c.text(&a)
			vb, okb := c.text(&b)
			if oka != okb {
				if oka {
					return -1
				}
				return 1
			}
			d = strings.Compare(strings.ToLower(va), strings.ToLower(vb))
		}
		if desc {
			d = -d
		}
		if d != 0 {
			return d
		}
		if fleet.Worse(&a, &b) {
			return -1
		}
		if fleet.Worse(&b, &a) {
			return 1
		}
		return 0
	})
}

type fleetView struct {
	Now      string
	Refresh  int
	Q        string
	Level    string
	Sort     string
	Dir      string
	Per      int
	Counts   []levelCount
	Total    int
	Matched  int
	From, To int
	Page     int
	Pages    int
	Prev     string
	Next     string
	Heads    []headView
	Rows     []rowView
	Notes    []string
	Legend   legend
}

type legend struct {
	Loss, RTT, Backlog, BacklogCrit, Stale, Window string
}

type levelCount struct {
	Level  string
	N      int
	Link   string
	Active bool
}

type headView struct {
	Label, Title, Link, Arrow string
}

type rowView struct {
	ID, Link, Level, Why, Reasons       string
	Site, Host                          string
	LastRecord, LastRecordAt            string
	LastAck, LastAckAt                  string
	Backlog, Bytes, Oldest, OldestClass string
	LinkState, LinkTitle, LinkClass     string
	RTT, Loss, LossClass, Goodput       string
	Clock, ClockTitle, ClockClass       string
	Bound                               string
	Bus, FER, FERClass                  string
	Alerts, AlertTitle, AlertClass      string
	Config, ConfigResult, ConfigClass   string
	Tamper, TamperClass                 string
}

// fleetQuery is the fleet page's request, checked.
type fleetQuery struct {
	q, level, sort string
	desc           bool
	page, per      int
	refresh        int
}

func (s *Server) parseFleetQuery(v url.Values) fleetQuery {
	fq := fleetQuery{q: strings.TrimSpace(v.Get("q")), level: v.Get("level"), sort: v.Get("sort"), page: 1, per: s.cfg.PageSize}
	if len(fq.q) > 200 {
		fq.q = fq.q[:200]
	}
	if _, ok := fleet.ParseLevel(fq.level); !ok && fq.level != "problems" {
		fq.level = ""
	}
	if _, ok := columnOf(fq.sort); !ok {
		fq.sort = "health"
	}
	fq.desc = v.Get("dir") == "desc"
	if n, err := strconv.Atoi(v.Get("page")); err == nil && n > 0 && n < 1e6 {
		fq.page = n
	}
	if n, err := strconv.Atoi(v.Get("per")); err == nil && n > 0 {
		fq.per = min(n, MaxPageSize)
	}
	if n, err := strconv.Atoi(v.Get("refresh")); err == nil && n >= 5 {
		fq.refresh = min(n, 3600)
	}
	return fq
}

func (fq fleetQuery) link(change func(*fleetQuery)) string {
	c := fq
	change(&c)
	v := url.Values{}
	if c.q != "" {
		v.Set("q", c.q)
	}
	if c.level != "" {
		v.Set("level", c.level)
	}
	if c.sort != "health" {
		v.Set("sort", c.sort)
	}
	if c.desc {
		v.Set("dir", "desc")
	}
	if c.page > 1 {
		v.Set("page", strconv.Itoa(c.page))
	}
	if c.per != 0 {
		v.Set("per", strconv.Itoa(c.per))
	}
	if c.refresh > 0 {
		v.Set("refresh", strconv.Itoa(c.refresh))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

func (s *Server) fleetPage(w http.ResponseWriter, r *http.Request) {
	fq := s.parseFleetQuery(r.URL.Query())
	now := s.now()
	all := s.store.Rows()
	v := fleetView{Now: now.UTC().Format("2006-01-02 15:04:05 UTC"), Refresh: fq.refresh, Q: fq.q, Level: fq.level,
		Sort: fq.sort, Per: fq.per, Total: len(all)}
	if fq.desc {
		v.Dir = "desc"
	}
	counts := map[fleet.Level]int{}
	rows := all[:0:0]
	problems := 0
	for i := range all {
		rw := &all[i]
		counts[rw.Level]++
		if rw.Level != fleet.LevelOK {
			problems++
		}
		if !rw.Matches(fq.q) {
			continue
		}
		switch fq.level {
		case "":
		case "problems":
			if rw.Level == fleet.LevelOK {
				continue
			}
		default:
			if rw.Level.String() != fq.level {
				continue
			}
		}
		rows = append(rows, *rw)
	}
	v.Counts = append(v.Counts, levelCount{Level: "all", N: len(all), Active: fq.level == "",
		Link: fq.link(func(c *fleetQuery) { c.level, c.page = "", 1 })})
	v.Counts = append(v.Counts, levelCount{Level: "problems", N: problems, Active: fq.level == "problems",
		Link: fq.link(func(c *fleetQuery) { c.level, c.page = "problems", 1 })})
	for _, l := range []fleet.Level{fleet.LevelSilent, fleet.LevelCritical, fleet.LevelWarning, fleet.LevelUnknown, fleet.LevelOK} {
		name := l.String()
		v.Counts = append(v.Counts, levelCount{Level: name, N: counts[l], Active: fq.level == name,
			Link: fq.link(func(c *fleetQuery) { c.level, c.page = name, 1 })})
	}
	col, _ := columnOf(fq.sort)
	if col.key == "health" {
		slices.SortFunc(rows, func(a, b fleet.Row) int {
			switch {
			case fleet.Worse(&a, &b):
				return -1
			case fleet.Worse(&b, &a):
				return 1
			}
			return 0
		})
		if fq.desc {
			slices.Reverse(rows)
		}
	} else {
		sortRows(rows, col, fq.desc, now)
	}
	for _, c := range columns {
		h := headView{Label: c.label, Title: c.title}
		desc := false
		if c.key == fq.sort {
			desc = !fq.desc
			h.Arrow = "▲"
			if fq.desc {
				h.Arrow = "▼"
			}
		} else if c.num != nil && c.key != "record" && c.key != "ack" && c.key != "oldest" {
			desc = true // the largest figure is the one to look at first
		} else if c.key == "record" || c.key == "ack" || c.key == "oldest" {
			desc = true // the oldest first
		}
		key := c.key
		h.Link = fq.link(func(q *fleetQuery) { q.sort, q.desc, q.page = key, desc, 1 })
		v.Heads = append(v.Heads, h)
	}
	v.Matched = len(rows)
	v.Pages = max(1, (len(rows)+fq.per-1)/fq.per)
	v.Page = min(fq.page, v.Pages)
	start := (v.Page - 1) * fq.per
	end := min(start+fq.per, len(rows))
	if v.Page > 1 {
		v.Prev = fq.link(func(c *fleetQuery) { c.page = v.Page - 1 })
	}
	if v.Page < v.Pages {
		v.Next = fq.link(func(c *fleetQuery) { c.page = v.Page + 1 })
	}
	v.From, v.To = start+1, end
	if len(rows) == 0 {
		v.From = 0
	}
	for i := start; i < end; i++ {
		v.Rows = append(v.Rows, rowOf(&rows[i], now))
	}
	st := s.store.Stats()
	if st.Replay.Running {
		pctDone := 100.0
		if st.Replay.Size > 0 {
			pctDone = 100 * float64(st.Replay.Done) / float64(st.Replay.Size)
		}
		v.Notes = append(v.Notes, fmt.Sprintf("Rebuilding from the sink: %.0f%% (%d records so far); figures fill in as it goes.", pctDone, st.Replay.Records))
	}
	if st.Replay.Err != "" {
		v.Notes = append(v.Notes, "The rebuild from the sink stopped: "+clean(st.Replay.Err))
	}
	if st.Refused > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d records of gateways past --ui-max-gateways were not taken.", st.Refused))
	}
	if st.FlushErr != "" {
		v.Notes = append(v.Notes, "The store could not be written: "+clean(st.FlushErr))
	}
	v.Legend = s.legend()
	s.render(w, "fleet.html", v)
}

func (s *Server) legend() legend {
	st := s.store.Stats()
	return legend{Loss: pct(fleet.WarnLoss), RTT: si(fleet.WarnRTTms, "ms"), Backlog: fmtAge(fleet.WarnBacklogAge),
		BacklogCrit: fmtAge(fleet.CritBacklogAge), Stale: fmtAge(st.Stale), Window: fmtAge(st.Window)}
}

func gatewayLink(id string) string { return "/gateway?id=" + url.QueryEscape(id) }

func rowOf(r *fleet.Row, now time.Time) rowView {
	v := rowView{ID: clean(r.ID), Link: gatewayLink(r.ID), Level: r.Level.String(), Site: clean(r.Site.String()), Host: clean(r.Host)}
	if len(r.Reasons) > 0 {
		v.Why = clean(r.Reasons[0])
		v.Reasons = clean(strings.Join(r.Reasons, "; "))
	}
	if !r.LastRecord.IsZero() {
		v.LastRecord, v.LastRecordAt = fmtAge(now.Sub(r.LastRecord)), r.LastRecord.UTC().Format(time.RFC3339)
	}
	if !r.LastAck.IsZero() {
		v.LastAck, v.LastAckAt = fmtAge(now.Sub(r.LastAck)), r.LastAck.UTC().Format(time.RFC3339)
	}
	if r.BacklogKnown {
		v.Backlog, v.Bytes = fmtCount(r.BacklogRecords), fmtBytes(r.BacklogBytes)
		age := time.Duration(r.BacklogAge * float64(time.Second))
		v.Oldest = fmtAge(age)
		switch {
		case age > fleet.CritBacklogAge:
			v.OldestClass = "bad"
		case age > fleet.WarnBacklogAge:
			v.OldestClass = "warn"
		}
	}
	if l := r.Link; l.Known {
		v.LinkState, v.LinkTitle = clean(l.State), clean(l.Endpoint+" ("+l.Transport+")")
		if l.State != "connected" {
			v.LinkClass = "warn"
		}
		v.RTT, v.Loss, v.Goodput = si(l.RTTms, "ms"), pct(l.Loss), si(l.Goodput, "bit/s")
		if l.Loss > fleet.WarnLoss {
			v.LossClass = "warn"
		}
	}
	if r.ClockState != "" {
		v.Clock, v.ClockTitle = clean(r.ClockState), clean(r.ClockSource)
		switch r.ClockState {
		case "locked":
			v.ClockClass = "good"
		case "holdover":
			v.ClockClass = "warn"
		}
		v.Bound = "unknown"
		if r.ClockBound >= 0 {
			v.Bound = fmtNS(float64(r.ClockBound))
		}
	}
	if r.BusKnown {
		v.Bus, v.FER = clean(r.Bus), pct(r.BusFER)
		if r.BusFER > 0 {
			v.FERClass = "warn"
		}
	}
	v.Alerts = fmtCount(int64(r.Alerts))
	if r.Alerts > 0 {
		v.AlertTitle, v.AlertClass = clean(r.LastAlert), "bad"
	}
	v.Config, v.ConfigResult = clean(r.ConfigVersion), clean(r.ConfigResult)
	if r.ConfigResult != "" && r.ConfigResult != "applied" && r.ConfigResult != "ok" && r.ConfigResult != "unchanged" {
		v.ConfigClass = "warn"
	}
	v.Tamper = clean(r.Tamper)
	if r.Tamper == "open" {
		v.TamperClass = "bad"
	}
	return v
}
