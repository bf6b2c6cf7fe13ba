package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

// fleetBed is a gateway running in-process with remote configuration
// on, delivering to an in-process collector.
type fleetBed struct {
	t    *testing.T
	g    *Gateway
	coll *testCollector
	file string
	data string
	logs string
	key  ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// fleetConfig is the gateway's local file: one tailed file, the
// collector's uplink, the fleet key pinned.
func (fb *fleetBed) fleetConfig(extra string) string {
	return fmt.Sprintf(`gateway: {id: gw-fleet}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
inputs:
  files:
    - {name: app, paths: [%s/app.log], start_at: beginning, poll_interval: 20ms}
fleet:
  keys: [%q]
  labels: {site: north}
  health_timeout: 2s
%s%s`, fb.data, fb.logs, pki.FormatFleetKey(fb.pub), fb.coll.uplinkYAML("gw-fleet"), extra)
}

func newFleetBed(t *testing.T) *fleetBed {
	fb := &fleetBed{t: t, coll: newTestCollector(t, "gw-fleet"), data: filepath.Join(t.TempDir(), "data"), logs: t.TempDir()}
	var err error
	fb.pub, fb.key, err = ed25519.GenerateKey(nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(fb.logs, "app.log"), []byte("one\n"), 0o600))
	fb.coll.start()
	fb.file = writeConfig(t, fb.fleetConfig(""))
	return fb
}

// start runs the gateway as `weir run` does: LoadInForce, the bundle in
// force named.
func (fb *fleetBed) start() {
	t := fb.t
	l, err := LoadInForce(fb.file, true)
	require.NoError(t, err)
	g, err := New(l.Config, "test", slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	require.NoError(t, err)
	g.SetConfigFile(l.File)
	g.SetFleetBundle(l.Bundle)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			require.NoError(t, <-done)
		}
	})
	require.Eventually(t, g.ready.Load, 20*time.Second, 10*time.Millisecond, "the gateway did not start")
	fb.g = g
}

func (fb *fleetBed) sign(doc string) []byte {
	raw, err := pki.SignBundle([]byte(doc), fb.key)
	require.NoError(fb.t, err)
	return raw
}

func bundleDoc(version uint64, target, config string) string {
	return fmt.Sprintf("version: %d\ntarget: %s\nconfig:\n%s", version, target, config)
}

// deliver hands a bundle to the gateway as a session would once pulled,
// and waits for its outcome.
func (fb *fleetBed) deliver(raw []byte, version uint64) FleetResult {
	fb.t.Helper()
	fb.g.fleet.Pulled(uplink.ConfigBundle{Version: version, Bundle: raw}, "test")
	return fb.waitLast(version)
}

func (fb *fleetBed) waitLast(version uint64) FleetResult {
	fb.t.Helper()
	var last FleetResult
	require.Eventually(fb.t, func() bool {
		st := fb.g.fleet.status()
		if st.Last == nil || st.Last.Version != version || st.Last.Result == uplink.ConfigApplying {
			return false
		}
		last = *st.Last
		return true
	}, 30*time.Second, 10*time.Millisecond, "no outcome for bundle v%d", version)
	return last
}

