package fleet

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink/collector"
)

// The records below have the shape the gateway gives them
// (gateway/telemetry.go, gateway/link.go, gateway/clockwatch.go,
// sensors/modbus/poll/telemetry.go, gateway/board.go);
// cmd/weir-collector's TestFleetFromRealGateway holds the store to the
// real ones.

var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func q(state event.ClockState, bound int64) event.Quality {
	return event.Quality{Source: event.TimePTP, State: state, ErrorBound: bound}
}

func spoolEv(at time.Time, records int64, oldest float64) *event.Event {
	return &event.Event{Time: at.UnixNano(), Quality: q(event.ClockLocked, 800), Source: "weir:spool", Kind: event.KindTelemetry,
		Severity: event.SevInfo, Message: "spool", Fields: []event.Field{event.Int("backlog_records", records),
			event.Int("backlog_bytes", records*200), event.Bool("intake_held", false), event.Float("oldest_unacked_seconds", oldest)}}
}

func linkEv(at time.Time, ep, state string, rtt, loss, goodput, outage float64, reconnects uint64) *event.Event {
	return &event.Event{Time: at.UnixNano(), Quality: q(event.ClockLocked, 800), Source: "weir:uplink", Kind: event.KindTelemetry,
		Severity: event.SevInfo, Message: "link " + ep + " " + state, Fields: []event.Field{
			event.Str("endpoint", ep), event.Str("transport", "tls"), event.Str("state", state), event.Bool("active", state == "connected"),
			event.Float("srtt_ms", rtt), event.Float("loss_1m", loss), event.Float("goodput_bps", goodput),
			event.Uint("reconnects", reconnects), event.Float("outage_seconds", outage)}}
}

func clockEv(at time.Time, from, to string, offset int64) *event.Event {
	return &event.Event{Time: at.UnixNano(), Quality: q(event.ClockLocked, 500), Source: "weir:clock", Kind: event.KindTelemetry,
		Severity: event.SevInfo, Message: "clock " + from + " → " + to, Fields: []event.Field{event.Str("from", from), event.Str("to", to),
			event.Str("mode", "builtin"), event.Int("error_bound_ns", 500), event.Int("offset_ns", offset)}}
}

func busEv(at time.Time, bus string, fer float64) *event.Event {
	return &event.Event{Time: at.UnixNano(), Quality: q(event.ClockLocked, 800), Source: "modbus:" + bus, Kind: event.KindTelemetry,
		Severity: event.SevInfo, Message: "modbus bus", Fields: []event.Field{event.Str("bus", bus), event.Str("line", "/dev/ttyS1"),
			event.Str("state", "up"), event.Uint("crc_errors", 3), event.Float("frame_error_rate_1m", fer), event.Float("frame_error_rate_15m", fer)}}
}

func tamperEv(at time.Time, state string) *event.Event {
	return &event.Event{Time: at.UnixNano(), Quality: q(event.ClockLocked, 800), Source: "weir:board", Kind: event.KindAlert,
		Severity: event.SevCritical, Priority: event.PriorityCritical, Message: "tamper: enclosure " + state,
		Fields: []event.Field{event.Str("state", state)}}
}

