package main

import (
	"bytes"
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

// sinkRecord is a record of the collector's sink, the fields these tests
// look at.
type sinkRecord struct {
	Seq      uint64         `json:"seq"`
	Source   string         `json:"source"`
	Kind     string         `json:"kind"`
	Severity string         `json:"severity"`
	Priority string         `json:"priority"`
	Message  string         `json:"message"`
	Fields   map[string]any `json:"fields"`
}

// boardRecords returns the sink's records from the board, failing on a
// sequence delivered twice.
func (e *e2e) boardRecords() []sinkRecord {
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
		if r.Source == "weir:board" {
			out = append(out, r)
		}
	}
	return out
}

// TestTamperRecordAtCollector opens and closes the sim board's enclosure
// (through its file, as the demo does) under the real daemon and a real
// collector: each edge is exactly one critical alert record at the
// collector, and weir status shows the switch.
func TestTamperRecordAtCollector(t *testing.T) {
	e := setup(t)
	simDir := filepath.Join(e.dir, "board")
	require.NoError(t, os.Mkdir(simDir, 0o700))
	f, err := os.OpenFile(e.config, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintf(f, "board:\n  profile: sim\n  tamper: {debounce: 20ms}\n  sim: {dir: %s}\n", simDir)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	e.startCollector()
	e.startGateway()
	require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(simDir, "leds")); return err == nil },
		10*time.Second, 20*time.Millisecond, "the board's LEDs are not shown")

	edge := func(state, msg string, n int) {
		t.Helper()
		require.NoError(t, os.WriteFile(filepath.Join(simDir, "tamper"), []byte(state+"\n"), 0o600))
		var recs []sinkRecord
		require.Eventually(t, func() bool { recs = e.boardRecords(); return len(recs) >= n }, 20*time.Second, 20*time.Millisecond,
			"no tamper record at the collector")
		time.Sleep(500 * time.Millisecond) // a second record for the same edge would arrive now
		recs = e.boardRecords()
		require.Len(t, recs, n, "one record per edge: %+v", recs)
		r := recs[n-1]
		require.Equal(t, msg, r.Message)
		require.Equal(t, "alert", r.Kind)
		require.Equal(t, "crit", r.Severity)
		require.Equal(t, "critical", r.Priority)
		require.Equal(t, state, r.Fields["state"])
		require.Equal(t, "sim-tamper", r.Fields["pin"])
	}
	edge("open", "tamper: enclosure opened", 1)
	status := e.run(e.weir, "status", "--config", e.config)
	require.Contains(t, status, "tamper sim-tamper OPEN since")
	require.Contains(t, status, "1 openings, 0 closings")
	require.Contains(t, status, "alert fast (enclosure open)")
	edge("closed", "tamper: enclosure closed", 2)
	require.Contains(t, e.run(e.weir, "status", "--config", e.config), "tamper sim-tamper closed since")
}

// TestSystemdNotify runs the daemon as systemd would under Type=notify
// with WatchdogSec: a datagram socket named by NOTIFY_SOCKET, and
// WATCHDOG_USEC. It must say READY=1, then WATCHDOG=1 at least every half
// period, and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
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
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=1000000")
	logf, err := os.Create(filepath.Join(e.dir, "gateway.log"))
	require.NoError(t, err)
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()

	next := func(what string, want func(string) bool) (string, time.Time) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case m := <-msgs:
				if want(m) {
					return m, time.Now()
				}
			case <-deadline:
				t.Fatalf("no %s from the daemon", what)
			}
		}
	}
	ready, _ := next("READY=1", func(m string) bool { return strings.Contains(m, "READY=1") })
	require.Contains(t, ready, "STATUS=running")
	// The spool is open by then: the admin socket answers, and the first
	// health check follows.
	require.Contains(t, e.run(e.weir, "status", "--config", e.config), "spool    backlog")
	require.Eventually(t, func() bool { return strings.Contains(e.run(e.weir, "status", "--config", e.config), "health   ok") },
		10*time.Second, 50*time.Millisecond)
	isPing := func(m string) bool { return m == "WATCHDOG=1" }
	_, first := next("WATCHDOG=1", isPing)
	_, second := next("a second WATCHDOG=1", isPing)
	t.Logf("WATCHDOG=1 every %s for WatchdogSec=1s", second.Sub(first).Round(time.Millisecond))
	require.Less(t, second.Sub(first), time.Second, "pings must come within WatchdogSec")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	next("STOPPING=1", func(m string) bool { return m == "STOPPING=1" })
	select {
	case err := <-exited:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("the daemon did not stop within 15s of SIGTERM")
	}
}