// TestFleetRefusals: every bundle a gateway must not take is refused
// with its reason, reported in its status, to the collectors
// (ConfigStatus) and as a weir:fleet record, and changes nothing.
func TestFleetRefusals(t *testing.T) {
	fb := newFleetBed(t)
	fb.start()
	good := fb.sign(bundleDoc(5, "{gateways: [gw-fleet]}", "  telemetry_interval: 30m\n"))
	require.Equal(t, uplink.ConfigApplied, fb.deliver(good, 5).Result)
	gen := fb.g.now().gen
	require.Equal(t, 30*time.Minute, fb.g.now().cfg.TelemetryInterval)

	_, otherKey, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	byOther, err := pki.SignBundle([]byte(bundleDoc(6, "{gateways: [gw-fleet]}", "  telemetry_interval: 5m\n")), otherKey)
	require.NoError(t, err)
	tampered := fb.sign(bundleDoc(7, "{gateways: [gw-fleet]}", "  telemetry_interval: 5m\n"))
	tampered = []byte(strings.Replace(string(tampered), "5m", "6m", 1))
	big := fb.sign(bundleDoc(99, "{gateways: [gw-fleet]}", "  telemetry_interval: 5m\n"+"# "+strings.Repeat("x", 100)+"\n"))
	big = append([]byte(strings.Repeat("#\n", uplink.MaxBundleBytes/2)), big...)

	cases := []struct {
		name    string
		raw     []byte
		version uint64
		want    string
	}{
		{"bad signature", tampered, 7, "bad signature by key " + pki.FleetKeyID(fb.pub)},
		{"unknown key", byOther, 6, "signed by a key this gateway does not pin"},
		{"equal version", good, 5, "version 5 is not newer than 5"},
		{"older version", fb.sign(bundleDoc(4, "{gateways: [gw-fleet]}", "  telemetry_interval: 5m\n")), 4, "version 4 is not newer than 5"},
		{"another gateway", fb.sign(bundleDoc(8, "{gateways: [gw-other], labels: {site: south}}", "  telemetry_interval: 5m\n")), 8,
			"targeted at gw-other,site=south, not for this gateway (gateway gw-fleet with labels site=north)"},
		{"protected key", fb.sign(bundleDoc(9, "{labels: {site: north}}", "  uplink:\n    tls: {ca: /tmp/other-ca.pem}\n")), 9,
			"sets protected keys (uplink.tls.ca)"},
		{"protected key in capitals", fb.sign(bundleDoc(10, "{gateways: [gw-fleet]}", "  Console: {Password_Hash: x}\n")), 10,
			"sets protected keys (console.password_hash)"},
		{"the fleet keys", fb.sign(bundleDoc(11, "{gateways: [gw-fleet]}", "  fleet: {keys: []}\n")), 11, "sets protected keys (fleet.keys)"},
		{"a section holding a protected key", fb.sign(bundleDoc(12, "{gateways: [gw-fleet]}", "  uplink: null\n")), 12, "sets protected keys (uplink)"},
		{"larger than the limit", big, 99, "larger than the 262144-byte limit"},
		{"invalid YAML", fb.sign("version: 13\ntarget: {gateways: [gw-fleet]\n"), 13, "invalid YAML"},
		{"a value the schema refuses", fb.sign(bundleDoc(14, "{gateways: [gw-fleet]}", "  inputs:\n    files:\n      - {name: app, paths: [/x], poll_interval: fast}\n")), 14,
			"fleet bundle v14:6:"},
		{"an unknown key", fb.sign(bundleDoc(15, "{gateways: [gw-fleet]}", "  uplnk: {}\n")), 15, "unknown key `uplnk`"},
		{"a key only a restart applies", fb.sign(bundleDoc(16, "{gateways: [gw-fleet]}", "  spool: {max_bytes: 768MiB}\n")), 16,
			"needs a restart: spool.max_bytes"},
		{"no uplink left", fb.sign(bundleDoc(17, "{gateways: [gw-fleet]}", "  uplink: {endpoints: []}\n")), 17, "leaves the uplink without an endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			changed := fb.g.fleet.Changed()
			r := fb.deliver(c.raw, c.version)
			require.Equal(t, uplink.ConfigRefused, r.Result, r.Error)
			require.Contains(t, r.Error, c.want)
			select {
			case <-changed:
			default:
				t.Fatal("the collectors are not told")
			}
			st := fb.g.fleet.ConfigStatus()
			require.Equal(t, uplink.ConfigRefused, st.Result)
			require.Equal(t, uint64(5), st.Applied)
			require.Equal(t, gen, fb.g.now().gen, "nothing applied")
		})
	}
	st := fb.g.fleet.status()
	require.Equal(t, uint64(17), st.Highest, "a signed bundle for this gateway that could not be taken spends its version; the others do not")

	// Offers refused without pulling: not newer, too large; an offer of
	// a bundle refused before is not pulled again, nor reported again.
	require.False(t, fb.g.fleet.Offered(uplink.ConfigOffer{Version: 3, Size: 100}, "test"))
	require.Contains(t, fb.waitLast(3).Error, "version 3 is not newer than 17")
	require.False(t, fb.g.fleet.Offered(uplink.ConfigOffer{Version: 40, Size: uplink.MaxBundleBytes + 1, Digest: uplink.Digest{1}}, "test"))
	require.Contains(t, fb.waitLast(40).Error, "over the 262144-byte limit")
	require.False(t, fb.g.fleet.Offered(uplink.ConfigOffer{Version: 41, Size: uint64(len(byOther)), Digest: uplink.DigestOf(byOther)}, "test"))
	require.True(t, fb.g.fleet.Offered(uplink.ConfigOffer{Version: 41, Size: 100, Digest: uplink.Digest{2}}, "test"))

	// Each refusal is a record the collector gets, with the fields the
	// fleet page reads.
	recs := fb.coll.waitRecords(t, "the refusals' records", func(rs []spooled) bool { return len(find(rs, "weir:fleet", "refused")) >= len(cases)+2 })
	var withReason int
	for _, r := range find(recs, "weir:fleet", "refused") {
		require.Equal(t, "warning", r.Severity)
		require.EqualValues(t, 5, r.Fields["config_version"], "the version in force")
		require.Equal(t, uplink.ConfigRefused, r.Fields["config_result"])
		if r.Fields["config_error"] != "" {
			withReason++
		}
	}
	require.Equal(t, len(find(recs, "weir:fleet", "refused")), withReason)
}