func reading(at time.Time) *event.Event {
	return &event.Event{Time: at.UnixNano(), Quality: q(event.ClockLocked, 1200), Source: "modbus:flow", Kind: event.KindReading,
		Severity: event.SevInfo, Message: "flow", Fields: []event.Field{event.Float("flow", 3.2)}}
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func openStore(t *testing.T, dir string, c *clock) *Store {
	t.Helper()
	o := DefaultOptions()
	o.Dir, o.Now = dir, c.Now
	s, err := Open(o)
	require.NoError(t, err)
	return s
}

func feed(s *Store, id string, at time.Time, evs ...*event.Event) {
	s.Observe(id, at, evs, Position{Offset: -1})
}

func rowOf(t *testing.T, s *Store, id string) Row {
	t.Helper()
	for _, r := range s.Rows() {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no row for %q", id)
	return Row{}
}

func TestHealthRules(t *testing.T) {
	tests := []struct {
		name    string
		evs     func(at time.Time) []*event.Event
		ackAgo  time.Duration
		level   Level
		reasons []string
	}{
		{name: "healthy", evs: func(at time.Time) []*event.Event {
			return []*event.Event{spoolEv(at, 3, 0.2), linkEv(at, "tls://c:7443", "connected", 12, 0, 2e6, 0, 0)}
		}, level: LevelOK},
		{name: "no telemetry yet", evs: func(at time.Time) []*event.Event { return []*event.Event{reading(at)} }, level: LevelUnknown,
			reasons: []string{"no telemetry yet"}},
		{name: "lossy link", evs: func(at time.Time) []*event.Event {
			return []*event.Event{spoolEv(at, 3, 0.2), linkEv(at, "tls://c:7443", "connected", 180, 0.08, 2e5, 0, 0)}
		}, level: LevelWarning, reasons: []string{"loss 8.0% on tls://c:7443"}},
		{name: "emi on a bus", evs: func(at time.Time) []*event.Event {
			return []*event.Event{spoolEv(at, 3, 0.2), busEv(at, "rs485-1", 0), busEv(at.Add(time.Second), "rs485-1", 0.05)}
		}, level: LevelWarning, reasons: []string{"frame errors on bus rs485-1 (5.0%)"}},
		{name: "backlog behind", evs: func(at time.Time) []*event.Event { return []*event.Event{spoolEv(at, 90000, 900)} },
			level: LevelWarning, reasons: []string{"backlog 15m behind"}},
		{name: "backlog far behind", evs: func(at time.Time) []*event.Event { return []*event.Event{spoolEv(at, 900000, 7300)} },
			level: LevelCritical, reasons: []string{"backlog 2h behind"}},
		{name: "tamper open", evs: func(at time.Time) []*event.Event {
			return []*event.Event{spoolEv(at, 3, 0.2), tamperEv(at, "open")}
		}, level: LevelCritical, reasons: []string{"enclosure open", "an alert in the last 60m: tamper: enclosure open"}},
		{name: "silent", evs: func(at time.Time) []*event.Event { return []*event.Event{spoolEv(at, 3, 0.2)} }, ackAgo: 10 * time.Minute,
			level: LevelSilent, reasons: []string{"silent for 10m"}},
		{name: "holdover", evs: func(at time.Time) []*event.Event {
			e := spoolEv(at, 3, 0.2)
			e.Quality.State = event.ClockHoldover
			return []*event.Event{e}
		}, level: LevelWarning, reasons: []string{"clock in holdover"}},
		{name: "config refused", evs: func(at time.Time) []*event.Event {
			e := spoolEv(at, 3, 0.2)
			e.Fields = append(e.Fields, event.Str("config_version", "v42"), event.Str("config_result", "rejected"))
			return []*event.Event{e}
		}, level: LevelWarning, reasons: []string{"configuration v42 rejected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{now: t0}
			s := openStore(t, t.TempDir(), c)
			at := t0.Add(-tt.ackAgo - time.Second)
			feed(s, "gw", at, tt.evs(at)...)
			r := rowOf(t, s, "gw")
			assert.Equal(t, tt.level, r.Level, "reasons %q", r.Reasons)
			assert.Equal(t, tt.reasons, r.Reasons)
		})
	}
}

func TestRowsOrderWorstFirst(t *testing.T) {
	c := &clock{now: t0}
	s := openStore(t, t.TempDir(), c)
	at := t0.Add(-time.Second)
	feed(s, "ok-b", at, spoolEv(at, 1, 0), linkEv(at, "e", "connected", 10, 0, 1e6, 0, 0))
	feed(s, "ok-a", at, spoolEv(at, 1, 0), linkEv(at, "e", "connected", 10, 0, 1e6, 0, 0))
	feed(s, "lossy-5", at, spoolEv(at, 1, 0), linkEv(at, "e", "connected", 10, 0.05, 1e6, 0, 0))
	feed(s, "lossy-15", at, spoolEv(at, 1, 0), linkEv(at, "e", "connected", 10, 0.15, 1e6, 0, 0))
	feed(s, "silent", at.Add(-time.Hour), spoolEv(at.Add(-time.Hour), 1, 0))
	feed(s, "tamper", at, spoolEv(at, 1, 0), tamperEv(at, "open"))
	rows := s.Rows()
	sort.Slice(rows, func(i, j int) bool { return Worse(&rows[i], &rows[j]) })
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	assert.Equal(t, []string{"silent", "tamper", "lossy-15", "lossy-5", "ok-a", "ok-b"}, ids)
}

func TestEventsStrip(t *testing.T) {
	c := &clock{now: t0}
	s := openStore(t, t.TempDir(), c)
	ep := "tls://collector:7443"
	at := t0.Add(-30 * time.Minute)
	feed(s, "gw", at, linkEv(at, ep, "connected", 10, 0, 1e6, 0, 1), clockEv(at, "start", "locked", 40), busEv(at, "b1", 0))
	at2 := at.Add(time.Minute)
	cert := linkEv(at2, ep, "backoff", 10, 0, 0, 42, 3)
	cert.Fields = append(cert.Fields, event.Str("cert_warning", "own certificate expires in 12 days (2026-03-26)"),
		event.Str("last_error", "dial tcp: connection refused"))
	feed(s, "gw", at2, cert, busEv(at2, "b1", 0.1), tamperEv(at2, "open"))
	// The clock's periodic report: plotted, never an event of its own.
	feed(s, "gw", at2, &event.Event{Time: at2.UnixNano(), Quality: q(event.ClockLocked, 500), Source: "weir:clock",
		Kind: event.KindTelemetry, Severity: event.SevInfo, Message: "clock locked", Fields: []event.Field{
			event.Str("state", "locked"), event.Str("mode", "builtin"), event.Int("error_bound_ns", 500), event.Int("offset_ns", 120)}})
	cfg := spoolEv(at2, 1, 0)
	cfg.Fields = append(cfg.Fields, event.Str("config_version", "v7"), event.Str("config_result", "applied"))
	feed(s, "gw", at2, cfg)
	// Resent (a rebuild, or a replay of the same batch): no second mark.
	feed(s, "gw", at2, cert)
	// Silent for ten minutes, then back.
	at3 := at2.Add(10 * time.Minute)
	feed(s, "gw", at3, spoolEv(at3, 1, 0))
	d, ok := s.Detail("gw")
	require.True(t, ok)
	var got []string
	for _, e := range d.Events {
		got = append(got, e.Type+": "+e.Text)
	}
	assert.ElementsMatch(t, []string{
		"clock: clock start → locked",
		"outage: tls://collector:7443 down 42s since 11:30:00: dial tcp: connection refused",
		"reconnect: tls://collector:7443 reconnected 2 times since 11:30:00",
		"outage: tls://collector:7443 connected → backoff",
		"certificate: own certificate expires in 12 days (2026-03-26)",
		"bus: bus b1: frame errors, 10.0% of frames in the last minute",
		"tamper: tamper: enclosure open",
		"config: configuration v7: applied",
		"outage: back after 10m without a batch (the collector's clock)",
	}, got)
	r := d.Row
	assert.Equal(t, "open", r.Tamper)
	assert.Equal(t, "v7", r.ConfigVersion)
	assert.Equal(t, "applied", r.ConfigResult)
	assert.Equal(t, 1, r.Alerts)
}

func TestSeriesTiersAndBounds(t *testing.T) {
	c := &clock{now: t0}
	dir := t.TempDir()
	s := openStore(t, dir, c)
	// Two days of link reports every minute, RTT = minutes since start.
	start := t0.Add(-48 * time.Hour)
	for m := 0; m < 48*60; m++ {
		at := start.Add(time.Duration(m) * time.Minute)
		feed(s, "gw", at, linkEv(at, "e", "connected", float64(m), 0, 1e6, 0, 0), reading(at), reading(at.Add(time.Second)))
	}
	// A late report (a backlog delivered after an outage) lands in its
	// own bucket and merges by the larger value.
	late := t0.Add(-30 * time.Minute)
	feed(s, "gw", t0, linkEv(late, "e", "connected", 1e6, 0, 1e6, 0, 0))
	// Far in the past and far ahead of the collector: not plotted.
	feed(s, "gw", t0, linkEv(t0.Add(-8*24*time.Hour), "e", "connected", 5, 0, 1, 0, 0), linkEv(t0.Add(time.Hour), "e", "connected", 5, 0, 1, 0, 0))

	byName := func(r Range) map[string]Points {
		ps, err := s.Series("gw", r)
		require.NoError(t, err)
		m := map[string]Points{}
		for _, p := range ps {
			m[p.Name] = p
		}
		return m
	}
	hour := byName(Hour)
	rtt := hour["link.rtt_ms:e"]
	require.Len(t, rtt.Values, 360)
	assert.Equal(t, 10*time.Second, rtt.Step)
	var n int
	for k, v := range rtt.Values {
		if math.IsNaN(v) {
			continue
		}
		n++
		at := rtt.Start.Add(time.Duration(k) * rtt.Step)
		if at.Equal(late.Truncate(10 * time.Second)) {
			assert.Equal(t, 1e6, v)
		} else {
			assert.Equal(t, float64(at.Sub(start)/time.Minute), v, "at %s", at)
		}
	}
	// The hour's first bucket starts 59m50s back: 59 reports are in it.
	assert.Equal(t, 59, n, "a point a minute over the hour")
	// Readings: two a minute, each bucket holding one, as a rate per second.
	rate := hour["rate:reading"]
	var sum float64
	for _, v := range rate.Values {
		if !math.IsNaN(v) {
			sum += v * 10
		}
	}
	assert.InDelta(t, 118, sum, 0.01)

	wk := byName(Week)["link.rtt_ms:e"]
	require.Len(t, wk.Values, 2016)
	assert.Equal(t, 5*time.Minute, wk.Step)
	var pts int
	for k, v := range wk.Values {
		if math.IsNaN(v) {
			continue
		}
		pts++
		at := wk.Start.Add(time.Duration(k) * wk.Step)
		if at.Before(start) {
			t.Fatalf("point at %s before the first report", at)
		}
	}
	assert.Equal(t, 48*12, pts)

	require.NoError(t, s.Close())
	fi, err := os.Stat(filepath.Join(dir, "gw-"+"6777"+".series"))
	require.NoError(t, err)
	assert.LessOrEqual(t, fi.Size(), int64(seriesFileMax))

	// Reopened, the series read the same.
	s2 := openStore(t, dir, c)
	assert.True(t, sameValues(wk.Values, byNameOf(t, s2, Week)["link.rtt_ms:e"].Values))
	assert.True(t, sameValues(rtt.Values, byNameOf(t, s2, Hour)["link.rtt_ms:e"].Values))
}

func byNameOf(t *testing.T, s *Store, r Range) map[string]Points {
	ps, err := s.Series("gw", r)
	require.NoError(t, err)
	m := map[string]Points{}
	for _, p := range ps {
		m[p.Name] = p
	}
	return m
}

func TestHostileGatewayIsBounded(t *testing.T) {
	c := &clock{now: t0}
	s := openStore(t, t.TempDir(), c)
	id := `<script>alert("id")</script>`
	long := strings.Repeat("<img src=x onerror=alert(1)>", 100)
	var evs []*event.Event
	for i := range 200 {
		at := t0.Add(-time.Duration(i) * time.Second)
		b := busEv(at, fmt.Sprintf("%03d", i)+long, 0.5)
		l := linkEv(at, fmt.Sprintf("%03d", i)+long, "connected", 1, 0.5, 1, 0, 0)
		tel := &event.Event{Time: at.UnixNano(), Source: fmt.Sprintf("src-%03d", i), Kind: event.KindTelemetry, Message: long}
		for j := range 300 {
			tel.Fields = append(tel.Fields, event.Str(strings.Repeat("k", j), long))
		}
		al := &event.Event{Time: at.UnixNano(), Source: "x", Kind: event.KindAlert, Severity: event.SevAlert, Message: long, Host: long}
		evs = append(evs, b, l, tel, al)
	}
	feed(s, id, t0, evs...)
	d, ok := s.Detail(id)
	require.True(t, ok)
	assert.LessOrEqual(t, len(d.Events), maxEvents)
	assert.LessOrEqual(t, len(d.Links), maxLinks)
	assert.LessOrEqual(t, len(d.Buses), maxBuses)
	assert.LessOrEqual(t, len(d.Latest), maxLatest)
	size := 0
	for _, l := range d.Latest {
		for _, f := range l.Fields {
			size += len(f[0]) + len(f[1])
		}
	}
	assert.LessOrEqual(t, size, maxLatestBytes+maxLatest*(maxKey+maxText))
	for _, e := range d.Events {
		assert.LessOrEqual(t, len(e.Text), maxText)
	}
	assert.LessOrEqual(t, len(d.Row.Host), maxText)
	assert.NotZero(t, d.Dropped.Buses)
	assert.NotZero(t, d.Dropped.Links)
	assert.NotZero(t, d.Dropped.Series)
	ps, err := s.Series(id, Hour)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(ps), MaxSeries)

	// Past MaxGateways, new gateways are counted, not kept.
	o := DefaultOptions()
	o.Dir, o.Now, o.MaxGateways = t.TempDir(), c.Now, 2
	small, err := Open(o)
	require.NoError(t, err)
	for _, id := range []string{"a", "b", "c"} {
		feed(small, id, t0, spoolEv(t0, 1, 0))
	}
	assert.Len(t, small.Rows(), 2)
	assert.Equal(t, uint64(1), small.Stats().Refused)
	feed(small, strings.Repeat("x", MaxIDLen+1), t0, spoolEv(t0, 1, 0))
	assert.Equal(t, uint64(2), small.Stats().Refused)
}

// The store is rebuilt from the sink: a store that saw nothing, replaying
// a JSONL sink, ends where one that watched the writes ends.
func TestRebuildFromSink(t *testing.T) {
	c := &clock{now: t0}
	sinkPath := filepath.Join(t.TempDir(), "records.jsonl")
	sink, err := collector.OpenJSONL(sinkPath, nil)
	require.NoError(t, err)
	live := openStore(t, t.TempDir(), c)
	sink.Observe(live.Written("jsonl:" + sinkPath))
	seq := uint64(0)
	write := func(id string, evs ...*event.Event) {
		var entries []collector.Entry
		for _, ev := range evs {
			seq++
			ev.Seq, ev.Gateway = seq, id
			entries = append(entries, collector.Entry{Seq: seq, Event: ev})
		}
		_, err := sink.Write(id, entries)
		require.NoError(t, err)
	}
	for m := range 90 {
		at := t0.Add(time.Duration(m-90) * time.Minute)
		write("gw-1", spoolEv(at, int64(m), float64(m)), linkEv(at, "e", "connected", 20+float64(m%7), 0.01*float64(m%3), 1e6, 0, uint64(m/30)), reading(at))
		write("gw-2", busEv(at, "b", 0.01*float64(m%2)), reading(at))
	}
	_, err = sink.Write("gw-3", []collector.Entry{{Seq: 9999, Raw: []byte("junk"), DecodeErr: assert.AnError}})
	require.NoError(t, err)
	require.NoError(t, live.Flush())

	rebuilt := openStore(t, t.TempDir(), c)
	src := "jsonl:" + sinkPath
	from := rebuilt.NeedsRebuild(src)
	assert.Zero(t, from)
	require.NoError(t, rebuilt.ReplayJSONL(t.Context(), src, sinkPath, from, sink.Size()))
	assert.Equal(t, uint64(90*5+1), rebuilt.Stats().Replay.Records)

	for _, id := range []string{"gw-1", "gw-2"} {
		a, _ := live.Detail(id)
		b, _ := rebuilt.Detail(id)
		// The last ack is the collector's clock live, the newest record's
		// time when rebuilt.
		a.Row.LastAck, b.Row.LastAck = time.Time{}, time.Time{}
		assert.Equal(t, a.Row, b.Row, id)
		assert.Equal(t, a.Events, b.Events, id)
		pa, err := live.Series(id, Day)
		require.NoError(t, err)
		pb, err := rebuilt.Series(id, Day)
		require.NoError(t, err)
		require.Equal(t, len(pa), len(pb))
		for i := range pa {
			assert.Equal(t, pa[i].Name, pb[i].Name)
			assert.True(t, sameValues(pa[i].Values, pb[i].Values), pa[i].Name)
		}
	}
	require.NoError(t, rebuilt.Close())

	// Reopened, it resumes at the sink's end: nothing to take again.
	again := openStore(t, rebuilt.opt.Dir, c)
	assert.Equal(t, sink.Size(), again.NeedsRebuild(src))

	// A damaged state is dropped and the whole sink taken again, without
	// counting the other gateways' records twice.
	base := again.fileBase("gw-1") + ".state"
	require.NoError(t, os.WriteFile(base, []byte("{not json"), 0o640))
	hurt := openStore(t, rebuilt.opt.Dir, c)
	assert.Zero(t, hurt.NeedsRebuild(src))
	require.NoError(t, hurt.ReplayJSONL(t.Context(), src, sinkPath, 0, sink.Size()))
	for _, id := range []string{"gw-1", "gw-2"} {
		pa, _ := live.Series(id, Day)
		pb, _ := hurt.Series(id, Day)
		for i := range pa {
			assert.True(t, sameValues(pa[i].Values, pb[i].Values), pa[i].Name)
		}
	}
	require.NoError(t, sink.Close())
}

// sameValues compares series with NaN equal to NaN.
func sameValues(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

// heap is the live heap after a collection.
func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// hostileBatch is what a gateway sends to make the store keep the most:
// every source, endpoint, bus and event slot filled with the longest
// strings, and telemetry of many tiny fields.
func hostileBatch(at time.Time) []*event.Event {
	long := strings.Repeat("x", 4*maxText)
	var evs []*event.Event
	for i := range 40 {
		t := at.Add(-time.Duration(i) * time.Second)
		evs = append(evs, busEv(t, fmt.Sprintf("%03d", i)+long, 0.5), linkEv(t, fmt.Sprintf("%03d", i)+long, long, 1, 0.5, 1, 0, 0))
		tel := &event.Event{Time: t.UnixNano(), Source: fmt.Sprintf("src-%03d", i) + long, Kind: event.KindTelemetry, Message: long}
		for j := range 300 {
			tel.Fields = append(tel.Fields, event.Str(fmt.Sprint(j), "v"))
		}
		evs = append(evs, tel, &event.Event{Time: t.UnixNano(), Kind: event.KindAlert, Severity: event.SevAlert, Message: long + fmt.Sprint(i)})
	}
	return evs
}

// TestMemoryPerGateway measures what a gateway's state costs in memory:
// one sending what the real gateway sends for an hour, and one built to
// make the store keep the most (the bound docs/SECURITY.md states).
func TestMemoryPerGateway(t *testing.T) {
	c := &clock{now: t0}
	const n = 20
	measure := func(feedOne func(s *Store, id string)) float64 {
		s := openStore(t, t.TempDir(), c)
		before := heap()
		for i := range n {
			feedOne(s, fmt.Sprintf("gw-%03d", i))
		}
		after := heap()
		runtime.KeepAlive(s)
		return float64(after-before) / n
	}
	typical := measure(func(s *Store, id string) {
		for m := 60; m > 0; m-- {
			at := t0.Add(-time.Duration(m) * time.Minute)
			feed(s, id, at, spoolEv(at, 3, 0.4), linkEv(at, "tls://head-end:7443", "connected", 20, 0, 2e6, 0, 0), busEv(at, "rs485-1", 0), reading(at))
		}
	})
	worst := measure(func(s *Store, id string) { feed(s, id, t0, hostileBatch(t0)...) })
	t.Logf("memory per gateway: %.1f KiB sending an hour of telemetry, %.1f KiB built to fill every bound", typical/1024, worst/1024)
	assert.Less(t, worst, 120.0*1024, "a gateway's state passes its bound")
}

// A series file that is not ours is started again; the gateway's state
// stays.
func TestDamagedSeriesFile(t *testing.T) {
	c := &clock{now: t0}
	dir := t.TempDir()
	s := openStore(t, dir, c)
	at := t0.Add(-time.Minute)
	feed(s, "gw", at, spoolEv(at, 5, 1), linkEv(at, "e", "connected", 12, 0, 1e6, 0, 0))
	require.NoError(t, s.Close())
	path := s.fileBase("gw") + ".series"
	for _, damage := range []func(){
		func() { require.NoError(t, os.WriteFile(path, []byte("garbage"), 0o640)) },
		func() { require.NoError(t, os.Truncate(path, 5000)) },
	} {
		damage()
		s2 := openStore(t, dir, c)
		d, ok := s2.Detail("gw")
		require.True(t, ok)
		assert.Equal(t, int64(5), d.Row.BacklogRecords, "the state stays")
		_, err := s2.Series("gw", Hour)
		require.NoError(t, err)
		feed(s2, "gw", t0, linkEv(t0, "e", "connected", 15, 0, 1e6, 0, 0))
		ps, err := s2.Series("gw", Hour)
		require.NoError(t, err)
		require.NotEmpty(t, ps)
		require.NoError(t, s2.Close())
	}
}

// BenchmarkObserve is the store's cost per record on the sink's path (it
// runs under the sink's lock): a batch of a minute of a gateway's
// telemetry and readings.
func BenchmarkObserve(b *testing.B) {
	c := &clock{now: t0}
	o := DefaultOptions()
	o.Dir, o.Now = b.TempDir(), c.Now
	s, err := Open(o)
	require.NoError(b, err)
	var evs []*event.Event
	for i := range 100 {
		at := t0.Add(-time.Minute + time.Duration(i)*600*time.Millisecond)
		evs = append(evs, reading(at))
	}
	evs = append(evs, spoolEv(t0, 3, 1), linkEv(t0, "e", "connected", 12, 0, 1e6, 0, 0), busEv(t0, "b", 0))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Observe(fmt.Sprintf("gw-%d", i%100), t0, evs, Position{Offset: -1})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/record")
}
