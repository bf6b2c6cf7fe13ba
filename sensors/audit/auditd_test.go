package audit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// auditdConf is a private auditd configuration: its own log, written
// synchronously (flush = data), enriched, rotated on SIGUSR1.
const auditdConf = `local_events = yes
write_logs = yes
log_file = %s
log_group = root
log_format = ENRICHED
flush = DATA
freq = 0
max_log_file = 8
num_logs = 5
max_log_file_action = ROTATE
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
name_format = NONE
q_depth = 2000
overflow_action = SYSLOG
plugin_dir = %s
`

// TestIntegrationAuditd runs the real auditd (Debian package auditd) on
// a private log with one watch rule on a temporary directory, rotates the
// log with SIGUSR1 between two writes there, and checks that the reader
// emits every event once, across the rotation, from the enriched format
// auditd 3 writes (no EOE records).
//
// The kernel's audit state is the host's: the test runs only as root,
// when no audit daemon is registered, not with -short; it removes its
// rule, stops its auditd and restores the enabled flag.
func TestIntegrationAuditd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts auditd")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: auditd and auditctl talk to the kernel's audit subsystem")
	}
	auditd, err1 := exec.LookPath("auditd")
	auditctl, err2 := exec.LookPath("auditctl")
	if err1 != nil || err2 != nil {
		t.Skip("auditd not installed (Debian package auditd)")
	}
	status, err := exec.Command(auditctl, "-s").CombinedOutput()
	if err != nil {
		t.Skipf("auditctl -s: %v: %s (no CAP_AUDIT_CONTROL in this container?)", err, status)
	}
	st := auditStatus(string(status))
	if st["pid"] != "0" {
		t.Skipf("an audit daemon (pid %s) is registered; not replacing it", st["pid"])
	}
	enabled := st["enabled"]

	dir := t.TempDir()
	logPath := filepath.Join(dir, "log", "audit.log")
	watched := filepath.Join(dir, "watched")
	require.NoError(t, os.Mkdir(filepath.Dir(logPath), 0o700))
	require.NoError(t, os.Mkdir(watched, 0o755))
	confDir := filepath.Join(dir, "conf")
	require.NoError(t, os.Mkdir(confDir, 0o750))
	require.NoError(t, os.Mkdir(filepath.Join(confDir, "plugins.d"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(confDir, "auditd.conf"),
		fmt.Appendf(nil, auditdConf, logPath, filepath.Join(confDir, "plugins.d")), 0o640))

	d := exec.Command(auditd, "-n", "-c", confDir)
	out := &strings.Builder{}
	d.Stdout, d.Stderr = out, out
	require.NoError(t, d.Start())
	t.Cleanup(func() {
		_ = exec.Command(auditctl, "-W", watched, "-p", "wa", "-k", "weir-it").Run()
		_ = d.Process.Signal(syscall.SIGTERM)
		_ = d.Wait()
		_ = exec.Command(auditctl, "-e", enabled).Run()
	})
	require.Eventually(t, func() bool { _, err := os.Stat(logPath); return err == nil }, 10*time.Second, 20*time.Millisecond,
		"auditd did not create its log: %s", out)

	s := newFakeSpool()
	// auditd writes an event's records one by one; on a loaded machine
	// the test's 20 ms event timeout ended events between two of them.
	cfg := testConfig(logPath)
	cfg.EventTimeout = DefaultEventTimeout
	start(t, cfg, s)
	ctl := func(args ...string) {
		t.Helper()
		b, err := exec.Command(auditctl, args...).CombinedOutput()
		require.NoError(t, err, "auditctl %v: %s", args, b)
	}
	ctl("-w", watched, "-p", "wa", "-k", "weir-it")
	// Written by a process started now: the kernel audits only the tasks
	// created while auditing is on, and this test's process began before
	// auditd turned it on (its threads made since are, the others not).
	write := func(name string) {
		t.Helper()
		b, err := exec.Command("/usr/bin/touch", filepath.Join(watched, name)).CombinedOutput()
		require.NoError(t, err, "touch: %s", b)
	}
	write("before")
	keyed := func() []got {
		var k []got
		for _, g := range s.events() {
			if strings.Contains(g.Msg, "key=weir-it") && strings.HasPrefix(g.Types, "SYSCALL,") {
				k = append(k, g) // not the CONFIG_CHANGE of adding the rule
			}
		}
		return k
	}
	require.Eventually(t, func() bool { return len(keyed()) >= 1 }, 10*time.Second, 10*time.Millisecond, "%v", s.events())

	require.NoError(t, d.Process.Signal(syscall.SIGUSR1)) // rotate
	require.Eventually(t, func() bool { _, err := os.Stat(logPath + ".1"); return err == nil }, 10*time.Second, 10*time.Millisecond)
	write("after")
	// The write after the rotation is in the new file, after auditd's
	// DAEMON_ROTATE record.
	require.Eventually(t, func() bool {
		rotated := false
		for _, g := range s.events() {
			rotated = rotated || g.Types == "DAEMON_ROTATE"
			if rotated && strings.Contains(g.Msg, "key=weir-it") && strings.HasPrefix(g.Types, "SYSCALL,") {
				return g.Path == logPath
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "%v", s.events())

	// Every line auditd wrote is in exactly one record, once the events
	// still open have timed out (other programs' events, such as
	// nftables', may keep coming).
	var evs []got
	lines, records := 0, 0
	require.Eventually(t, func() bool {
		lines, records = 0, 0
		for _, name := range []string{logPath + ".1", logPath} {
			b, err := os.ReadFile(name)
			require.NoError(t, err)
			lines += strings.Count(string(b), "\n")
		}
		evs = s.events()
		for _, g := range evs {
			records += strings.Count(g.Types, ",") + 1
		}
		return lines == records
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, lines, records)
	serials := map[uint64]int{}
	for _, g := range evs {
		require.NotEqual(t, "ERR", g.Types, "%+v", g)
		serials[g.Serial]++
	}
	for sn, n := range serials {
		require.Equal(t, 1, n, "serial %d emitted %d times: %v", sn, n, evs)
	}
	require.GreaterOrEqual(t, len(keyed()), 2, "%v", evs)
}

// auditStatus parses `auditctl -s`: "enabled 1", "pid 0", ...
func auditStatus(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), " "); ok {
			m[k] = v
		}
	}
	return m
}
