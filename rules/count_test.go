package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

// TestCountWindowsCooldownsEscalation walks a count rule (3 within 60 s,
// cooldown 120 s) through its boundaries on a controlled clock.
func TestCountWindowsCooldownsEscalation(t *testing.T) {
	base := RuleConfig{Name: "fails", Type: TypeCount, Level: LevelNotify, Match: spec("log"),
		Count: 3, Window: time.Minute, Cooldown: 2 * time.Minute, Correlate: true}
	noEsc, esc := base, base
	esc.Escalation = 2
	other := logRec("h", "x")
	other.Kind = event.KindAudit
	cases := []struct {
		name  string
		rule  RuleConfig
		steps []step
	}{
		{"three within the window", noEsc, []step{{at: 0}, {at: 10}, {at: 20, want: "NOTIFY"}}},
		{"two are not enough", noEsc, []step{{at: 0}, {at: 10}, {at: 20, ev: &other}}},
		{"the oldest exactly a window old is out", noEsc, []step{{at: 0}, {at: 30}, {at: 60}, {at: 61, want: "NOTIFY"}}},
		{"just inside the window", noEsc, []step{{at: 0}, {at: 30}, {at: 59.999, want: "NOTIFY"}}},
		{"cooldown holds", noEsc, []step{{at: 0}, {at: 1}, {at: 2, want: "NOTIFY"}, {at: 10}, {at: 11}, {at: 12}, {at: 100}, {at: 110}, {at: 121.999}}},
		{"cooldown expires exactly", noEsc, []step{{at: 0}, {at: 1}, {at: 2, want: "NOTIFY"}, {at: 100}, {at: 110}, {at: 122, want: "NOTIFY"}}},
		{"only records after the alert count", noEsc, []step{{at: 0}, {at: 1}, {at: 2, want: "NOTIFY"}, {at: 121}, {at: 122}, {at: 123, want: "NOTIFY"}}},
		{"escalation needs count x multiplier and raises a level", esc, []step{
			{at: 0}, {at: 1}, {at: 2, want: "NOTIFY"},
			{at: 125}, {at: 126}, {at: 127}, {at: 128}, {at: 129}, {at: 130, want: "PAGE"},
			{at: 251}, {at: 252}, {at: 253}, {at: 254}, {at: 255}, {at: 256}, {at: 257}, {at: 258}, {at: 259}, {at: 260}, {at: 261}, {at: 262, want: "ESCALATE"},
		}},
		{"escalation within the window after the cooldown only", esc, []step{
			{at: 0}, {at: 1}, {at: 2, want: "NOTIFY"},
			// 2 + 120 + 60 = 182: a window of quiet after the cooldown starts over
			{at: 182}, {at: 183}, {at: 184, want: "NOTIFY"},
		}},
		{"escalation stops at CRITICAL", func() RuleConfig { r := esc; r.Level = LevelCritical; return r }(), []step{
			{at: 0}, {at: 1}, {at: 2, want: "CRITICAL"},
			{at: 125}, {at: 126}, {at: 127}, {at: 128}, {at: 129}, {at: 130, want: "CRITICAL"},
		}},
		{"out of order inside the window counts", noEsc, []step{{at: 0}, {at: 50}, {at: 20, want: "NOTIFY"}}},
		{"out of order outside the window does not", noEsc, []step{{at: 100}, {at: 30}, {at: 101}, {at: 102, want: "NOTIFY"}}},
		{"out of order before the last alert does not", noEsc, []step{{at: 0}, {at: 1}, {at: 2, want: "NOTIFY"}, {at: 1.5}, {at: 130}, {at: 131}, {at: 132, want: "NOTIFY"}}},
		{"level NONE never alerts", func() RuleConfig { r := noEsc; r.Level = LevelNone; return r }(), []step{{at: 0}, {at: 1}, {at: 2}, {at: 3}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runSteps(t, only(c.rule), c.steps, logRec("h", "failed"))
		})
	}
}

