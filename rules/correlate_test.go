package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

func frameError(bus, dev string) event.Event {
	return event.Event{Source: "modbus:" + bus, Kind: event.KindTelemetry, Severity: event.SevWarning,
		Fields: []event.Field{event.Str("device", dev), event.Str("bus", bus), event.Str("verdict", "crc_error")}}
}

var frameErrorRule = RuleConfig{Name: "frame_error", Type: TypeCount, Level: LevelNone, Count: 1, Window: 5 * time.Minute,
	Match: match.Spec{Fields: []match.Field{{Key: "verdict", Equals: "crc_error"}}}, Correlate: true}

func withPatterns(sa, dist, esc bool, rules ...RuleConfig) Config {
	c := only(rules...)
	c.Correlation.SourceAttack.Enabled = sa
	c.Correlation.Distributed.Enabled = dist
	c.Correlation.Escalating.Enabled = esc
	return c
}

// TestDistributed: one rule's events from three devices within the window
// make one correlation; every event of the group, before and after, carries
// its id.
func TestDistributed(t *testing.T) {
	h := newHarness(t, withPatterns(false, true, false, frameErrorRule))
	var recs []event.Event
	emit := func(sec float64, ev event.Event) []event.Event {
		evs := []event.Event{ev}
		out := h.emit(sec, evs...)
		recs = append(recs, evs[0])
		return out
	}
	require.Empty(t, emit(0, frameError("rs485-a", "meter-1")))
	require.Empty(t, emit(10, frameError("rs485-a", "meter-1")), "the same device twice is one")
	require.Empty(t, emit(20, frameError("rs485-b", "pump-1")))
	out := emit(30, frameError("rs485-b", "pump-2"))
	require.Len(t, out, 1)
	a := out[0]
	id := fmt.Sprintf("distributed:frame_error:%d", at(0).Unix())
	require.Equal(t, id, field(a, "correlation_id"))
	require.Equal(t, "distributed", field(a, "pattern"))
	require.Equal(t, "frame_error", field(a, "rule"))
	require.Equal(t, "NOTIFY", field(a, "level"), "the pattern's level over the rule's NONE")
	require.Equal(t, "meter-1,pump-1,pump-2", field(a, "devices"))
	require.Equal(t, "1000,1001,1002,1003", field(a, "related_seqs"))
	require.Equal(t, "1000", field(a, "first_seq"))
	require.Equal(t, "1003", field(a, "last_seq"))
	require.Empty(t, emit(40, frameError("rs485-a", "meter-3")), "one alert per correlation")
	for i, r := range recs {
		require.Equal(t, id, field(r, "correlation_id"), "record %d", i)
	}
	// Exactly a window after the first event a new group starts.
	require.Empty(t, emit(300, frameError("rs485-a", "meter-1")))
	require.Equal(t, fmt.Sprintf("distributed:frame_error:%d", at(300).Unix()), field(recs[len(recs)-1], "correlation_id"))
	require.Equal(t, uint64(1), h.e.Stats().Correlations["distributed"])

	// A record without a device, bus or host does not join.
	h2 := newHarness(t, withPatterns(false, true, false, frameErrorRule))
	c := h2.e.set.Load().corr
	c.cfg.Distributed.By = []string{"device"}
	ev := []event.Event{{Kind: event.KindTelemetry, Fields: []event.Field{event.Str("verdict", "crc_error")}}}
	h2.emit(0, ev...)
	require.False(t, hasField(ev[0], "correlation_id"))
}

// TestDistributedOutOfOrder: a late event (older than the group's first)
// joins the open group rather than opening an older one.
func TestDistributedOutOfOrder(t *testing.T) {
	h := newHarness(t, withPatterns(false, true, false, frameErrorRule))
	h.emit(100, frameError("a", "d1"))
	late := []event.Event{frameError("b", "d2")}
	late[0].Time = at(40).UnixNano()
	h.emit(100, late...)
	require.Equal(t, fmt.Sprintf("distributed:frame_error:%d", at(100).Unix()), field(late[0], "correlation_id"))
	require.Len(t, h.emit(101, frameError("c", "d3")), 1)
}

