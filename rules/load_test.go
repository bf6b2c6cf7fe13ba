package rules

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

// TestLoadKeepsUnchangedWindows: a reload (SIGHUP, remote config) keeps
// the windows of the rules it does not change.
func TestLoadKeepsUnchangedWindows(t *testing.T) {
	a := RuleConfig{Name: "a", Type: TypeCount, Level: LevelNotify, Count: 3, Window: time.Hour, Match: spec("log"), Correlate: true}
	b := a
	b.Name = "b"
	h := newHarness(t, withPatterns(false, true, false, a, b, frameErrorRule))
	h.emit(0, logRec("h", "x"))
	h.emit(1, logRec("h", "x"))
	h.emit(2, frameError("x", "d1"), frameError("y", "d2"))

	b2 := b
	b2.Count = 4
	c := a
	c.Name = "c"
	cfg := withPatterns(false, true, false, a, b2, c, frameErrorRule)
	ch, err := h.e.Load(cfg)
	require.NoError(t, err)
	require.Equal(t, Changes{Kept: []string{"a", "frame_error"}, Reset: []string{"b"}, Added: []string{"c"}}, ch)

	out := h.emit(3, logRec("h", "x"), frameError("z", "d3"))
	require.ElementsMatch(t, []string{"NOTIFY", "NOTIFY"}, levels(out), "a fires on its third record; the distributed group survived")
	require.Equal(t, "a", field(out[0], "rule"))
	st := h.e.Status()
	require.Equal(t, "1/4 within 1h", st.Rules[1].Now, "b started over")

	// A correlation section changed resets its groups; a bad configuration changes nothing.
	cfg.Correlation.Distributed.Keys = 4
	ch, err = h.e.Load(cfg)
	require.NoError(t, err)
	require.True(t, ch.Correlation)
	bad := cfg
	bad.Rules = append(bad.Rules, RuleConfig{Name: "bad", Type: "nope"})
	_, err = h.e.Load(bad)
	require.ErrorContains(t, err, `rules: rules[4].type: "nope" is not count, rate, sustained or absent`)
	require.Len(t, h.e.Status().Rules, 4)

	// Removing a rule reports it; disabling does not evaluate.
	ch, err = h.e.Load(withPatterns(false, true, false, a))
	require.NoError(t, err)
	require.Equal(t, []string{"b", "c", "frame_error"}, ch.Removed)
	off := withPatterns(false, false, false, a)
	off.Enabled = false
	_, err = h.e.Load(off)
	require.NoError(t, err)
	require.Nil(t, h.e.Observe([]event.Event{logRec("h", "x")}))
}

func TestEffectiveRules(t *testing.T) {
	c := DefaultConfig()
	names := func() []string {
		var out []string
		for _, r := range c.Effective() {
			out = append(out, r.Name)
		}
		return out
	}
	require.Contains(t, names(), "auth_failures")
	mine := DefaultRule()
	mine.Name, mine.Match = "auth_failures", spec("audit")
	c.Rules = []RuleConfig{mine, {Name: "tamper", Disabled: true}, {Name: "extra", Type: TypeCount, Count: 1, Window: time.Minute}}
	got := names()
	require.NotContains(t, got, "tamper")
	require.Equal(t, "extra", got[len(got)-1])
	n := 0
	for _, r := range c.Effective() {
		if r.Name == "auth_failures" {
			n++
			require.Equal(t, spec("audit"), r.Match, "the configured rule replaces the built-in")
		}
	}
	require.Equal(t, 1, n)
	c.Builtin = false
	require.Equal(t, []string{"auth_failures", "extra"}, names())
}

