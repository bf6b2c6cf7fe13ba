package gateway

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink/sender"
)

// TestRulesConfigProblemsPlaced: the rules section is checked at load,
// each problem at its line and column with its full key.
func TestRulesConfigProblemsPlaced(t *testing.T) {
	doc := `rules:
  rules:
    - name: pump trips
      type: bogus
      match: {kind: [nope], fields: [{key: v, regex: "(x"}]}
    - name: ok
      match: {kind: [log]}
      count: 3
      level: LOUD
  correlation:
    distributed: {keys: 1}
  actions:
    loud: {led: fast}
    page: {led: blink, command: [notify]}
`
	p := filepath.Join(t.TempDir(), "weir.yaml")
	require.NoError(t, os.WriteFile(p, []byte(doc), 0o600))
	_, err := Load(p, true)
	require.Error(t, err)
	for _, want := range []string{
		p + `:3:13: rules.rules[0].name: "pump trips" may hold only letters`,
		p + `:4:13: rules.rules[0].type: "bogus" is not count, rate, sustained or absent`,
		p + `:5:22: rules.rules[0].match.kind[0]: "nope" is not a record kind`,
		p + ":5:54: rules.rules[0].match.fields[0].regex: missing closing ): `(x`",
		p + `:9:14: rules.rules[1].level: found "LOUD", expected a level: NONE, LOG, NOTIFY, PAGE, ESCALATE or CRITICAL`,
		p + ":11:25: rules.correlation.distributed.keys: 1: a pattern needs at least 2 devices",
		p + ":13:5: rules.actions: unknown key `loud`",
		p + `:14:17: rules.actions.page.led: "blink" is not off, on, slow or fast`,
		p + `:14:34: rules.actions.page.command[0]: "notify" is not an absolute path`,
	} {
		require.Contains(t, err.Error(), want)
	}
}

// TestRulesItemDefaults: a rule names only what differs from a rule's
// defaults; the built-ins stay unless turned off.
func TestRulesItemDefaults(t *testing.T) {
	doc := `rules:
  rules:
    - name: pump_trips
      match: {kind: [reading], fields: [{key: trip, equals: "true"}]}
      count: 3
    - {name: tamper, disabled: true}
  actions:
    page: {command: [/bin/true]}
`
	p := filepath.Join(t.TempDir(), "weir.yaml")
	require.NoError(t, os.WriteFile(p, []byte(doc), 0o600))
	l, err := Load(p, true)
	require.NoError(t, err)
	r := l.Rules.Rules[0]
	require.Equal(t, rules.TypeCount, r.Type)
	require.Equal(t, 5*time.Minute, r.Window)
	require.Equal(t, rules.LevelNotify, r.Level)
	require.Equal(t, 2.0, r.Escalation)
	require.True(t, r.Correlate)
	require.Equal(t, rules.DefaultActionTimeout, l.Rules.Actions.Page.Timeout)
	require.Equal(t, "fast", l.Rules.Actions.Page.LED, "the level's defaults stay")
	var names []string
	for _, r := range l.Rules.Effective() {
		names = append(names, r.Name)
	}
	require.Contains(t, names, "auth_failures")
	require.NotContains(t, names, "tamper")
	require.Equal(t, "pump_trips", names[len(names)-1])
}

// TestBuiltinRulesOnGatewayRecords: the built-in rules fire on the
// records the gateway itself makes: its spool telemetry and disk-held
// alert, its clock's state changes, its link telemetry, the board's
// tamper record.
func TestBuiltinRulesOnGatewayRecords(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	e, err := rules.New(rules.DefaultConfig(), rules.Options{Host: "gw", Now: func() time.Time { return now }})
	require.NoError(t, err)
	observe := func(evs ...event.Event) []event.Event {
		for i := range evs {
			evs[i].Time, evs[i].Host = now.UnixNano(), "gw"
		}
		return e.Commit(e.Observe(evs), 1)
	}
	ruleOf := func(evs []event.Event) []string {
		var out []string
		for _, ev := range evs {
			for _, f := range ev.Fields {
				if f.Key == "rule" {
					out = append(out, f.Value.Str)
				}
			}
		}
		return out
	}

	full := spool.Stats{Used: 85 << 20, MaxBytes: 100 << 20}
	require.Equal(t, []string{"spool_pressure"}, ruleOf(observe(spoolTelemetry(full, spool.Stats{}))))

	e2, err := rules.New(rules.DefaultConfig(), rules.Options{Host: "gw", Now: func() time.Time { return now }})
	require.NoError(t, err)
	held := diskHeldEvent(spool.Stats{Disk: spool.DiskStats{Held: "disk full"}})
	held.Time = now.UnixNano()
	require.Len(t, e2.Commit(e2.Observe([]event.Event{held}), 1), 1, "intake held: spool_pressure")

	hold, ok := clockTransition(ptp.Status{Mode: "linuxptp", State: "locked"}, ptp.Status{Mode: "linuxptp", State: "holdover"})
	require.True(t, ok)
	require.Empty(t, observe(hold))
	now = now.Add(15 * time.Minute)
	require.Equal(t, []string{"ptp_holdover"}, ruleOf(e.Tick()))
	sysFree, _ := clockTransition(ptp.Status{}, ptp.Status{Mode: ptp.ModeSystem, State: "freerun"})
	require.Empty(t, observe(sysFree), "a system clock runs free by design")
	free, _ := clockTransition(ptp.Status{Mode: "builtin", State: "holdover"}, ptp.Status{Mode: "builtin", State: "freerun"})
	require.Equal(t, []string{"ptp_freerun"}, ruleOf(observe(free)))

	lossy := Link{Uplink: sender.Status{Endpoints: []sender.EndpointStatus{{Endpoint: "tls://c:7443", Loss1m: 0.3}}}, At: now}
	for range 10 {
		require.Empty(t, observe(linkTelemetry(lossy, spool.Stats{})...))
		now = now.Add(time.Minute)
	}
	require.Equal(t, []string{"uplink_loss"}, ruleOf(observe(linkTelemetry(lossy, spool.Stats{})...)))

	tamper := event.Event{Source: "weir:board", Kind: event.KindAlert, Severity: event.SevCritical,
		Priority: event.PriorityCritical, Message: "tamper: enclosure opened", Fields: []event.Field{event.Str("state", "open")}}
	out := observe(tamper)
	require.Equal(t, []string{"tamper"}, ruleOf(out))
	require.Equal(t, "CRITICAL", out[0].Fields[0].Value.Str)
}