// TestFleetApplyAndRollBack: a good bundle is applied live, checked and
// kept (the next start runs it); one that points the uplink at a port
// nobody listens on fails its health check and is rolled back within
// the timeout, the uplink delivering again on the configuration before.
func TestFleetApplyAndRollBack(t *testing.T) {
	fb := newFleetBed(t)
	fb.start()
	v1 := fb.sign(bundleDoc(1, "{labels: {site: north}}", "  inputs:\n    files:\n      - {name: app, paths: ["+fb.logs+"/app.log], start_at: beginning, poll_interval: 50ms}\n"+
		"  uplink: {batch_max_records: 500, flush_interval: 30ms}\n"))
	r := fb.deliver(v1, 1)
	require.Equal(t, uplink.ConfigApplied, r.Result, r.Error)
	cfg := fb.g.now().cfg
	require.Equal(t, 50*time.Millisecond, cfg.Inputs.Files[0].PollInterval)
	require.Equal(t, 500, cfg.Uplink.BatchMaxRecords)
	require.Equal(t, "test "+filepath.Base(fb.file), "test "+filepath.Base(fb.file))
	cur, err := os.ReadFile(filepath.Join(fb.data, "fleet", "current.bundle"))
	require.NoError(t, err)
	require.Equal(t, v1, cur)
	_, err = os.Stat(filepath.Join(fb.data, "fleet", "staged.bundle"))
	require.ErrorIs(t, err, os.ErrNotExist)
	l, err := LoadInForce(fb.file, true)
	require.NoError(t, err)
	require.Equal(t, uint64(1), l.Bundle.Version, "the next start takes it")
	require.Equal(t, 500, l.Uplink.BatchMaxRecords)
	require.Contains(t, l.Source(), "with fleet bundle v1")

	dead := freePort(t)
	v2 := fb.sign(bundleDoc(2, "{gateways: [gw-fleet]}", fmt.Sprintf("  uplink:\n    endpoints: [{address: %q, server_name: localhost}]\n    connect_timeout: 200ms\n", dead)))
	start := time.Now()
	r = fb.deliver(v2, 2)
	took := time.Since(start)
	require.Equal(t, uplink.ConfigRolledBack, r.Result)
	require.Contains(t, r.Error, "the uplink did not deliver a record within 2s")
	require.Less(t, took, 10*time.Second)
	t.Logf("rolled back %s after the bundle arrived (health_timeout 2s)", took.Round(time.Millisecond))
	require.Equal(t, fb.coll.addr, fb.g.now().cfg.Uplink.Endpoints[0].Address, "the uplink before is back")
	require.Equal(t, 500, fb.g.now().cfg.Uplink.BatchMaxRecords, "v1's settings, whole")
	st := fb.g.fleet.status()
	require.Equal(t, uint64(1), st.Applied)
	require.Equal(t, uint64(2), st.Highest)
	cur, err = os.ReadFile(filepath.Join(fb.data, "fleet", "current.bundle"))
	require.NoError(t, err)
	require.Equal(t, v1, cur, "the bundle in force on disk is still v1")
	require.Eventually(t, func() bool {
		s := fb.g.now().sender.Status()
		return s.State == "connected" && s.RecordsAcked > 0
	}, 20*time.Second, 20*time.Millisecond, "the uplink delivers again")
}

