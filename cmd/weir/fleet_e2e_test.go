package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/pki"
)

// These tests push configuration bundles through the real collector to
// the real gateway: signed with `weir-collector fleet sign`, pushed with
// `fleet push` into the directory the collector serves, pulled over the
// uplink session, applied by `weir run`.

// fleetE2E is an e2e bed with remote configuration on: a fleet key in
// the PKI directory, pinned by the gateway's file; the collector serves
// fleetDir.
type fleetE2E struct {
	*e2e
	fleetDir string
	pub      string // the pinned key, "ed25519:..."
	sock     string
	bundles  int
}

// fleetHealthTimeout is the gateway's fleet.health_timeout in these tests.
const fleetHealthTimeout = 3 * time.Second

func setupFleet(t *testing.T) *fleetE2E {
	e := setup(t)
	fe := &fleetE2E{e2e: e, fleetDir: filepath.Join(e.dir, "fleet-config"), sock: filepath.Join(e.dir, "data", "weir.sock")}
	e.run(e.coll, "pki", "fleet-key", "--dir", e.pki)
	key, err := pki.ReadFleetKey(filepath.Join(e.pki, pki.FleetPubFile))
	require.NoError(t, err)
	fe.pub = pki.FormatFleetKey(key)
	fi, err := os.Stat(filepath.Join(e.pki, pki.FleetKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the fleet's private key")
	// The local file: its settings are those of "version 0" in
	// versionConfig, so that every configuration the gateway can run is
	// one of a family whose members tell their version by each value.
	cfg := fmt.Sprintf(`gateway:
  id: gw-e2e
data_dir: %[1]s/data
telemetry_interval: 1h
metrics:
  listen: ""
inputs:
  files:
    - {name: app, paths: ["%[1]s/logs/app.log"], start_at: beginning, poll_interval: 20ms}
uplink:
  endpoints:
    - address: %[2]s
      server_name: localhost
  tls:
    ca: %[3]s/ca.pem
    cert: %[3]s/gateway-gw-e2e.pem
    key: %[3]s/gateway-gw-e2e-key.pem
  reconnect_min: 50ms
  reconnect_max: 200ms
  batch_max_records: 100
  flush_interval: 10ms
fleet:
  keys: [%[4]q]
  labels: {site: north}
  health_timeout: %[5]s
`, e.dir, e.addr, e.pki, fe.pub, fleetHealthTimeout)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	return fe
}

// startCollector runs a collector on the gateway's endpoint serving
// fleetDir; name tells its log apart.
func (fe *fleetE2E) startCollector(name, fleetDir string) func() {
	return fe.start(name, fe.coll, "run", "--listen", fe.addr, "--ca", fe.pki+"/ca.pem",
		"--cert", fe.pki+"/collector-localhost.pem", "--key", fe.pki+"/collector-localhost-key.pem", "--sink", fe.sink,
		"--fleet-dir", fleetDir, "--fleet-check", "100ms")
}

// versionConfig is the config section of bundle n: each value tells n,
// so a configuration in force that mixed two bundles shows.
func (fe *fleetE2E) versionConfig(n int) string {
	return fmt.Sprintf(`  telemetry_interval: %dm
  inputs:
    files:
      - {name: app, paths: ["%s/logs/app.log"], start_at: beginning, poll_interval: %dms}
  uplink:
    batch_max_records: %d
    flush_interval: %dms
`, 60+n, fe.dir, 20+n, 100+n, 10+n)
}

// push signs a bundle with the fleet key (keyDir's) and pushes it into
// dir, as an operator does.
func (fe *fleetE2E) push(version int, target, config, keyDir, dir string) {
	fe.t.Helper()
	fe.bundles++
	file := filepath.Join(fe.dir, fmt.Sprintf("bundle-%d-%d.yaml", version, fe.bundles))
	doc := fmt.Sprintf("version: %d\ntarget: %s\nconfig:\n%s", version, target, config)
	require.NoError(fe.t, os.WriteFile(file, []byte(doc), 0o600))
	fe.run(fe.coll, "fleet", "sign", file, "--key", filepath.Join(keyDir, pki.FleetKeyFile))
	fe.run(fe.coll, "fleet", "push", file+".signed", "--dir", dir, "--pub", filepath.Join(keyDir, pki.FleetPubFile))
}

// fleetRows is `weir-collector fleet status --json` of dir.
func (fe *fleetE2E) fleetRows(dir string) map[string]fleetRow {
	fe.t.Helper()
	var rows []fleetRow
	require.NoError(fe.t, json.Unmarshal([]byte(fe.run(fe.coll, "fleet", "status", "--dir", dir, "--json")), &rows))
	out := map[string]fleetRow{}
	for _, r := range rows {
		out[r.Gateway] = r
	}
	return out
}

type fleetRow struct {
	Gateway string            `json:"gateway"`
	Desired uint64            `json:"desired"`
	Report  *collector.Report `json:"report"`
}

// reported waits until the collector serving dir has a report from the
// gateway on bundle version with a result other than applying.
func (fe *fleetE2E) reported(dir string, version uint64) collector.Report {
	fe.t.Helper()
	var rep collector.Report
	require.Eventually(fe.t, func() bool {
		r := fe.fleetRows(dir)["gw-e2e"].Report
		if r == nil || r.Version != version || r.Result == uplink.ConfigApplying || r.Result == "" {
			return false
		}
		rep = *r
		return true
	}, 30*time.Second, 50*time.Millisecond, "no report of bundle v%d at the collector", version)
	return rep
}

// configView is `weir config show --json`: the configuration in force.
func (fe *fleetE2E) configView() gateway.ConfigView {
	fe.t.Helper()
	var v gateway.ConfigView
	require.NoError(fe.t, json.Unmarshal([]byte(fe.run(fe.weir, "config", "show", "--json", "--socket", fe.sock)), &v))
	return v
}

// versionOf says which member of the versionConfig family cfg is, and
// fails unless every value says the same.
func versionOf(t *testing.T, cfg map[string]any) int {
	t.Helper()
	up := cfg["uplink"].(map[string]any)
	n := int(up["batch_max_records"].(float64)) - 100
	dur := func(v any) time.Duration {
		d, err := time.ParseDuration(fmt.Sprint(v))
		require.NoError(t, err)
		return d
	}
	files := cfg["inputs"].(map[string]any)["files"].([]any)
	require.Len(t, files, 1)
	got := map[string]time.Duration{
		"telemetry_interval":       dur(cfg["telemetry_interval"]),
		"inputs.files.app.poll":    dur(files[0].(map[string]any)["poll_interval"]),
		"uplink.flush_interval":    dur(up["flush_interval"]),
		"uplink.batch_max_records": time.Duration(n),
	}
	want := map[string]time.Duration{
		"telemetry_interval":       time.Duration(60+n) * time.Minute,
		"inputs.files.app.poll":    time.Duration(20+n) * time.Millisecond,
		"uplink.flush_interval":    time.Duration(10+n) * time.Millisecond,
		"uplink.batch_max_records": time.Duration(n),
	}
	require.Equal(t, want, got, "a configuration mixed from two versions (batch_max_records says %d)", n)
	eps := up["endpoints"].([]any)
	require.Len(t, eps, 1)
	return n
}

// lineWriter appends numbered lines to a file in bursts until stopped.
type lineWriter struct {
	written atomic.Int64
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startLineWriter(t *testing.T, path string) *lineWriter {
	w := &lineWriter{stop: make(chan struct{})}
	w.wg.Go(func() {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		bw := bufio.NewWriter(f)
		for i := 0; ; i++ {
			fmt.Fprintf(bw, "app line %d\n", i)
			if i%20 != 19 {
				continue
			}
			_ = bw.Flush()
			w.written.Store(int64(i + 1))
			select {
			case <-w.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return w
}

// finish stops the writer and returns how many lines it wrote.
func (w *lineWriter) finish() int {
	close(w.stop)
	w.wg.Wait()
	return int(w.written.Load())
}

// exactlyOnce waits until the sink holds every line written, then
// fails on a line lost, repeated or never written; it returns the
// sink's records.
func (fe *fleetE2E) exactlyOnce(written int) []sinkRecord {
	t := fe.t
	t.Helper()
	require.Positive(t, written)
	lines := func(recs []sinkRecord) map[string]int {
		count := map[string]int{}
		for _, r := range recs {
			if r.Kind == "log" {
				count[r.Message]++
			}
		}
		return count
	}
	require.Eventually(t, func() bool { return len(lines(fe.allSinkRecords())) >= written }, 60*time.Second, 100*time.Millisecond,
		"want %d lines at the collector", written)
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
	recs := fe.allSinkRecords()
	count := lines(recs)
	var lost, twice int
	for i := range written {
		switch count[fmt.Sprintf("app line %d", i)] {
		case 0:
			lost++
		case 1:
		default:
			twice++
		}
	}
	require.Zero(t, lost, "lines lost")
	require.Zero(t, twice, "lines delivered twice")
	require.Len(t, count, written, "lines nobody wrote")
	return recs
}

// TestFleetPushUnderLoad is the acceptance test of remote configuration
// with the real binaries, a file written without pause throughout:
//
//   - a bundle that changes the tailed input and the uplink's settings
//     is applied live, reported applied at the collector, shown by weir
//     status and weir config show;
//   - a bundle that points the uplink at a port nobody listens on is
//     rolled back once its health check fails (fleet.health_timeout),
//     and the failure reaches the original collector (fleet status);
//   - a second collector, with the collector's own certificate but
//     without the fleet key, offers a bundle signed by a key of its own:
//     refused, nothing changes;
//
// and at the end every line written is at the collector exactly once.
func TestFleetPushUnderLoad(t *testing.T) {
	fe := setupFleet(t)
	stopColl := fe.startCollector("collector", fe.fleetDir)
	fe.startGateway()
	w := startLineWriter(t, fe.logFile)
	defer func() {
		select {
		case <-w.stop:
		default:
			w.finish()
		}
	}()
	logLines := func() int {
		n := 0
		for _, r := range fe.allSinkRecords() {
			if r.Kind == "log" {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return logLines() > 200 }, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, 0, versionOf(t, fe.configView().Config))

	// 1. A good bundle, applied live under load.
	fe.push(1, "{gateways: [gw-e2e]}", fe.versionConfig(1), fe.pki, fe.fleetDir)
	rep := fe.reported(fe.fleetDir, 1)
	require.Equal(t, uplink.ConfigApplied, rep.Result, rep.Error)
	require.Equal(t, uint64(1), rep.Applied)
	v := fe.configView()
	require.Equal(t, 1, versionOf(t, v.Config))
	require.Equal(t, uint64(1), v.Fleet.Applied)
	require.Contains(t, v.Source, "fleet bundle v1")
	st := fe.status(fe.sock)
	require.Equal(t, uint64(1), st.Config.Fleet.Applied)
	require.Contains(t, fe.run(fe.weir, "status", "--socket", fe.sock), "fleet    bundle v1 in force (key "+st.Config.Fleet.KeyID+")")
	text := fe.run(fe.coll, "fleet", "status", "--dir", fe.fleetDir)
	require.Regexp(t, `gw-e2e\s+1\s+1\s+1\s+applied`, text)
	afterV1 := logLines()
	require.Eventually(t, func() bool { return logLines() > afterV1+200 }, 30*time.Second, 50*time.Millisecond,
		"lines flow on the new configuration")

	// 2. A bundle that cuts the uplink off: rolled back, reported to the
	// collector it came from once the uplink is back.
	dead := freeAddr(t)
	fe.push(2, "{labels: {site: north}}", fmt.Sprintf("  uplink:\n    endpoints: [{address: %q, server_name: localhost}]\n    connect_timeout: 200ms\n", dead), fe.pki, fe.fleetDir)
	var applyingAt time.Time
	require.Eventually(t, func() bool {
		l := fe.status(fe.sock).Config.Fleet.Last
		return l != nil && l.Version == 2
	}, 30*time.Second, 20*time.Millisecond, "bundle v2 not taken")
	applyingAt = time.Now()
	var last *gateway.FleetResult
	require.Eventually(t, func() bool {
		last = fe.status(fe.sock).Config.Fleet.Last
		return last.Result != uplink.ConfigApplying
	}, 3*fleetHealthTimeout, 20*time.Millisecond)
	took := time.Since(applyingAt)
	require.Equal(t, uplink.ConfigRolledBack, last.Result, last.Error)
	require.Contains(t, last.Error, fmt.Sprintf("the uplink did not deliver a record within %s", fleetHealthTimeout))
	require.Less(t, took, fleetHealthTimeout+2*time.Second, "rolled back within the health timeout (and the rollback's own reload)")
	t.Logf("bundle v2 (uplink at %s) rolled back %s after it was seen applying; health_timeout %s", dead, took.Round(10*time.Millisecond), fleetHealthTimeout)
	rep = fe.reported(fe.fleetDir, 2)
	require.Equal(t, uplink.ConfigRolledBack, rep.Result)
	require.Contains(t, rep.Error, "the uplink did not deliver a record")
	require.Equal(t, uint64(1), rep.Applied, "v1 in force again")
	require.Regexp(t, `gw-e2e\s+2\s+1\s+2\s+rolled_back\s+.*the uplink did not deliver a record`, fe.run(fe.coll, "fleet", "status", "--dir", fe.fleetDir))
	require.Equal(t, 1, versionOf(t, fe.configView().Config))
	require.Contains(t, fe.status(fe.sock).Uplink.Endpoint, fe.addr, "the uplink before is back")

	// 3. A second collector without the fleet key, in the first one's
	// place (its certificate stolen, say), offers a bundle of its own.
	stopColl()
	rogueKeys := filepath.Join(fe.dir, "rogue-pki")
	rogueDir := filepath.Join(fe.dir, "rogue-fleet")
	fe.run(fe.coll, "pki", "fleet-key", "--dir", rogueKeys)
	stopRogue := fe.startCollector("rogue", rogueDir)
	fe.push(50, "{gateways: [gw-e2e]}", fmt.Sprintf("  uplink:\n    endpoints: [{address: %q, server_name: localhost}]\n", dead), rogueKeys, rogueDir)
	rep = fe.reported(rogueDir, 50)
	require.Equal(t, uplink.ConfigRefused, rep.Result)
	require.Contains(t, rep.Error, "signed by a key this gateway does not pin")
	require.Equal(t, uint64(1), rep.Applied)
	require.Equal(t, uint64(2), rep.Highest, "a bundle that does not open spends no version")
	v = fe.configView()
	require.Equal(t, 1, versionOf(t, v.Config), "nothing changed")
	require.Equal(t, uint64(1), v.Fleet.Applied)
	stopRogue()
	fe.startCollector("collector-again", fe.fleetDir)

	written := w.finish()
	recs := fe.exactlyOnce(written)
	var results []string
	for _, r := range recs {
		if r.Source == "weir:fleet" && r.Fields["when"] == nil && r.Fields["check"] == nil {
			results = append(results, fmt.Sprintf("v%v %v", r.Fields["bundle_version"], r.Fields["config_result"]))
		}
	}
	require.Equal(t, []string{"v1 applied", "v2 rolled_back", "v50 refused"}, results, "each outcome a record at the collector")
	t.Logf("%d lines written and delivered exactly once across the apply, the rollback and the refusal", written)
}

// TestFleetApplyKilled: the gateway is SIGKILLed at random moments of
// 24 applies and started again at once. Half the kills come within
// 400ms of the push (before the pull, during the apply or after it),
// half within 60ms of the bundle's staged file appearing (the live
// reload, the health check, the rename). The disk is read between the
// kill and the start to tell where the kill landed. Each start must
// come up in one whole configuration (the one before the bundle, or the
// bundle's once it was kept; never a mix: every value of a bundle tells
// its version) with a working uplink, and report an apply it
// interrupted. At the end every line written is at the collector
// exactly once.
func TestFleetApplyKilled(t *testing.T) {
	fe := setupFleet(t)
	fe.startCollector("collector", fe.fleetDir)
	gw := &killable{t: t, bin: fe.weir, args: []string{"run", "--config", fe.config}, logPath: filepath.Join(fe.dir, "gateway.log")}
	gw.start()
	defer gw.kill()
	w := startLineWriter(t, fe.logFile)
	defer func() {
		select {
		case <-w.stop:
		default:
			w.finish()
		}
	}()
	statusNow := func() (gateway.Status, bool) {
		var st gateway.Status
		out, err := exec.Command(fe.weir, "status", "--json", "--socket", fe.sock).Output()
		return st, err == nil && json.Unmarshal(out, &st) == nil
	}
	up := func() {
		require.Eventually(t, func() bool { _, ok := statusNow(); return ok }, 30*time.Second, 10*time.Millisecond, "the gateway did not start")
	}
	// settled waits until the gateway is done with bundle n one way or
	// another and its uplink delivers; it returns the version in force.
	settled := func(n uint64) int {
		var st gateway.Status
		require.Eventually(t, func() bool {
			st = fe.status(fe.sock)
			f := st.Config.Fleet
			return f.Highest >= n && (f.Last == nil || f.Last.Result != uplink.ConfigApplying) &&
				st.Uplink.State == "connected" && st.Uplink.RecordsAcked > 0
		}, 60*time.Second, 20*time.Millisecond, "the gateway did not settle on bundle v%d", n)
		return int(st.Config.Fleet.Applied)
	}
	fleetFiles := filepath.Join(fe.dir, "data", "fleet")
	// phase reads the fleet directory of the stopped gateway: where in
	// bundle n's apply the kill landed.
	phase := func(n int) string {
		var state struct {
			Last gateway.FleetResult `json:"last"`
		}
		b, err := os.ReadFile(filepath.Join(fleetFiles, "state.json"))
		if err == nil {
			require.NoError(t, json.Unmarshal(b, &state))
		}
		_, err = os.Stat(filepath.Join(fleetFiles, "staged.bundle"))
		staged := err == nil
		current := 0
		if raw, err := os.ReadFile(filepath.Join(fleetFiles, "current.bundle")); err == nil {
			sb, err := pki.ParseSigned(raw)
			require.NoError(t, err, "current.bundle is whole")
			bd, err := pki.ParseBundle(sb.Body)
			require.NoError(t, err)
			current = int(bd.Version)
		}
		switch {
		case current == n && state.Last.Result == uplink.ConfigApplying:
			return "kept, its state not yet saved"
		case current == n:
			return "kept"
		case staged:
			return "staged, applied live or in its health check"
		case state.Last.Version == uint64(n) && state.Last.Result == uplink.ConfigApplying:
			return "taken, not yet staged"
		case state.Last.Version == uint64(n):
			return "refused or rolled back"
		default:
			return "not yet pulled"
		}
	}
	up()
	inForce := settled(0)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	const kills = 24
	counts := map[string]int{}
	for n := 1; n <= kills; n++ {
		fe.push(n, "{gateways: [gw-e2e]}", fe.versionConfig(n), fe.pki, fe.fleetDir)
		if n%2 == 1 {
			// The staged file is there from the stage to the rename: the
			// kill comes a random moment after it appears.
			require.Eventually(t, func() bool {
				_, err := os.Stat(filepath.Join(fleetFiles, "staged.bundle"))
				return err == nil || phase(n) != "not yet pulled"
			}, 30*time.Second, time.Millisecond, "bundle v%d not taken", n)
			time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		} else {
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		}
		gw.kill()
		where := phase(n)
		counts[where]++
		gw.start()
		up()
		v := fe.configView()
		got := versionOf(t, v.Config)
		f := v.Fleet
		switch where {
		case "kept", "kept, its state not yet saved":
			require.Equal(t, n, got, "killed after bundle v%d was kept (%s)", n, where)
			require.Equal(t, uint64(n), f.Applied)
			require.Contains(t, v.Source, fmt.Sprintf("fleet bundle v%d", n))
			require.Equal(t, uplink.ConfigApplied, f.Last.Result)
		case "staged, applied live or in its health check", "taken, not yet staged":
			require.Equal(t, inForce, got, "killed while bundle v%d was applied (%s): the configuration before", n, where)
			require.Equal(t, uint64(inForce), f.Applied)
			require.Equal(t, uplink.ConfigRolledBack, f.Last.Result)
			require.Contains(t, f.Last.Error, "interrupted")
			require.Equal(t, uint64(n), f.Highest, "an interrupted bundle is not taken again")
		default:
			// Not pulled before the kill: the start is on the configuration
			// before, and it may be pulled and applied by now.
			if v.Generation == 1 {
				require.Equal(t, inForce, got)
				require.Equal(t, uint64(inForce), f.Applied)
			} else {
				require.Contains(t, []int{inForce, n}, got)
			}
		}
		if where != "not yet pulled" {
			// The bundle was taken before the kill and none newer is
			// pushed, so nothing may be staged after the start. (A bundle
			// not pulled before the kill is pulled and staged after it:
			// a staged file then is that apply under way.)
			_, err := os.Stat(filepath.Join(fleetFiles, "staged.bundle"))
			require.ErrorIs(t, err, os.ErrNotExist, "a staged bundle left after the start (killed %s)", where)
		}
		inForce = settled(uint64(n))
		require.Equal(t, inForce, versionOf(t, fe.configView().Config))
	}
	t.Logf("%d kills, where each landed: %v", kills, counts)
	require.Positive(t, counts["staged, applied live or in its health check"], "no kill landed during an apply")

	written := w.finish()
	fe.exactlyOnce(written)
	t.Logf("%d lines written and delivered exactly once across %d kills", written, kills)
}
