package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway/console"
)

// These tests drive the built `weir console` as a technician would: over
// a pty (the console opens its slave side as it would /dev/ttyS0; the
// test types on the master side), against a running `weir run`.

type consoleE2E struct {
	*e2e
	hash string
}

// consoleConfig is the console section the tests append: 3 failures lock
// for 4s, a 200ms delay doubling, 3s idle.
func consoleConfig(t *testing.T) (hash, section string) {
	h, err := console.HashArgon2id([]byte(testPassword), console.Argon2Params{Memory: 1024, Time: 1, Threads: 1})
	require.NoError(t, err)
	return h, fmt.Sprintf(`console:
  password_hash: "%s"
  max_failures: 3
  lockout: 4s
  failure_delay: 200ms
  idle_timeout: 3s
`, h)
}

// startConsole runs `weir console --tty` on a new pty and returns the
// screen at its other end and a function that waits for the console to
// exit (sending SIGTERM first when term).
func (e *consoleE2E) startConsole(name string) (*harness, string, func(term bool)) {
	t := e.t
	t.Helper()
	ptm, pts, err := pty.Open()
	require.NoError(t, err)
	t.Cleanup(func() { ptm.Close(); pts.Close() })
	logf, err := os.Create(filepath.Join(e.dir, name+".log"))
	require.NoError(t, err)
	cmd := exec.Command(e.weir, "console", "--config", e.config, "--tty", pts.Name(), "--once")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	h := newScreen(t, ptm, ptm)
	stopped := false
	wait := func(term bool) {
		if stopped {
			return
		}
		stopped = true
		if term {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(logf.Name())
			require.NoError(t, err, "%s exited badly:\n%s", name, log)
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("%s did not exit", name)
		}
	}
	t.Cleanup(func() { wait(true) })
	return h, pts.Name(), wait
}

// auditRow is a console audit record as `weir spool inspect` shows it.
type auditRow struct {
	Kind   string         `json:"kind"`
	Source string         `json:"source"`
	Fields map[string]any `json:"fields"`
}

func (r auditRow) field(k string) string { s, _ := r.Fields[k].(string); return s }

// spooledAudit is what the spool holds from the console, oldest first.
func (e *consoleE2E) spooledAudit() []auditRow {
	out := e.run(e.weir, "spool", "inspect", "--config", e.config, "--n", "1000")
	var rows []auditRow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec struct {
			Event auditRow `json:"event"`
		}
		require.NoError(e.t, json.Unmarshal([]byte(line), &rec), line)
		if rec.Event.Source == console.Source {
			require.Equal(e.t, "audit", rec.Event.Kind)
			rows = append(rows, rec.Event)
		}
	}
	return rows
}

func actionsOf(rows []auditRow) []string {
	var out []string
	for _, r := range rows {
		s := r.field("action")
		if c := r.field("command"); c != "" {
			s += " " + c
		}
		out = append(out, s)
	}
	return out
}

func (e *consoleE2E) waitAudit(n int) []auditRow {
	e.t.Helper()
	var rows []auditRow
	require.Eventually(e.t, func() bool { rows = e.spooledAudit(); return len(rows) >= n }, 10*time.Second, 50*time.Millisecond,
		"want %d console audit records in the spool", n)
	return rows
}

func setupConsole(t *testing.T, withUplink bool) *consoleE2E {
	if runtime.GOOS != "linux" {
		t.Skip("the console is tested on linux")
	}
	hash, section := consoleConfig(t)
	if withUplink {
		e := setup(t)
		f, err := os.OpenFile(e.config, os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteString(section)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		return &consoleE2E{e2e: e, hash: hash}
	}
	weir, _ := buildBinaries(t)
	dir := t.TempDir()
	e := &e2e{t: t, dir: dir, weir: weir, config: filepath.Join(dir, "weir.yaml")}
	cfg := fmt.Sprintf(`gateway:
  id: gw-console
data_dir: %s/data
telemetry_interval: 1h
metrics:
  listen: ""
inputs:
  files: []
%s`, dir, section)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []string{"console-a.log", "console-b.log", "console-c.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
					t.Logf("%s:\n%s", n, b)
				}
			}
		}
	})
	return &consoleE2E{e2e: e, hash: hash}
}

