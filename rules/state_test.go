package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

func busTelemetry(bus string, attempts, crc uint64) *event.Event {
	return &event.Event{Source: "modbus:" + bus, Kind: event.KindTelemetry, Fields: []event.Field{
		event.Str("bus", bus), event.Uint("attempts", attempts), event.Uint("crc_errors", crc), event.Uint("short_frames", 0)}}
}

// TestRate: damaged frames over attempts, from cumulative counters, over
// the window.
func TestRate(t *testing.T) {
	r := RuleConfig{Name: "emi", Type: TypeRate, Level: LevelNotify, Window: 5 * time.Minute, Cooldown: 30 * time.Minute,
		GroupBy: []string{"bus"}, Match: spec("telemetry"), Correlate: true,
		Rate: RateConfig{Errors: []string{"crc_errors", "short_frames"}, Total: []string{"attempts"}, Above: 0.01, MinTotal: 100}}
	cases := []struct {
		name  string
		steps []step
	}{
		{"below 1 %", []step{{at: 0, ev: busTelemetry("a", 0, 0)}, {at: 60, ev: busTelemetry("a", 1000, 10)}}},
		{"above 1 %", []step{{at: 0, ev: busTelemetry("a", 0, 0)}, {at: 60, ev: busTelemetry("a", 1000, 11), want: "NOTIFY"}}},
		{"too few attempts say nothing", []step{{at: 0, ev: busTelemetry("a", 0, 0)}, {at: 60, ev: busTelemetry("a", 99, 50)}}},
		{"errors older than the window are not counted", []step{
			{at: 0, ev: busTelemetry("a", 0, 0)}, {at: 60, ev: busTelemetry("a", 90, 50)}, // 90 attempts: too few
			{at: 400, ev: busTelemetry("a", 10090, 60)}, // base: the sample at 60 (<= 100 s cutoff): 10/10000
		}},
		{"a counter reset starts over", []step{
			{at: 0, ev: busTelemetry("a", 5000, 10)}, {at: 60, ev: busTelemetry("a", 10, 0)}, // restarted
			{at: 120, ev: busTelemetry("a", 1010, 20), want: "NOTIFY"}, // 20/1000 since the reset
		}},
		{"buses apart", []step{
			{at: 0, ev: busTelemetry("a", 0, 0)}, {at: 1, ev: busTelemetry("b", 0, 0)},
			{at: 60, ev: busTelemetry("a", 1000, 5)}, {at: 61, ev: busTelemetry("b", 1000, 50), want: "NOTIFY"},
		}},
		{"cooldown", []step{
			{at: 0, ev: busTelemetry("a", 0, 0)}, {at: 60, ev: busTelemetry("a", 1000, 50), want: "NOTIFY"},
			{at: 120, ev: busTelemetry("a", 2000, 100)}, {at: 1860, ev: busTelemetry("a", 3000, 200), want: "NOTIFY"},
		}},
		{"out of order sample", []step{
			{at: 120, ev: busTelemetry("a", 2000, 40)}, {at: 60, ev: busTelemetry("a", 1000, 10), want: "NOTIFY"}, // 30/1000
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runSteps(t, only(r), c.steps, event.Event{}) })
	}
}

func clockRec(to string) *event.Event {
	return &event.Event{Source: "weir:clock", Kind: event.KindTelemetry,
		Fields: []event.Field{event.Str("to", to), event.Str("mode", "linuxptp")}}
}