func syslogFrom(host string, sev event.Severity) event.Event {
	e := logRec(host, "something bad")
	e.Severity = sev
	return e
}

var anyLog = RuleConfig{Name: "logs", Type: TypeCount, Level: LevelNone, Count: 1, Window: time.Minute, Match: spec("log"), Correlate: true}

func TestSourceAttack(t *testing.T) {
	h := newHarness(t, withPatterns(true, false, false, anyLog))
	for i := range 4 {
		require.Empty(t, h.emit(float64(i), syslogFrom("plc-7", event.SevError)))
		require.Empty(t, h.emit(float64(i), syslogFrom("plc-8", event.SevCritical)), "another host is another source")
		require.Empty(t, h.emit(float64(i), syslogFrom("plc-7", event.SevWarning)), "a warning is not high")
	}
	ev := []event.Event{syslogFrom("plc-7", event.SevAlert)}
	out := h.emit(10, ev...)
	require.Len(t, out, 1)
	id := fmt.Sprintf("source_attack:syslog@plc-7:%d", at(0).Unix())
	require.Equal(t, id, field(out[0], "correlation_id"))
	require.Equal(t, "PAGE", field(out[0], "level"))
	require.Equal(t, "5", field(out[0], "count"))
	require.Equal(t, id, field(ev[0], "correlation_id"))
	// The gateway's own host is not named.
	own := []event.Event{syslogFrom("gw", event.SevError)}
	h.emit(11, own...)
	require.True(t, strings.HasPrefix(field(own[0], "correlation_id"), "source_attack:syslog:"))
	// Not a record a rule did not match.
	h2 := newHarness(t, withPatterns(true, false, false, RuleConfig{Name: "audit", Type: TypeCount, Level: LevelNone, Count: 1,
		Window: time.Minute, Match: spec("audit"), Correlate: true}))
	for i := range 10 {
		require.Empty(t, h2.emit(float64(i), syslogFrom("plc-7", event.SevError)))
	}
}

func TestEscalating(t *testing.T) {
	cases := []struct {
		name string
		sevs []event.Severity
		want int // index of the record that fires, -1 none
	}{
		{"warning, err, crit", []event.Severity{event.SevWarning, event.SevError, event.SevCritical}, 2},
		{"with others between", []event.Severity{event.SevWarning, event.SevWarning, event.SevNotice, event.SevError, event.SevInfo, event.SevError, event.SevAlert}, 6},
		{"falling is not rising", []event.Severity{event.SevCritical, event.SevError, event.SevWarning}, -1},
		{"equal steps are not rising", []event.Severity{event.SevError, event.SevError, event.SevError}, -1},
		{"spread beyond 10 events", []event.Severity{event.SevWarning, event.SevError, event.SevWarning, event.SevWarning, event.SevWarning,
			event.SevWarning, event.SevWarning, event.SevWarning, event.SevWarning, event.SevWarning, event.SevCritical}, -1},
		{"within 10 events", []event.Severity{event.SevWarning, event.SevWarning, event.SevWarning, event.SevWarning, event.SevWarning,
			event.SevWarning, event.SevWarning, event.SevWarning, event.SevError, event.SevCritical}, 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, withPatterns(false, false, true, anyLog))
			fired := -1
			var recs []event.Event
			for i, s := range c.sevs {
				ev := []event.Event{syslogFrom("plc-7", s)}
				out := h.emit(float64(i), ev...)
				recs = append(recs, ev[0])
				if len(out) > 0 {
					require.Equal(t, -1, fired, "one alert")
					fired = i
					require.Equal(t, field(out[0], "correlation_id"), field(ev[0], "correlation_id"))
				}
			}
			require.Equal(t, c.want, fired)
			if fired >= 0 {
				id := field(recs[fired], "correlation_id")
				for i, r := range recs {
					if r.Severity <= event.SevWarning {
						require.Equal(t, id, field(r, "correlation_id"), "record %d", i)
					}
				}
			}
		})
	}
	h := newHarness(t, withPatterns(false, false, true, anyLog))
	h.emit(0, syslogFrom("plc-7", event.SevWarning))
	h.emit(1, syslogFrom("plc-7", event.SevError))
	out := h.emit(2, syslogFrom("plc-7", event.SevEmergency))
	require.Len(t, out, 1)
	require.Equal(t, "PAGE escalating: severities rising warning → err → emerg from syslog@plc-7 within 3 events", out[0].Message)
	// The group's window is counted from its first event.
	h2 := newHarness(t, withPatterns(false, false, true, anyLog))
	h2.emit(0, syslogFrom("plc-7", event.SevWarning))
	h2.emit(100, syslogFrom("plc-7", event.SevError))
	require.Empty(t, h2.emit(300, syslogFrom("plc-7", event.SevCritical)), "300 s after the first: a new group")
}

