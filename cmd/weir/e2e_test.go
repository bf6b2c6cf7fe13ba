package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// These tests build the real binaries and run them as a user would: a
// collector and a gateway over mutual TLS on loopback, the gateway tailing a
// file.

type e2e struct {
	t       *testing.T
	dir     string
	weir    string
	coll    string
	pki     string
	config  string
	sink    string
	logFile string
	addr    string
}

func buildBinaries(t *testing.T) (weir, coll string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test builds binaries; skipped with -short")
	}
	out := t.TempDir()
	for _, b := range []struct{ pkg, name string }{{".", "weir"}, {"../weir-collector", "weir-collector"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(out, b.name), b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		msg, err := cmd.CombinedOutput()
		require.NoError(t, err, "build %s: %s", b.name, msg)
	}
	return filepath.Join(out, "weir"), filepath.Join(out, "weir-collector")
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func setup(t *testing.T) *e2e {
	weir, coll := buildBinaries(t)
	dir := t.TempDir()
	e := &e2e{t: t, dir: dir, weir: weir, coll: coll, pki: filepath.Join(dir, "pki"),
		config: filepath.Join(dir, "weir.yaml"), sink: filepath.Join(dir, "sink.jsonl"),
		logFile: filepath.Join(dir, "logs", "app.log"), addr: freeAddr(t)}
	e.run(coll, "pki", "init", "--dir", e.pki)
	e.run(coll, "pki", "issue-collector", "localhost", "--dir", e.pki)
	e.run(coll, "pki", "issue-gateway", "gw-e2e", "--dir", e.pki)
	require.NoError(t, os.MkdirAll(filepath.Dir(e.logFile), 0o755))
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range []string{"gateway.log", "collector.log"} {
			if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
				t.Logf("%s:\n%s", n, b)
			}
		}
	})
	cfg := fmt.Sprintf(`gateway:
  id: gw-e2e
data_dir: %s/data
telemetry_interval: 1h
metrics:
  listen: ""
inputs:
  files:
    - name: app
      paths: ["%s/logs/*.log"]
      start_at: beginning
      poll_interval: 20ms
uplink:
  endpoints:
    - address: %s
      server_name: localhost
  tls:
    ca: %s/ca.pem
    cert: %s/gateway-gw-e2e.pem
    key: %s/gateway-gw-e2e-key.pem
  reconnect_min: 50ms
  reconnect_max: 200ms
`, dir, dir, e.addr, e.pki, e.pki, e.pki)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	return e
}

func (e *e2e) run(bin string, args ...string) string {
	e.t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	require.NoError(e.t, err, "%s %s: %s", filepath.Base(bin), strings.Join(args, " "), out)
	return string(out)
}

// start runs a daemon and returns a function that stops it with SIGTERM
// and checks it exited cleanly.
func (e *e2e) start(name string, bin string, args ...string) func() {
	e.t.Helper()
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(e.dir, name+".log"))
	require.NoError(e.t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(e.t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			log, _ := os.ReadFile(logf.Name())
			require.NoError(e.t, err, "%s exited badly:\n%s", name, log)
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			e.t.Fatalf("%s did not stop within 15s of SIGTERM", name)
		}
		logf.Close()
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *e2e) startCollector() func() {
	return e.start("collector", e.coll, "run", "--listen", e.addr, "--ca", e.pki+"/ca.pem",
		"--cert", e.pki+"/collector-localhost.pem", "--key", e.pki+"/collector-localhost-key.pem", "--sink", e.sink)
}

func (e *e2e) startGateway() func() {
	stop := e.start("gateway", e.weir, "run", "--config", e.config)
	sock := filepath.Join(e.dir, "data", "weir.sock")
	require.Eventually(e.t, func() bool { _, err := os.Stat(sock); return err == nil }, 10*time.Second, 20*time.Millisecond)
	return stop
}