// TestLoadInForce: the next start takes the bundle in force whole, or
// none of it: a bundle staged and never kept is not taken, and one that
// no longer checks out against the file (altered, its key no longer
// pinned, its target no longer this gateway) leaves the file alone in
// force, with a warning.
func TestLoadInForce(t *testing.T) {
	fb := &fleetBed{t: t, coll: newTestCollector(t, "gw-fleet"), data: filepath.Join(t.TempDir(), "data"), logs: t.TempDir()}
	var err error
	fb.pub, fb.key, err = ed25519.GenerateKey(nil)
	require.NoError(t, err)
	fb.file = writeConfig(t, fb.fleetConfig(""))
	dir := filepath.Join(fb.data, "fleet")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	v3 := fb.sign(bundleDoc(3, "{gateways: [gw-fleet]}", "  telemetry_interval: 2h\n"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "current.bundle"), v3, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "staged.bundle"), fb.sign(bundleDoc(4, "{gateways: [gw-fleet]}", "  telemetry_interval: 3h\n")), 0o600))

	l, err := LoadInForce(fb.file, true)
	require.NoError(t, err)
	require.Equal(t, uint64(3), l.Bundle.Version)
	require.Equal(t, 2*time.Hour, l.TelemetryInterval, "the bundle kept, not the one staged")
	require.Empty(t, l.Warnings)

	for _, c := range []struct {
		name  string
		file  string
		bytes []byte
		want  string
	}{
		{"altered on disk", fb.fleetConfig(""), []byte(strings.Replace(string(v3), "2h", "9h", 1)), "bad signature"},
		{"key no longer pinned", strings.Replace(fb.fleetConfig(""), pki.FormatFleetKey(fb.pub), pki.FormatFleetKey(make([]byte, 32)), 1), v3, "does not pin"},
		{"no longer this gateway", strings.Replace(fb.fleetConfig(""), "id: gw-fleet", "id: gw-renamed", 1), v3, "not for this gateway"},
		{"a key protected since", fb.fleetConfig("") + "", fb.sign(bundleDoc(3, "{gateways: [gw-fleet]}", "  metrics: {listen: \"127.0.0.1:0\"}\n")), "needs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := writeConfig(t, c.file)
			if c.name == "a key protected since" {
				file = writeConfig(t, strings.Replace(c.file, "health_timeout: 2s", "health_timeout: 2s\n  protected: [metrics]", 1))
				c.want = "sets protected keys (metrics.listen)"
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, "current.bundle"), c.bytes, 0o600))
			l, err := LoadInForce(file, true)
			require.NoError(t, err)
			require.Nil(t, l.Bundle)
			require.Equal(t, time.Hour, l.TelemetryInterval, "the file alone")
			require.Len(t, l.Warnings, 1)
			require.Contains(t, l.Warnings[0], "the local file alone is in force")
			require.Contains(t, l.Warnings[0], c.want)
		})
	}
}