// TestConsoleOverPTY is the technician's visit: wrong passwords (refused,
// audited, the delay growing), the lockout (which outlives the console
// process), the right password, the diagnostics, and the idle timeout;
// every step in the spool as an audit record.
func TestConsoleOverPTY(t *testing.T) {
	e := setupConsole(t, false)
	e.startGateway()

	// Wrong passwords: refused after a delay that doubles, then locked.
	a, tty, stopA := e.startConsole("console-a")
	a.expect("Every login and command is recorded.")
	var delays []time.Duration
	for i := range 3 {
		a.expect("login: ")
		a.typeLine("technician")
		a.expect("password: ")
		start := time.Now()
		a.typeLine(fmt.Sprintf("guess %d", i))
		if i < 2 {
			a.expect("Login incorrect.")
			delays = append(delays, time.Since(start))
		}
	}
	a.expect("3 failed logins: the console is locked for 4s.")
	lockedAt := time.Now()
	require.GreaterOrEqual(t, delays[0], 200*time.Millisecond)
	require.GreaterOrEqual(t, delays[1], 400*time.Millisecond, "the delay doubles")
	rows := e.waitAudit(4)
	require.Equal(t, []string{"login_failed", "login_failed", "login_failed", "lockout"}, actionsOf(rows))
	for i, r := range rows {
		require.Equal(t, tty, r.field("tty"))
		require.Equal(t, "technician", r.field("user"))
		if i < 3 {
			require.EqualValues(t, i+1, r.Fields["count"], "failures in a row")
		}
	}
	stopA(true)

	// A new console process finds the lockout and does not ask for a
	// password.
	b, _, stopB := e.startConsole("console-b")
	b.expect("login: ")
	b.typeLine("technician")
	out := b.expect("login: ")
	require.Contains(t, out, "The console is locked after 3 failed logins; try again in")
	require.NotContains(t, out, "password:")
	require.Equal(t, "login_refused", actionsOf(e.waitAudit(5))[4])
	stopB(true)

	// After the lockout, the right password; the diagnostics; idle.
	time.Sleep(time.Until(lockedAt.Add(4 * time.Second)))
	c, _, waitC := e.startConsole("console-c")
	c.expect("login: ")
	c.typeLine("technician")
	c.expect("password: ")
	c.typeLine(testPassword)
	c.expect("Logged in as technician.")
	c.expect("gw-console> ")
	c.typeLine("status")
	require.Contains(t, c.expect("gw-console> "), "gateway  gw-console  (weir ")
	c.typeLine("sensors")
	require.Contains(t, c.expect("gw-console> "), "no sensors configured")
	c.typeLine("board")
	require.Contains(t, c.expect("gw-console> "), "no board configured")
	c.typeLine("config show")
	cs := c.expect("gw-console> ")
	require.Contains(t, cs, "password_hash: <redacted>")
	require.NotContains(t, cs, e.hash[len(e.hash)-20:], "the hash is a secret")
	require.Contains(t, cs, "id: gw-console")
	c.typeLine("logs 50")
	require.Contains(t, c.expect("gw-console> "), `msg="gateway running" id=gw-console`)
	c.typeLine("/bin/sh")
	require.Contains(t, c.expect("gw-console> "), `unknown command "/bin/sh"`)
	c.expect("session closed: no key pressed for 3s")
	waitC(false) // --once: the console exits after the session

	rows = e.waitAudit(13)
	require.Equal(t, []string{"login_failed", "login_failed", "login_failed", "lockout", "login_refused", "login",
		"command status", "command sensors", "command board", "command config show", "command logs 50", "command /bin/sh",
		"logout"}, actionsOf(rows))
	last := rows[len(rows)-1]
	require.Equal(t, "idle", last.field("outcome"))
	require.Equal(t, `refused: unknown command "/bin/sh"; type help for the list`, rows[11].field("outcome"))
}