func (e *e2e) appendLines(from, n int) {
	f, err := os.OpenFile(e.logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(e.t, err)
	defer f.Close()
	w := bufio.NewWriter(f)
	for i := from; i < from+n; i++ {
		fmt.Fprintf(w, "pump-3 flow=12.%d m3/h line=%d\n", i%10, i)
	}
	require.NoError(e.t, w.Flush())
}

// sinkLines returns the messages in the sink, failing on a repeated sequence.
func (e *e2e) sinkLines() []string {
	e.t.Helper()
	b, err := os.ReadFile(e.sink)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(e.t, err)
	// The collector may be writing the last line right now: only whole
	// lines count.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	seen := map[uint64]bool{}
	var msgs []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r struct {
			Seq     uint64 `json:"seq"`
			Gateway string `json:"gateway"`
			Message string `json:"message"`
			Kind    string `json:"kind"`
			Source  string `json:"source"`
		}
		require.NoError(e.t, json.Unmarshal(line, &r))
		require.False(e.t, seen[r.Seq], "sequence %d delivered twice", r.Seq)
		seen[r.Seq] = true
		require.Equal(e.t, "gw-e2e", r.Gateway)
		if r.Kind == "telemetry" && (r.Source == "weir:clock" || r.Source == "weir:seal") {
			continue // the clock's state at start; the Merkle log's seals
		}
		require.Equal(e.t, "log", r.Kind)
		msgs = append(msgs, r.Message)
	}
	return msgs
}

func (e *e2e) waitDelivered(n int) []string {
	e.t.Helper()
	var got []string
	require.Eventually(e.t, func() bool { got = e.sinkLines(); return len(got) >= n }, 30*time.Second, 50*time.Millisecond,
		"want %d records in the sink", n)
	return got
}

