package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/spool"
)

// TestProcessorsConfigProblemsPlaced: the processors section is checked
// at load, each problem at its line and column with its full key.
func TestProcessorsConfigProblemsPlaced(t *testing.T) {
	doc := `inputs:
  syslog: {udp: {listen: "127.0.0.1:0"}, tcp: {listen: ""}}
processors:
  global:
    - drop: {match: {kind: [nope]}}
    - redact: {fields: [user], with: hmac, hmac_key: short}
    - sample: {every: 3, bogus: 1}
  inputs:
    syslog:
      - parse: {format: xml}
      - {}
    files.nothere:
      - drop: {}
`
	p := filepath.Join(t.TempDir(), "weir.yaml")
	require.NoError(t, os.WriteFile(p, []byte(doc), 0o600))
	_, err := Load(p, true)
	require.Error(t, err)
	for _, want := range []string{
		`:5:29: processors.global[0].drop.match.kind[0]: "nope" is not a record kind`,
		`processors.global[1].redact.hmac_key: 5 bytes: with: hmac needs a key of at least 16`,
		":7:26: processors.global[2].sample: unknown key `bogus`",
		`processors.inputs.syslog[0].parse.format: "xml" is not dissect, kv, json or sd`,
		`processors.inputs.syslog[1]: no processor`,
		`:13:7: processors.inputs.files.nothere: no such input (files.varlog, syslog)`,
	} {
		require.Contains(t, err.Error(), want)
	}
}

// TestProcessorsConfigWarnsAndRedacts: a step that may drop critical
// records is a warning of the configuration check; the HMAC key is
// never printed.
func TestProcessorsConfigWarnsAndRedacts(t *testing.T) {
	doc := `processors:
  global:
    - drop: {match: {kind: [telemetry]}, allow_critical: true}
    - redact: {regex: 'user=(\S+)', with: hmac, hmac_key: 0123456789abcdef-secret}
`
	p := filepath.Join(t.TempDir(), "weir.yaml")
	require.NoError(t, os.WriteFile(p, []byte(doc), 0o600))
	l, err := Load(p, true)
	require.NoError(t, err)
	require.Contains(t, strings.Join(l.Warnings, "\n"), "processors.global[0].drop.allow_critical: true: this step can drop critical records")
	red := l.Config.Redacted()
	require.Equal(t, "<redacted>", red.Processors.Global[1].Redact.HMACKey)
	require.Equal(t, "0123456789abcdef-secret", l.Processors.Global[1].Redact.HMACKey, "the copy only")
	require.True(t, l.holdsSecrets())
}

// TestEmitProcessorsKeepPositions: what an input's chain drops is not
// spooled, its checkpoint is, in the same append; the rules see the
// dropped records first, and an alert names no sequence for them.
func TestEmitProcessorsKeepPositions(t *testing.T) {
	dir := t.TempDir()
	cfgFile := gatewayConfig(t, filepath.Join(dir, "data"), "")
	b, err := os.ReadFile(cfgFile)
	require.NoError(t, err)
	b = []byte(strings.Replace(string(b), "  files: []\n", "  files:\n    - {name: app, paths: ["+filepath.Join(dir, "app.log")+"]}\n", 1))
	b = append(b, []byte(`rules:
  builtin: false
  rules:
    - {name: noise, match: {message: {contains: [noise]}}, count: 2, window: 1m, level: LOG}
processors:
  inputs:
    files.app:
      - drop: {match: {message: {contains: [noise]}}}
  global:
    - redact: {regex: 'pw=(\S+)'}
`)...)
	require.NoError(t, os.WriteFile(cfgFile, b, 0o600))
	g := newTestGateway(t, cfgFile)
	g.spool, err = spool.Open(spool.Options{Dir: filepath.Join(dir, "spool"), Logger: g.log})
	require.NoError(t, err)
	defer g.spool.Close()
	ctx := context.Background()
	rec := func(m string) event.Event {
		return event.Event{Source: "app", Kind: event.KindLog, Severity: event.SevInfo, Message: m}
	}
	cp := []spool.Checkpoint{{Source: "file app", Position: []byte("offset 10")}}
	require.NoError(t, emitErr(g.emit(ctx, "files.app", []event.Event{rec("noise 1"), rec("login pw=hunter2"), rec("noise 2")}, cp)))
	// A batch whose every record is dropped still moves the position.
	cp2 := []spool.Checkpoint{{Source: "file app", Position: []byte("offset 20")}}
	require.NoError(t, emitErr(g.emit(ctx, "files.app", []event.Event{rec("noise 3")}, cp2)))
	// Another input's records do not pass files.app's chain.
	require.NoError(t, emitErr(g.emit(ctx, "syslog", []event.Event{rec("noise from syslog")}, nil)))
	g.actions.Wait()

	pos, err := g.spool.Checkpoint("file app")
	require.NoError(t, err)
	require.Equal(t, "offset 20", string(pos))
	recs, err := g.spool.Read(0, 100, 0)
	require.NoError(t, err)
	var msgs []string
	var alert event.Event
	for _, r := range recs {
		var ev event.Event
		require.NoError(t, ev.UnmarshalBinary(r.Data))
		if ev.Source == rules.AlertSource {
			alert = ev
			continue
		}
		msgs = append(msgs, ev.Message)
	}
	require.Equal(t, []string{"login pw=***", "noise from syslog"}, msgs)
	require.NotEmpty(t, alert.Message, "the rules counted the records the processors dropped")
	for _, f := range alert.Fields {
		if f.Key == "first_seq" || f.Key == "last_seq" {
			require.Equal(t, "0", f.Value.String(), "%s names a record that was not spooled", f.Key)
		}
	}
	st := g.procs.Load().status()
	require.Len(t, st, 2)
	require.Equal(t, "files.app", st[1].Chain)
	require.Equal(t, uint64(4), st[1].Steps[0].In)
	require.Equal(t, uint64(3), st[1].Steps[0].Dropped)
	require.Equal(t, uint64(1), st[0].Steps[0].Changed)
}

