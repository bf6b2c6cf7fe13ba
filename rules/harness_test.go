package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

// epoch is the test clock's zero: records are placed at seconds after it.
var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return epoch.Add(time.Duration(sec * float64(time.Second))) }

// harness feeds an engine records at chosen times, each batch given the
// next sequences as the spool would, and keeps the alerts.
type harness struct {
	t      *testing.T
	e      *Engine
	now    time.Time
	seq    uint64
	alerts []event.Event
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, now: epoch, seq: 1000}
	e, err := New(cfg, Options{Host: "gw", Now: func() time.Time { return h.now }})
	require.NoError(t, err)
	h.e = e
	return h
}

// only is a configuration of the given rules without built-ins or
// correlation.
func only(rules ...RuleConfig) Config {
	c := DefaultConfig()
	c.Builtin = false
	c.Rules = rules
	c.Correlation.SourceAttack.Enabled = false
	c.Correlation.Distributed.Enabled = false
	c.Correlation.Escalating.Enabled = false
	return c
}

// emit observes one batch at sec (records without a time get it), moves
// the clock there, and returns the alerts it raised.
func (h *harness) emit(sec float64, evs ...event.Event) []event.Event {
	h.t.Helper()
	if t := at(sec); t.After(h.now) {
		h.now = t
	}
	for i := range evs {
		if evs[i].Time == 0 {
			evs[i].Time = at(sec).UnixNano()
		}
	}
	p := h.e.Observe(evs)
	first := h.seq
	h.seq += uint64(len(evs))
	out := h.e.Commit(p, first)
	h.alerts = append(h.alerts, out...)
	return out
}

// tick moves the clock to sec and ticks.
func (h *harness) tick(sec float64) []event.Event {
	h.now = at(sec)
	out := h.e.Tick()
	h.alerts = append(h.alerts, out...)
	return out
}

func field(ev event.Event, key string) string {
	for _, f := range ev.Fields {
		if f.Key == key {
			return f.Value.String()
		}
	}
	return ""
}

func hasField(ev event.Event, key string) bool {
	for _, f := range ev.Fields {
		if f.Key == key {
			return true
		}
	}
	return false
}

// levels writes alerts as "LEVEL" each, for comparing.
func levels(evs []event.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, field(ev, "level"))
	}
	return out
}

func logRec(host, msg string) event.Event {
	return event.Event{Source: "syslog", Kind: event.KindLog, Severity: event.SevNotice, Host: host, Message: msg}
}

// step is a record (or a tick, with tick set) at a time, and the level of
// the alert it should raise ("" none).
type step struct {
	at   float64
	ev   *event.Event
	tick bool
	want string
}

func runSteps(t *testing.T, cfg Config, steps []step, def event.Event) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	for i, s := range steps {
		var out []event.Event
		if s.tick {
			out = h.tick(s.at)
		} else {
			ev := def
			if s.ev != nil {
				ev = *s.ev
			}
			ev.Time = at(s.at).UnixNano()
			out = h.emit(s.at, ev)
		}
		var got string
		if len(out) > 0 {
			require.Len(t, out, 1, "step %d at %gs", i, s.at)
			got = field(out[0], "level")
		}
		require.Equal(t, s.want, got, "step %d at %gs: %v", i, s.at, messages(out))
	}
	return h
}

func messages(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Message)
	}
	return out
}

func spec(kind string) match.Spec { return match.Spec{Kind: []string{kind}} }

var _ = fmt.Sprintf
