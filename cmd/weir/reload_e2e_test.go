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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/uplink/pki"
)

// allSinkRecords reads the collector's sink whole, failing on a sequence
// delivered twice.
func (e *e2e) allSinkRecords() []sinkRecord {
	e.t.Helper()
	b, err := os.ReadFile(e.sink)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(e.t, err)
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	seen := map[uint64]bool{}
	var out []sinkRecord
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r sinkRecord
		require.NoError(e.t, json.Unmarshal(line, &r))
		require.False(e.t, seen[r.Seq], "sequence %d delivered twice", r.Seq)
		seen[r.Seq] = true
		out = append(out, r)
	}
	return out
}

// status asks the gateway on sock, not through the configuration file:
// the file may hold a configuration the gateway refused.
func (e *e2e) status(sock string) gateway.Status {
	e.t.Helper()
	var st gateway.Status
	require.NoError(e.t, json.Unmarshal([]byte(e.run(e.weir, "status", "--json", "--socket", sock)), &st))
	return st
}

// TestReloadUnderLoad is the acceptance test of SIGHUP: the real gateway
// and collector, three log files written without pause and a Modbus
// device polled. A first SIGHUP, with the certificate renewed in place
// (same CA, the files' times put back) and a configuration that adds an
// input for the third file, changes a tailed input's poll interval and
// the device's interval and a rule's count (thresholds), is applied: only those parts
// restart, the uplink reconnects with the new certificate (the old one
// is then revoked at the collector, and no session ends for it). A
// second SIGHUP with an invalid file, and a third that changes a key
// only a restart applies, are refused with the configuration in force
// kept. At the end every line of every file is at the collector exactly
// once, and each reload is a record there.
func TestReloadUnderLoad(t *testing.T) {
	e := setup(t)
	logs := filepath.Join(e.dir, "logs")
	data := filepath.Join(e.dir, "data")
	sock := filepath.Join(data, "weir.sock")

	mctx, mcancel := context.WithCancel(context.Background())
	defer mcancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = modbustest.New(1, 10).ServeTCP(mctx, ln) }()

	opsThreshold := 1000000 // a rule's count, changed by the first reload
	config := func(appPoll, meterEvery string, withNew bool, extra string) string {
		s := fmt.Sprintf(`gateway:
  id: gw-e2e
data_dir: %s
telemetry_interval: 1h
metrics:
  listen: ""
inputs:
  files:
    - {name: app, paths: ["%s/app.log"], start_at: beginning, poll_interval: %s}
    - {name: ops, paths: ["%s/ops.log"], start_at: beginning, poll_interval: 20ms}
`, data, logs, appPoll, logs)
		if withNew {
			s += fmt.Sprintf("    - {name: new, paths: [\"%s/new.log\"], start_at: beginning, poll_interval: 20ms}\n", logs)
		}
		s += fmt.Sprintf(`  modbus:
    buses: [{name: plc, type: tcp, address: "%s"}]
    devices:
      - {name: meter, bus: plc, unit: 1, interval: %s, registers: [{name: level, register: holding, address: 0}]}
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
rules:
  rules:
    - {name: ops_lines, match: {kind: [log], source: [ops]}, count: %d, window: 1h}
%s`, ln.Addr(), meterEvery, e.addr, e.pki, e.pki, e.pki, opsThreshold, extra)
		return s
	}
	write := func(body string) { require.NoError(t, os.WriteFile(e.config, []byte(body), 0o600)) }
	write(config("20ms", "500ms", false, ""))

	e.start("collector", e.coll, "run", "--listen", e.addr, "--ca", e.pki+"/ca.pem",
		"--cert", e.pki+"/collector-localhost.pem", "--key", e.pki+"/collector-localhost-key.pem", "--sink", e.sink,
		"--deny-check", "100ms")
	gw := exec.Command(e.weir, "run", "--config", e.config)
	logf, err := os.Create(filepath.Join(e.dir, "gateway.log"))
	require.NoError(t, err)
	gw.Stdout, gw.Stderr = logf, logf
	require.NoError(t, gw.Start())
	exited := make(chan error, 1)
	go func() { exited <- gw.Wait() }()
	t.Cleanup(func() {
		_ = gw.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = gw.Process.Kill()
		}
	})
	hup := func() { require.NoError(t, gw.Process.Signal(syscall.SIGHUP)) }
	require.Eventually(t, func() bool { return exec.Command(e.weir, "status", "--socket", sock).Run() == nil },
		20*time.Second, 20*time.Millisecond, "the gateway did not start")

	// The load: every file grows by a few lines every few milliseconds
	// until told to stop.
	stopWriting := make(chan struct{})
	var wg sync.WaitGroup
	names := []string{"app", "ops", "new"}
	var written [3]atomic.Int64
	for n, name := range names {
		wg.Go(func() {
			f, err := os.OpenFile(filepath.Join(logs, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			w := bufio.NewWriter(f)
			for i := 0; ; i++ {
				fmt.Fprintf(w, "%s line %d\n", name, i)
				if i%20 != 19 {
					continue
				}
				_ = w.Flush()
				written[n].Store(int64(i + 1))
				select {
				case <-stopWriting:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		})
	}
	delivered := func(source string) int {
		n := 0
		for _, r := range e.allSinkRecords() {
			if r.Source == source && r.Kind == "log" {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return delivered("app") > 200 && delivered("ops") > 200 }, 30*time.Second, 50*time.Millisecond)
	before := e.status(sock)
	require.Equal(t, uint64(1), before.Config.Generation)
	require.Nil(t, before.Config.LastReload)

	// A renewed certificate from the same CA, written over the old files,
	// whose times are put back: only its content tells.
	cert, key := pki.GatewayFiles(e.pki, "gw-e2e")
	oldCert := filepath.Join(e.dir, "old-gateway.pem")
	b, err := os.ReadFile(cert)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(oldCert, b, 0o600))
	ct, kt := modTime(t, cert), modTime(t, key)
	_, _, err = pki.IssueGateway(e.pki, "gw-e2e", pki.Options{Force: true, Validity: 400 * 24 * time.Hour})
	require.NoError(t, err)
	require.NoError(t, os.Chtimes(cert, ct, ct))
	require.NoError(t, os.Chtimes(key, kt, kt))

	opsThreshold = 2000000
	write(config("30ms", "100ms", true, ""))
	hup()
	var st gateway.Status
	require.Eventually(t, func() bool { st = e.status(sock); return st.Config.Generation == 2 }, 20*time.Second, 20*time.Millisecond)
	r := st.Config.LastReload
	require.Equal(t, gateway.ReloadOK, r.Result, r.Error)
	require.ElementsMatch(t, []string{"inputs.files app: restarted", "inputs.files new: started",
		"inputs.modbus bus plc: restarted", "uplink: restarted for its renewed certificate files", "rules: updated"}, r.Changed)
	opsRule := slices.IndexFunc(st.Alerts.Rules, func(r rules.RuleStatus) bool { return r.Name == "ops_lines" })
	require.GreaterOrEqual(t, opsRule, 0, "the site's rule is loaded")
	require.True(t, strings.HasSuffix(st.Alerts.Rules[opsRule].Now, "/2000000 within 1h"), "the new threshold is in force: %s", st.Alerts.Rules[opsRule].Now)
	require.Equal(t, "SIGHUP "+e.config, st.Config.Source)
	var sensors gateway.Sensors
	require.NoError(t, json.Unmarshal([]byte(e.run(e.weir, "sensors", "--json", "--socket", sock)), &sensors))
	require.Equal(t, "100ms", sensors.Modbus.Buses[0].Devices[0].Interval, "the new threshold is in force")
	require.Eventually(t, func() bool { return e.status(sock).Uplink.State == "connected" }, 20*time.Second, 20*time.Millisecond)
	st = e.status(sock)
	require.WithinDuration(t, time.Now().Add(400*24*time.Hour), st.Uplink.CertExpiry, time.Hour, "the renewed certificate is the one in use")
	connects := st.Uplink.Connects
	for _, s := range st.Sources {
		if s.Name == "ops" {
			for _, b := range before.Sources {
				if b.Name == "ops" {
					require.GreaterOrEqual(t, s.Lines, b.Lines, "the untouched input's count goes on")
				}
			}
		}
	}

	// The old certificate revoked: a session still on it would be ended
	// within the collector's deny check (100ms).
	e.run(e.coll, "pki", "revoke", "--cert", oldCert, "--dir", e.pki, "--note", "renewed")
	time.Sleep(time.Second)
	st = e.status(sock)
	require.Equal(t, connects, st.Uplink.Connects, "no session ended by the revocation: %s", st.Uplink.LastError)

	// An invalid file: refused, the configuration in force kept.
	write(strings.Replace(config("30ms", "100ms", true, ""), "poll_interval: 30ms", "poll_interval: fast", 1))
	hup()
	require.Eventually(t, func() bool {
		st = e.status(sock)
		return st.Config.Reloads[gateway.ReloadRefused] == 1
	}, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, uint64(2), st.Config.Generation)
	require.Contains(t, st.Config.LastReload.Error, "poll_interval")
	// A key only a restart applies: refused with the key named.
	write(config("30ms", "100ms", true, "spool:\n  max_bytes: 1GiB\n"))
	hup()
	require.Eventually(t, func() bool {
		st = e.status(sock)
		return st.Config.Reloads[gateway.ReloadRefused] == 2
	}, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, "needs a restart: spool.max_bytes (the spool is opened at start with its bounds and profile)", st.Config.LastReload.Error)
	require.Equal(t, uint64(2), st.Config.Generation)
	text := e.run(e.weir, "status", "--socket", sock)
	require.Contains(t, text, "config   generation 2 from SIGHUP "+e.config)
	require.Contains(t, text, "REFUSED")

	close(stopWriting)
	wg.Wait()
	want := [3]int64{}
	for n := range names {
		want[n] = written[n].Load()
		require.Positive(t, want[n])
	}
	require.Eventually(t, func() bool {
		return delivered("app") >= int(want[0]) && delivered("ops") >= int(want[1]) && delivered("new") >= int(want[2])
	}, 60*time.Second, 100*time.Millisecond, "every line at the collector")
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive now

	recs := e.allSinkRecords()
	count := map[string]int{}
	var reloads []string
	readings := 0
	for _, r := range recs {
		switch {
		case r.Kind == "log":
			count[r.Message]++
		case r.Source == "weir:config":
			reloads = append(reloads, fmt.Sprint(r.Fields["result"]))
		case r.Kind == "reading" && r.Source == "modbus:meter":
			readings++
		}
	}
	for n, name := range names {
		for i := range want[n] {
			msg := fmt.Sprintf("%s line %d", name, i)
			require.Equal(t, 1, count[msg], "%q at the collector %d times", msg, count[msg])
		}
	}
	require.Len(t, count, int(want[0]+want[1]+want[2]), "nothing else, nothing twice")
	require.Equal(t, []string{gateway.ReloadOK, gateway.ReloadRefused, gateway.ReloadRefused}, reloads)
	require.Positive(t, readings, "the device's readings reach the collector")
	t.Logf("lines: app %d, ops %d, new %d; %d readings; %d records at the collector", want[0], want[1], want[2], readings, len(recs))
}

func modTime(t *testing.T, p string) time.Time {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.ModTime()
}

// TestSystemdNotifyReload: under Type=notify a SIGHUP is bracketed by
// RELOADING=1 (with the monotonic time systemd wants) and READY=1.
func TestSystemdNotifyReload(t *testing.T) {
	e := setup(t)
	sock := filepath.Join(e.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	msgs := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	cmd := exec.Command(e.weir, "run", "--config", e.config)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	logf, err := os.Create(filepath.Join(e.dir, "gateway.log"))
	require.NoError(t, err)
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	next := func(what string) string {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.HasPrefix(m, what) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %s from the daemon", what)
			}
		}
	}
	next("READY=1")
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Regexp(t, `^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*$`, next("RELOADING=1"))
	require.Equal(t, "READY=1\nSTATUS=running (configuration generation 1, last reload unchanged)", next("READY=1"))
}