// TestReloadProcessors: a processors section changed on a reload is
// taken in place, no input restarted; one that does not compile refuses
// the whole reload and the chains in force stay.
func TestReloadProcessors(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	logs := t.TempDir()
	body := func(contains string) string {
		return fmt.Sprintf(`gateway: {id: gw-procs}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
inputs:
  files:
    - {name: app, paths: ["%s/app.log"], start_at: beginning, poll_interval: 20ms}
processors:
  inputs:
    files.app:
      - drop: {match: {message: {regex: '%s'}}}
`, data, logs, contains)
	}
	file := writeConfig(t, body("noise"))
	g, _ := reloadGateway(t, file, data)
	tailer := tailerNamed(g, "app")
	drops := func(msg string) bool {
		evs := g.procs.Load().apply("files.app", []event.Event{{Source: "app", Severity: event.SevInfo, Message: msg}}, nil)
		return len(evs) == 0
	}
	require.True(t, drops("noise"))

	res := reloadFile(t, g, file, body("chatter"))
	require.Equal(t, ReloadOK, res.Result, res.Error)
	require.Equal(t, []string{"processors: updated"}, res.Changed)
	require.False(t, drops("noise"))
	require.True(t, drops("chatter"))
	require.Same(t, tailer, tailerNamed(g, "app"), "the file input was not restarted")

	// A reload that leaves a chain's steps alone keeps the chain, with
	// its counts (and deadband state): only a changed chain starts again.
	before := g.procs.Load().inputs["files.app"]
	in0 := before.Stats()[0].In
	require.NotZero(t, in0)
	res = reloadFile(t, g, file, body("chatter")+"  global:\n    - truncate: {field: message, max_bytes: 100}\n")
	require.Equal(t, ReloadOK, res.Result, res.Error)
	require.Same(t, before, g.procs.Load().inputs["files.app"], "an unchanged chain is kept")
	require.Equal(t, in0, g.procs.Load().inputs["files.app"].Stats()[0].In)
	require.Equal(t, 1, g.procs.Load().global.Len())

	res = reloadFile(t, g, file, body("(unclosed"))
	require.Equal(t, ReloadRefused, res.Result)
	require.Contains(t, res.Error, "processors.inputs.files.app[0].drop.match.message.regex")
	require.True(t, drops("chatter"), "the chains in force stay")
}