// TestEmitRaisesAlerts: records pass the rules on their way to the
// spool; the alert is spooled as a critical record naming the sequences
// of the records it counted, the records carry their correlation id, and
// the level's command gets the alert as JSON on its standard input.
func TestEmitRaisesAlerts(t *testing.T) {
	dir := t.TempDir()
	got := filepath.Join(dir, "alert.json")
	cfgFile := gatewayConfig(t, filepath.Join(dir, "data"), "")
	b, err := os.ReadFile(cfgFile)
	require.NoError(t, err)
	b = append(b, []byte(`rules:
  builtin: false
  rules:
    - name: crc
      match: {fields: [{key: verdict, equals: crc_error}]}
      count: 3
      window: 1m
      level: PAGE
  correlation:
    distributed: {keys: 2}
  actions:
    page: {led: slow, command: [/bin/sh, -c, 'cat >> "$0"', `+got+`], timeout: 5s}
`)...)
	require.NoError(t, os.WriteFile(cfgFile, b, 0o600))
	g := newTestGateway(t, cfgFile)
	g.spool, err = spool.Open(spool.Options{Dir: filepath.Join(dir, "spool"), Logger: g.log})
	require.NoError(t, err)
	defer g.spool.Close()
	ctx := context.Background()
	crc := func(dev string) event.Event {
		return event.Event{Source: "modbus:bus", Kind: event.KindTelemetry, Severity: event.SevWarning,
			Fields: []event.Field{event.Str("device", dev), event.Str("verdict", "crc_error")}}
	}
	require.NoError(t, g.Emit(ctx, []event.Event{{Source: "app", Message: "hello"}, crc("a")}, nil))
	require.NoError(t, g.Emit(ctx, []event.Event{crc("b"), crc("a")}, nil))
	g.actions.Wait()

	recs, err := g.spool.Read(0, 100, 0)
	require.NoError(t, err)
	require.Len(t, recs, 6, "4 records and 2 alerts (the distributed pattern at the second device, the count at the third record)")
	var alerts []event.Event
	var corr []string
	for _, r := range recs {
		var ev event.Event
		require.NoError(t, ev.UnmarshalBinary(r.Data))
		ev.Seq = r.Seq
		if ev.Source == rules.AlertSource {
			require.Equal(t, spool.ClassCritical, r.Class)
			alerts = append(alerts, ev)
			continue
		}
		for _, f := range ev.Fields {
			if f.Key == "correlation_id" {
				corr = append(corr, f.Value.Str)
			}
		}
	}
	require.Len(t, alerts, 2)
	require.Len(t, corr, 3, "every crc record carries the correlation id")
	require.Equal(t, corr[0], corr[2])
	var count event.Event
	for _, a := range alerts {
		if strings.HasPrefix(a.Message, "PAGE crc") {
			count = a
		}
	}
	fields := map[string]string{}
	for _, f := range count.Fields {
		fields[f.Key] = f.Value.String()
	}
	require.Equal(t, "3", fields["count"])
	require.Equal(t, recs[1].Seq, mustUint(t, fields["first_seq"]), "the first crc record")
	require.Equal(t, recs[3].Seq, mustUint(t, fields["last_seq"]))

	// The PAGE command got each PAGE alert, as the JSON the collector
	// writes, one line each.
	j, err := os.ReadFile(got)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(j)), "\n")
	require.Len(t, lines, 2)
	var seqs []float64
	for _, l := range lines {
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &doc))
		require.Equal(t, "alert", doc["kind"])
		require.Equal(t, "weir:rules", doc["source"])
		seqs = append(seqs, doc["seq"].(float64))
	}
	require.Contains(t, seqs, float64(count.Seq))
	a := g.lastAlert.Load()
	require.NotNil(t, a)
	require.Equal(t, board.Slow, *a.pattern, "the level's LED pattern")
	st := g.counters(g.spool.Stats(), sender.Status{}, g.rules.Stats())
	require.Equal(t, uint64(2), st.Alerts["PAGE"], "the count, and the correlation at the rule's level")
	require.Equal(t, uint64(1), st.Correlations["distributed"])
	require.Equal(t, uint64(6), st.EventsLogged)
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	var v uint64
	for _, c := range s {
		require.True(t, c >= '0' && c <= '9', s)
		v = v*10 + uint64(c-'0')
	}
	return v
}

// TestRulesExampleIsTheBuiltins: `weir config example rules` prints the
// built-in rules as configuration that loads back as exactly them.
func TestRulesExampleIsTheBuiltins(t *testing.T) {
	p := filepath.Join(t.TempDir(), "weir.yaml")
	require.NoError(t, os.WriteFile(p, rules.ExampleYAML(), 0o600))
	l, err := Load(p, true)
	require.NoError(t, err)
	require.Equal(t, rules.Builtin(), l.Rules.Effective())
}