// TestConsoleAuditReachesCollector: the console's records reach a real
// weir-collector over the uplink, including those of a session held while
// the gateway was down (kept in the console's outbox, sent first once it
// is back).
func TestConsoleAuditReachesCollector(t *testing.T) {
	e := setupConsole(t, true)

	// The gateway is not running: the session works, its trail is kept.
	a, ttyA, waitA := e.startConsole("console-a")
	a.expect("login: ")
	a.typeLine("technician")
	a.expect("password: ")
	a.typeLine(testPassword)
	require.Contains(t, a.expect("gw-e2e> "), "note: the gateway is not taking audit records; they are kept on the board")
	a.typeLine("status")
	require.Contains(t, a.expect("gw-e2e> "), "is `weir run` running?")
	a.typeLine("exit")
	a.expect("logged out")
	waitA(false)

	e.startCollector()
	e.startGateway()
	b, ttyB, waitB := e.startConsole("console-b")
	b.expect("login: ")
	b.typeLine("technician")
	b.expect("password: ")
	b.typeLine(testPassword)
	b.expect("gw-e2e> ")
	b.typeLine("spool")
	b.expect("gw-e2e> ")
	b.typeLine("exit")
	b.expect("logged out")
	waitB(false)

	type sinkRecord struct {
		Seq      uint64         `json:"seq"`
		Gateway  string         `json:"gateway"`
		Kind     string         `json:"kind"`
		Source   string         `json:"source"`
		Severity string         `json:"severity"`
		Message  string         `json:"message"`
		Fields   map[string]any `json:"fields"`
	}
	var got []sinkRecord
	require.Eventually(t, func() bool {
		got = got[:0]
		data, err := os.ReadFile(e.sink)
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(data), "\n") {
			var r sinkRecord
			if json.Unmarshal([]byte(line), &r) == nil && r.Source == console.Source {
				got = append(got, r)
			}
		}
		return len(got) >= 8
	}, 30*time.Second, 50*time.Millisecond, "want 8 console records at the collector")
	var trail []string
	ids := map[string]bool{}
	for _, r := range got {
		require.Equal(t, "gw-e2e", r.Gateway)
		require.Equal(t, "audit", r.Kind)
		require.Equal(t, "technician", r.Fields["user"])
		id := r.Fields["id"].(string)
		require.False(t, ids[id], "record %s delivered twice", id)
		ids[id] = true
		trail = append(trail, fmt.Sprintf("%v %v %v", r.Fields["tty"], r.Fields["action"], r.Fields["command"]))
	}
	require.Equal(t, []string{
		ttyA + " login <nil>", ttyA + " command status", ttyA + " command exit", ttyA + " logout <nil>",
		ttyB + " login <nil>", ttyB + " command spool", ttyB + " command exit", ttyB + " logout <nil>",
	}, trail, "in the order they happened, the kept session first")
	require.Equal(t, fmt.Sprintf("console %s: technician logged in", ttyA), got[0].Message)
}

// TestPasswdOnTerminal: weir passwd asks twice on the terminal, echoes
// neither, and prints the hash on stdout.
func TestPasswdOnTerminal(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the console is tested on linux")
	}
	weir, _ := buildBinaries(t)
	for _, c := range []struct {
		second, want string
	}{{"tech pass 42", ""}, {"tech pass 43", "the two passwords differ"}} {
		ptm, pts, err := pty.Open()
		require.NoError(t, err)
		var stdout bytes.Buffer
		cmd := exec.Command(weir, "passwd")
		cmd.Stdin, cmd.Stderr, cmd.Stdout = pts, pts, &stdout
		require.NoError(t, cmd.Start())
		s := newScreen(t, ptm, ptm)
		s.expect("New console password: ")
		s.typeLine("tech pass 42")
		s.expect("Again: ")
		s.typeLine(c.second)
		err = cmd.Wait()
		pts.Close()
		time.Sleep(100 * time.Millisecond) // the screen's last bytes
		s.mu.Lock()
		screen := string(s.out)
		s.mu.Unlock()
		ptm.Close()
		require.NotContains(t, screen, "tech pass", "no echo")
		if c.want != "" {
			require.Error(t, err)
			require.Contains(t, screen, c.want)
			continue
		}
		require.NoError(t, err, screen)
		h, err := console.ParseHash(strings.TrimSpace(stdout.String()))
		require.NoError(t, err)
		require.True(t, h.Verify([]byte("tech pass 42")))
	}
}