// TestProcessorCounts: each step's counts reach Prometheus and the
// telemetry record, named by chain, index and type.
func TestProcessorCounts(t *testing.T) {
	g := newTestGateway(t, gatewayConfig(t, t.TempDir(), `processors:
  global:
    - drop: {match: {message: {equals: noise}}}
    - truncate: {field: message, max_bytes: 3}
`))
	evs := []event.Event{{Source: "a", Severity: event.SevInfo, Message: "noise"}, {Source: "a", Severity: event.SevInfo, Message: "signal"}}
	require.Len(t, g.procs.Load().apply("", evs, nil), 1)
	reg := prometheus.NewRegistry()
	reg.MustRegister(processorsCollector{g})
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP weir_processor_dropped_records_total Records a processor step dropped (drop, keep, sample, deadband).
# TYPE weir_processor_dropped_records_total counter
weir_processor_dropped_records_total{chain="global",step="0",type="drop"} 1
weir_processor_dropped_records_total{chain="global",step="1",type="truncate"} 0
# HELP weir_processor_changed_records_total Records a processor step changed.
# TYPE weir_processor_changed_records_total counter
weir_processor_changed_records_total{chain="global",step="0",type="drop"} 0
weir_processor_changed_records_total{chain="global",step="1",type="truncate"} 1
`), "weir_processor_dropped_records_total", "weir_processor_changed_records_total"))
	ev, ok := processorTelemetry(g.procs.Load().status())
	require.True(t, ok)
	fields := map[string]string{}
	for _, f := range ev.Fields {
		fields[f.Key] = f.Value.String()
	}
	require.Equal(t, "2", fields["global.0.drop.in"])
	require.Equal(t, "1", fields["global.0.drop.dropped"])
	require.Equal(t, "1", fields["global.1.truncate.changed"])
	require.Equal(t, "weir:processors", ev.Source)
}

// TestEmitRetryAfterProcessors: a batch the spool did not take is
// emitted again by its source as it made it: the processors worked on a
// copy, so nothing of it was dropped, zeroed or redacted twice; and the
// deadband reports the next reading rather than compare it with one the
// spool never held.
func TestEmitRetryAfterProcessors(t *testing.T) {
	dir := t.TempDir()
	g := newTestGateway(t, gatewayConfig(t, filepath.Join(dir, "data"), `processors:
  global:
    - drop: {match: {message: {equals: noise}}}
    - redact: {regex: 'pw=(\S+)', with: hmac, hmac_key: 0123456789abcdef}
    - deadband: {percent: 1, heartbeat: 1h}
`))
	var err error
	g.spool, err = spool.Open(spool.Options{Dir: filepath.Join(dir, "spool"), Logger: g.log})
	require.NoError(t, err)
	ctx := context.Background()
	logRec := func(m string) event.Event {
		return event.Event{Source: "app", Kind: event.KindLog, Severity: event.SevInfo, Message: m}
	}
	reading := func(v float64) event.Event {
		return event.Event{Source: "modbus:pt1", Kind: event.KindReading, Severity: event.SevInfo, Time: 1, Fields: []event.Field{event.Float("level", v)}}
	}
	require.NoError(t, g.Emit(ctx, []event.Event{reading(100)}, nil))
	// The spool refuses the next batch (closed), which holds a step.
	require.NoError(t, g.spool.Close())
	batch := []event.Event{logRec("noise"), logRec("login pw=hunter2"), reading(150)}
	require.Error(t, g.Emit(ctx, batch, nil))
	require.Equal(t, "noise", batch[0].Message, "the source's batch is as it made it")
	require.Equal(t, "login pw=hunter2", batch[1].Message)
	require.Equal(t, event.KindReading, batch[2].Kind)

	g.spool, err = spool.Open(spool.Options{Dir: filepath.Join(dir, "spool"), Logger: g.log})
	require.NoError(t, err)
	defer g.spool.Close()
	require.NoError(t, g.Emit(ctx, batch, nil))
	recs, err := g.spool.Read(0, 100, 0)
	require.NoError(t, err)
	var got []string
	for _, r := range recs {
		var ev event.Event
		require.NoError(t, ev.UnmarshalBinary(r.Data))
		if ev.Kind == event.KindReading {
			got = append(got, ev.Fields[0].Value.String())
			continue
		}
		got = append(got, ev.Message)
	}
	require.Len(t, got, 3)
	require.Equal(t, "100", got[0])
	require.Regexp(t, `^login pw=hmac:[0-9a-f]{24}$`, got[1])
	require.Equal(t, "150", got[2], "the step, spooled on the retry")
}

// emitErr is emit's error alone.
func emitErr(_ uint64, err error) error { return err }