// TestSustained: a state reported once holds until a record says
// otherwise, so the clock's ticks fire it.
func TestSustained(t *testing.T) {
	r := RuleConfig{Name: "holdover", Type: TypeSustained, Level: LevelNotify, For: 15 * time.Minute, Cooldown: time.Hour,
		Match: match.Spec{Source: []string{"weir:clock"}}, When: match.Spec{Fields: []match.Field{{Key: "to", Equals: "holdover"}}}, Correlate: true}
	instant := r
	instant.For = 0
	cases := []struct {
		name  string
		rule  RuleConfig
		steps []step
	}{
		{"held long enough, seen by a tick", r, []step{{at: 0, ev: clockRec("holdover")}, {at: 899, tick: true}, {at: 900, tick: true, want: "NOTIFY"}, {at: 901, tick: true}}},
		{"held long enough, seen by a record", r, []step{{at: 0, ev: clockRec("holdover")}, {at: 600, ev: clockRec("holdover")}, {at: 900, ev: clockRec("holdover"), want: "NOTIFY"}}},
		{"ended before", r, []step{{at: 0, ev: clockRec("holdover")}, {at: 800, ev: clockRec("locked")}, {at: 900, tick: true}, {at: 2000, tick: true}}},
		{"a reminder after the cooldown", r, []step{{at: 0, ev: clockRec("holdover")}, {at: 900, tick: true, want: "NOTIFY"}, {at: 4499, tick: true}, {at: 4500, tick: true, want: "NOTIFY"}}},
		{"for 0 fires at once", instant, []step{{at: 0, ev: clockRec("locked")}, {at: 5, ev: clockRec("holdover"), want: "NOTIFY"}}},
		{"flapping alerts once per cooldown", instant, []step{
			{at: 0, ev: clockRec("holdover"), want: "NOTIFY"}, {at: 10, ev: clockRec("locked")}, {at: 20, ev: clockRec("holdover")},
			{at: 3600, ev: clockRec("locked")}, {at: 3601, ev: clockRec("holdover"), want: "NOTIFY"},
		}},
		{"an older state arriving late is ignored", r, []step{{at: 100, ev: clockRec("holdover")}, {at: 50, ev: clockRec("locked")}, {at: 1000, tick: true, want: "NOTIFY"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runSteps(t, only(c.rule), c.steps, event.Event{}) })
	}
}

func reading(dev string) *event.Event {
	return &event.Event{Source: "modbus:" + dev, Kind: event.KindReading, Fields: []event.Field{event.Str("device", dev)}}
}

func TestAbsent(t *testing.T) {
	r := RuleConfig{Name: "gone", Type: TypeAbsent, Level: LevelNotify, For: 5 * time.Minute, Cooldown: time.Hour,
		GroupBy: []string{"device"}, Match: spec("reading"), Correlate: true}
	cases := []struct {
		name  string
		steps []step
	}{
		{"silent for the duration", []step{{at: 0, ev: reading("m1")}, {at: 299, tick: true}, {at: 300, tick: true, want: "NOTIFY"}, {at: 301, tick: true}}},
		{"records keep it quiet", []step{{at: 0, ev: reading("m1")}, {at: 200, ev: reading("m1")}, {at: 450, tick: true}, {at: 500, tick: true, want: "NOTIFY"}}},
		{"another device's records do not", []step{{at: 0, ev: reading("m1")}, {at: 200, ev: reading("m2")}, {at: 300, tick: true, want: "NOTIFY"}}},
		{"a reminder every cooldown", []step{{at: 0, ev: reading("m1")}, {at: 300, tick: true, want: "NOTIFY"}, {at: 3899, tick: true}, {at: 3900, tick: true, want: "NOTIFY"}}},
		{"back, then silent again: within the cooldown", []step{{at: 0, ev: reading("m1")}, {at: 300, tick: true, want: "NOTIFY"}, {at: 400, ev: reading("m1")}, {at: 700, tick: true}}},
		{"never seen, never missed", []step{{at: 1000, tick: true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runSteps(t, only(r), c.steps, event.Event{}) })
	}
	h := runSteps(t, only(r), []step{{at: 0, ev: reading("m1")}, {at: 300, tick: true, want: "NOTIFY"}}, event.Event{})
	require.Equal(t, "NOTIFY gone: no record for 5m (m1)", h.alerts[0].Message)
	require.Equal(t, "1000", field(h.alerts[0], "last_seq"), "the last record seen")
}

// TestIdleGroupsForgotten: a device removed from the site stops being
// reported after a day.
func TestIdleGroupsForgotten(t *testing.T) {
	r := RuleConfig{Name: "gone", Type: TypeAbsent, Level: LevelNotify, For: 5 * time.Minute, Cooldown: time.Hour,
		GroupBy: []string{"device"}, Match: spec("reading"), Correlate: true}
	h := newHarness(t, only(r))
	h.emit(0, *reading("m1"))
	require.Len(t, h.tick(300), 1)
	h.tick(86401)
	require.Zero(t, h.e.Status().Rules[0].Groups)
	require.Empty(t, h.tick(90000))
}