// TestFleetInterruptedApply: a gateway that stopped while applying a
// bundle (its staged file there, state.json saying so) starts on the
// bundle before it, whole, drops the staged one and reports it rolled
// back; its version is spent.
func TestFleetInterruptedApply(t *testing.T) {
	fb := newFleetBed(t)
	dir := filepath.Join(fb.data, "fleet")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "current.bundle"), fb.sign(bundleDoc(3, "{gateways: [gw-fleet]}", "  telemetry_interval: 2h\n")), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "staged.bundle"), fb.sign(bundleDoc(4, "{gateways: [gw-fleet]}", "  telemetry_interval: 3h\n")), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"highest": 3, "last": {"version": 4, "result": "applying"}}`), 0o600))
	fb.start()
	require.Equal(t, 2*time.Hour, fb.g.now().cfg.TelemetryInterval)
	st := fb.g.fleet.status()
	require.Equal(t, uint64(3), st.Applied)
	require.Equal(t, uint64(4), st.Highest)
	require.Equal(t, uplink.ConfigRolledBack, st.Last.Result)
	require.Contains(t, st.Last.Error, "interrupted")
	_, err := os.Stat(filepath.Join(dir, "staged.bundle"))
	require.ErrorIs(t, err, os.ErrNotExist)
	recs := fb.coll.waitRecords(t, "the interrupted bundle's record", func(rs []spooled) bool { return len(find(rs, "weir:fleet", "rolled_back")) == 1 })
	r := find(recs, "weir:fleet", "rolled_back")[0]
	require.EqualValues(t, 3, r.Fields["config_version"])
	require.EqualValues(t, 4, r.Fields["bundle_version"])
}

// waitRecords reads the collector's sink until want holds.
func (c *testCollector) waitRecords(t *testing.T, what string, want func([]spooled) bool) []spooled {
	t.Helper()
	var recs []spooled
	require.Eventually(t, func() bool {
		recs = recs[:0]
		b, err := os.ReadFile(c.sink)
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(b), "\n") {
			var r spooled
			if json.Unmarshal([]byte(line), &r) == nil {
				recs = append(recs, r)
			}
		}
		return want(recs)
	}, 20*time.Second, 20*time.Millisecond, "no %s at the collector", what)
	return recs
}

func TestFleetConfigValidate(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	ok := FleetConfig{Keys: []string{pki.FormatFleetKey(pub)}, Labels: map[string]string{"site": "north"},
		Protected: []string{"inputs.syslog", "inputs.files[0].paths", "outputs"}, HealthTimeout: time.Minute}
	require.NoError(t, ok.Validate())
	for _, c := range []struct {
		change func(*FleetConfig)
		want   string
	}{
		{func(c *FleetConfig) { c.Keys = []string{"ssh-ed25519 AAAA"} }, "keys[0]: \"ssh-ed25519 AAAA\" is not an ed25519 public key"},
		{func(c *FleetConfig) { c.Labels = map[string]string{"a=b": "x"} }, "a label's name"},
		{func(c *FleetConfig) { c.Labels = map[string]string{"site": "a,b"} }, "labels.site"},
		{func(c *FleetConfig) { c.Protected = []string{"uplink.tsl"} }, "protected[0]: \"uplink.tsl\" is not a key"},
		{func(c *FleetConfig) { c.HealthTimeout = 0 }, "health_timeout: 0s is outside 1s..1h"},
	} {
		cfg := ok
		c.change(&cfg)
		require.ErrorContains(t, cfg.Validate(), c.want)
	}
}

// TestFleetReofferAfterRollback: the collector offers a rolled-back
// bundle again on the session the rollback reconnected. It is neither
// pulled nor refused: a refusal ("not newer") would overwrite the
// rollback the gateway reported, which is what its operator must see.
func TestFleetReofferAfterRollback(t *testing.T) {
	a := &fleetAgent{log: slog.New(slog.DiscardHandler), inbox: make(chan fleetItem, 1), g: &Gateway{}}
	a.g.live.Store(&pipeline{cfg: Config{Fleet: FleetConfig{Keys: []string{"ed25519:x"}}}})
	a.st.Highest, a.st.Last = 2, FleetResult{Version: 2, Result: uplink.ConfigRolledBack}
	require.False(t, a.Offered(uplink.ConfigOffer{Version: 2, Size: 100, Digest: uplink.Digest{7}}, "test"))
	require.Empty(t, a.inbox, "no refusal reported")
	require.False(t, a.Offered(uplink.ConfigOffer{Version: 1, Size: 100, Digest: uplink.Digest{8}}, "test"))
	require.Len(t, a.inbox, 1, "an older one is refused and reported")
}