// TestCountAlertRecord: the alert names the rule, the level, the count,
// and the sequences of the first and last records counted.
func TestCountAlertRecord(t *testing.T) {
	h := newHarness(t, only(RuleConfig{Name: "fails", Type: TypeCount, Level: LevelPage, Match: spec("log"),
		Count: 3, Window: time.Minute, Description: "why", Correlate: true}))
	noise := event.Event{Kind: event.KindReading, Source: "modbus:m"}
	require.Empty(t, h.emit(0, logRec("h", "a"), noise))    // seqs 1000, 1001
	require.Empty(t, h.emit(1, noise, logRec("h", "b")))    // 1002, 1003
	out := h.emit(2, noise, noise, logRec("h", "c"), noise) // 1004..1007
	require.Len(t, out, 1)
	a := out[0]
	require.Equal(t, AlertSource, a.Source)
	require.Equal(t, event.KindAlert, a.Kind)
	require.Equal(t, event.PriorityCritical, a.Priority)
	require.Equal(t, event.SevError, a.Severity)
	require.Equal(t, "PAGE", field(a, "level"))
	require.Equal(t, "3", field(a, "level_value"))
	require.Equal(t, "fails", field(a, "rule"))
	require.Equal(t, "3", field(a, "count"))
	require.Equal(t, "1000", field(a, "first_seq"))
	require.Equal(t, "1006", field(a, "last_seq"))
	require.Equal(t, "why", field(a, "description"))
	require.Equal(t, "PAGE fails: 3 records within 1m", a.Message)
	require.Equal(t, at(0).Format(time.RFC3339Nano), field(a, "first_time"))
}

func TestCountWeightAndGroups(t *testing.T) {
	drops := RuleConfig{Name: "drops", Type: TypeCount, Level: LevelNotify, Match: spec("log"),
		Count: 50, Window: time.Minute, Weight: "dropped", Correlate: true}
	rep := func(n int64) *event.Event {
		e := logRec("h", "dropped")
		e.Fields = []event.Field{event.Int("dropped", n)}
		return &e
	}
	runSteps(t, only(drops), []step{{at: 0, ev: rep(20)}, {at: 10, ev: rep(0)}, {at: 20, ev: rep(29)}, {at: 30, ev: rep(1), want: "NOTIFY"}}, logRec("h", ""))
	runSteps(t, only(drops), []step{{at: 0, ev: rep(30)}, {at: 60, ev: rep(30)}}, logRec("h", ""))

	byHost := RuleConfig{Name: "fails", Type: TypeCount, Level: LevelNotify, Match: spec("log"),
		Count: 2, Window: time.Minute, GroupBy: []string{"host"}, Correlate: true}
	a, b := logRec("a", "x"), logRec("b", "x")
	h := runSteps(t, only(byHost), []step{{at: 0, ev: &a}, {at: 1, ev: &b}, {at: 2, ev: &a, want: "NOTIFY"}, {at: 3, ev: &b, want: "NOTIFY"}}, a)
	require.Equal(t, "a", field(h.alerts[0], "group"))
	require.Equal(t, "b", field(h.alerts[1], "group"))
}

// TestMaxGroups: a flood of distinct group values (syslog hosts are
// whatever a sender claims) keeps at most max_groups, forgetting the least
// recently seen.
func TestMaxGroups(t *testing.T) {
	cfg := only(RuleConfig{Name: "fails", Type: TypeCount, Level: LevelNotify, Match: spec("log"),
		Count: 2, Window: time.Hour, GroupBy: []string{"host"}, Correlate: true})
	cfg.MaxGroups = 3
	h := newHarness(t, cfg)
	for i, host := range []string{"a", "b", "c", "d", "e"} {
		h.emit(float64(i), logRec(host, "x"))
	}
	st := h.e.Status()
	require.Equal(t, 3, st.Rules[0].Groups)
	require.Equal(t, uint64(2), st.Stats.GroupsForgotten)
	require.Empty(t, h.emit(10, logRec("a", "x")), "a was forgotten: its first record is gone")
	require.Len(t, h.emit(11, logRec("e", "x")), 1)
}