func TestEndToEnd(t *testing.T) {
	e := setup(t)
	stopColl := e.startCollector()
	e.appendLines(0, 200)
	stopGw := e.startGateway()
	require.Len(t, e.waitDelivered(200), 200)

	fi, err := os.Stat(filepath.Join(e.dir, "data", "weir.sock"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "admin socket mode")

	status := e.run(e.weir, "status", "--config", e.config)
	require.Contains(t, status, "gw-e2e")
	require.Contains(t, status, "connected")
	require.Contains(t, status, e.logFile)

	clock := e.run(e.weir, "ptp", "--config", e.config)
	require.Contains(t, clock, "mode                 system")
	require.Contains(t, clock, "error_bound          unknown")

	link := e.run(e.weir, "link", "--config", e.config)
	require.Contains(t, link, "tls://"+e.addr)
	require.Contains(t, link, "connected*")
	require.Contains(t, link, "mode failover")
	var lj struct {
		Uplink struct {
			Endpoints []struct {
				Endpoint     string `json:"endpoint"`
				RecordsAcked uint64 `json:"records_acked"`
				Handshakes   uint64 `json:"handshakes"`
			} `json:"endpoints"`
		} `json:"uplink"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.run(e.weir, "link", "--json", "--config", e.config)), &lj))
	require.Len(t, lj.Uplink.Endpoints, 1)
	require.Equal(t, uint64(1), lj.Uplink.Endpoints[0].Handshakes)
	require.GreaterOrEqual(t, lj.Uplink.Endpoints[0].RecordsAcked, uint64(200))

	probe := e.run(e.weir, "test", "output", "--pings", "2", "--config", e.config)
	require.Contains(t, probe, "negotiated  TLS 1.3")
	require.Contains(t, probe, `subject "CN=localhost"`)
	require.Contains(t, probe, "over 2 pings")
	require.Contains(t, probe, "OK")

	// Collector down: records wait in the spool, then flow when it returns.
	stopColl()
	e.appendLines(200, 300)
	var status2 string
	require.Eventually(t, func() bool {
		status2 = e.run(e.weir, "status", "--config", e.config)
		return strings.Contains(status2, " 300 records")
	}, 20*time.Second, 50*time.Millisecond)
	t.Logf("status during the outage:\n%s", status2)
	probeOut, err := exec.Command(e.weir, "test", "output", "--config", e.config).CombinedOutput()
	require.Error(t, err, "test output must fail while the collector is down: %s", probeOut)
	require.Contains(t, string(probeOut), "FAILED (refused)")
	// The session the stop cut reads as reset until the sender's next
	// attempt, which is refused.
	var linkOut string
	require.Eventually(t, func() bool {
		linkOut = e.run(e.weir, "link", "--config", e.config)
		return strings.Contains(linkOut, "last error (refused")
	}, 20*time.Second, 100*time.Millisecond, "link: %s", linkOut)
	sp := e.run(e.weir, "spool", "--config", e.config)
	require.Contains(t, sp, "backlog     300 records")
	require.Regexp(t, `normal\s+300\s`, sp)
	lines := strings.Split(strings.TrimSpace(e.run(e.weir, "spool", "inspect", "--n", "2", "--config", e.config)), "\n")
	require.Len(t, lines, 2)
	var rec struct {
		Seq   uint64 `json:"seq"`
		Class string `json:"class"`
		Event struct {
			Seq     uint64 `json:"seq"`
			Message string `json:"message"`
		} `json:"event"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
	require.Equal(t, "normal", rec.Class)
	require.Equal(t, rec.Seq, rec.Event.Seq)
	require.Equal(t, "pump-3 flow=12.0 m3/h line=200", rec.Event.Message, "the oldest unacknowledged record comes first")
	stopColl = e.startCollector()
	require.Len(t, e.waitDelivered(500), 500)

	// Gateway restart: the tail resumes at its checkpoint, nothing repeats.
	stopGw()
	e.appendLines(500, 100)
	stopGw = e.startGateway()
	e.waitDelivered(600)
	time.Sleep(300 * time.Millisecond) // any duplicate would arrive now
	got := e.sinkLines()
	require.Len(t, got, 600)
	for i, m := range got {
		require.Equal(t, fmt.Sprintf("pump-3 flow=12.%d m3/h line=%d", i%10, i), m)
	}
	stopGw()
	stopColl()
}

func TestStatusWithoutDaemon(t *testing.T) {
	e := setup(t)
	out, err := exec.Command(e.weir, "status", "--config", e.config).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "weir.sock")
	require.Contains(t, string(out), "is `weir run` running?")
}

func TestTestConfigCommand(t *testing.T) {
	e := setup(t)
	// The tailed log does not exist yet: valid with a warning, exit 2.
	b, err := exec.Command(e.weir, "test", "config", "--config", e.config).CombinedOutput()
	out := string(b)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, out)
	require.Equal(t, 2, ee.ExitCode(), out)
	require.Contains(t, out, "logs/*.log matches no file now")
	require.Contains(t, out, "# valid with 1 warning (exit 2)")
	require.Contains(t, out, "id: gw-e2e")
	e.appendLines(0, 1)
	out = e.run(e.weir, "test", "config", "--config", e.config)
	require.Contains(t, out, "checks passed (exit 0)")

	bad := filepath.Join(e.dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("uplink:\n  batch_max_recrods: 5\n"), 0o600))
	cmd := exec.Command(e.weir, "test", "config", "--config", bad)
	msg, err := cmd.CombinedOutput()
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.ExitCode())
	require.Equal(t, "weir: config "+bad+":2:3: uplink: unknown key `batch_max_recrods`; did you mean `batch_max_records`?\n", string(msg))

	require.NoError(t, os.Chmod(e.config, 0o666))
	msg, err = exec.Command(e.weir, "run", "--config", e.config).CombinedOutput()
	require.Error(t, err, "a world-writable config must be refused")
	require.Contains(t, string(msg), "group- or world-writable")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out2, err := exec.CommandContext(ctx, e.weir, "config", "example").Output()
	require.NoError(t, err)
	require.Contains(t, string(out2), "batch_max_records: 1000")
}