func TestValidateNamesKeys(t *testing.T) {
	c := DefaultConfig()
	c.MaxGroups = 0
	c.Rules = []RuleConfig{
		{Name: "a b", Type: TypeCount, Count: 0, Window: 0, Escalation: 0.5, Level: 9},
		{Name: "r", Type: TypeRate, Window: time.Minute, Rate: RateConfig{Above: 2}},
		{Name: "s", Type: TypeSustained, For: -1, When: spec("nope")},
		{Name: "x", Type: TypeAbsent},
		{Name: "r", Type: "count", Count: 1, Window: time.Minute, Match: spec("bogus")},
		{Disabled: true},
	}
	c.Correlation.Window = 0
	c.Correlation.SourceAttack.Events = 1
	c.Correlation.Distributed.By = nil
	c.Correlation.Escalating.Within = 2
	c.Actions.Page = ActionConfig{Command: []string{"notify-send"}, Timeout: time.Second}
	c.Actions.Critical = ActionConfig{Command: []string{"/bin/x"}}
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"max_groups: 0 is below 1",
		`rules[0].name: "a b" may hold only`,
		"rules[0].level: level(9) is not a level",
		"rules[0].window: 0s: a count needs a window",
		"rules[0].count: 0: at least one record must count",
		"rules[0].escalation: 0.5: a multiplier below 1",
		"rules[1].rate.errors: name the counter fields",
		"rules[1].rate.above: 2 is not a ratio",
		"rules[2].for: -1ns is negative",
		`rules[2].when.kind[0]: "nope" is not a record kind`,
		"rules[3].for: 0s: say how long",
		`rules[4].name: "r" is already the name of rules[1]`,
		`rules[4].match.kind[0]: "bogus" is not a record kind`,
		"rules[5].name: a disabled rule names the rule it turns off",
		"correlation.window: 0s is not a duration above 0",
		"correlation.source_attack.events: 1",
		"correlation.distributed.by: name what tells devices apart",
		"correlation.escalating.within: 2 is fewer records than the 3 steps",
		`actions.page.command[0]: "notify-send" is not an absolute path`,
		"actions.critical.timeout: 0s: a command needs a time limit",
	} {
		require.Contains(t, err.Error(), want)
	}
	require.NoError(t, DefaultConfig().Validate())
}

func TestLevels(t *testing.T) {
	for i, n := range []string{"NONE", "LOG", "NOTIFY", "PAGE", "ESCALATE", "CRITICAL"} {
		l, err := ParseLevel(n)
		require.NoError(t, err)
		require.Equal(t, Level(i), l)
		l, err = ParseLevel(string(rune('0' + i)))
		require.NoError(t, err)
		require.Equal(t, Level(i), l)
	}
	l, err := ParseLevel("page")
	require.NoError(t, err)
	require.Equal(t, LevelPage, l)
	_, err = ParseLevel("LOUD")
	require.Error(t, err)
	require.Equal(t, LevelCritical, LevelEscalate.raise(3))
}

// TestUnstampedRecordsTakeTheClock: Observe before stamping (a test, a
// tool) uses the engine's clock.
func TestUnstampedRecordsTakeTheClock(t *testing.T) {
	h := newHarness(t, only(RuleConfig{Name: "a", Type: TypeCount, Level: LevelLog, Count: 2, Window: time.Minute, Match: spec("log"), Correlate: true}))
	h.now = at(10)
	p := h.e.Observe([]event.Event{logRec("h", "x"), logRec("h", "y")})
	out := h.e.Commit(p, 7)
	require.Len(t, out, 1)
	require.Equal(t, at(10).Format(time.RFC3339Nano), field(out[0], "first_time"))
}

// TestConcurrentUse: sources emit from their own goroutines while the
// clock ticks, the rules are reloaded and weir alerts asks (run with
// -race).
func TestConcurrentUse(t *testing.T) {
	e, err := New(DefaultConfig(), Options{Host: "gw"})
	require.NoError(t, err)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				evs := []event.Event{logRec(fmt.Sprintf("h%d", w), "Failed password for root"), *reading("m1"), frameError("b", fmt.Sprintf("d%d", i%5))}
				for j := range evs {
					evs[j].Time = time.Now().UnixNano()
				}
				e.Commit(e.Observe(evs), uint64(1+i*3))
			}
		})
	}
	for range 50 {
		e.Tick()
		_ = e.Status()
		_, err := e.Load(DefaultConfig())
		require.NoError(t, err)
	}
	close(done)
	wg.Wait()
	require.Positive(t, e.Stats().Matched)
}