// TestSeveralCorrelations: a record in groups of two patterns carries
// both ids, in correlation_id the first of them that has fired.
func TestSeveralCorrelations(t *testing.T) {
	h := newHarness(t, withPatterns(true, true, false, anyLog))
	var last []event.Event
	for i := range 5 {
		last = []event.Event{syslogFrom(fmt.Sprintf("plc-%d", i%3), event.SevError)}
		last[0].Host = "plc-1"
		if i < 3 {
			last[0].Fields = []event.Field{event.Str("device", fmt.Sprintf("d%d", i))}
		}
		h.emit(float64(i), last...)
	}
	require.Len(t, h.alerts, 2)
	dist, sa := field(h.alerts[0], "correlation_id"), field(h.alerts[1], "correlation_id")
	require.True(t, strings.HasPrefix(dist, "distributed:"), dist)
	require.True(t, strings.HasPrefix(sa, "source_attack:"), sa)
	require.Equal(t, dist, field(last[0], "correlation_id"), "both fired: the first joined is named")
	require.ElementsMatch(t, []string{dist, sa}, strings.Split(field(last[0], "correlation_ids"), ","))
}

func TestRising(t *testing.T) {
	require.Equal(t, []event.Severity{4, 3, 2}, rising([]event.Severity{4, 5, 3, 3, 6, 2}))
	require.Len(t, rising(nil), 0)
}

// TestRoutineRecordsAreNotEvents: what absent and rate rules watch
// (readings, counters), and records on which a sustained rule's condition
// does not hold, never join a correlation.
func TestRoutineRecordsAreNotEvents(t *testing.T) {
	gone := RuleConfig{Name: "gone", Type: TypeAbsent, Level: LevelNotify, For: time.Minute, GroupBy: []string{"device"}, Match: spec("reading"), Correlate: true}
	emi := RuleConfig{Name: "emi", Type: TypeRate, Level: LevelNotify, Window: time.Minute, Match: spec("telemetry"), Correlate: true,
		Rate: RateConfig{Errors: []string{"crc_errors"}, Total: []string{"attempts"}, Above: 0.5}}
	h := newHarness(t, withPatterns(true, true, true, gone, emi))
	for i := range 5 {
		evs := []event.Event{*reading(fmt.Sprintf("m%d", i)), *busTelemetry(fmt.Sprintf("b%d", i), uint64(i), 0)}
		evs[0].Severity, evs[1].Severity = event.SevError, event.SevError
		h.emit(float64(i), evs...)
		require.False(t, hasField(evs[0], "correlation_id"))
		require.False(t, hasField(evs[1], "correlation_id"))
	}
	require.Empty(t, h.alerts)
}
