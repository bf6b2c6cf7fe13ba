//go:build linux

package audit

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

var capture = flag.Bool("capture", false, "as root: capture netlink messages from this kernel into testdata/netlink-*")

// kernelAudit skips unless this test may own the kernel's audit state
// (root, an audit-capable kernel that lets it control audit, no audit
// daemon registered, not locked) and restores that state after it:
// rules, enabled flag, backlog settings. It returns a control client.
func kernelAudit(t *testing.T) *libaudit.AuditClient {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: changes the kernel's audit state")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the kernel's audit socket needs CAP_AUDIT_CONTROL (unicast) and CAP_AUDIT_READ (multicast)")
	}
	c, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Skipf("the kernel's audit socket cannot be opened: %v", err)
	}
	st, err := c.GetStatus()
	if err != nil {
		c.Close()
		t.Skipf("the kernel refuses its audit status: %v (no CAP_AUDIT_CONTROL here, or not the initial pid namespace; CapEff %s)", err, capEff())
	}
	if st.Enabled == 2 {
		c.Close()
		t.Skip("the kernel's audit configuration is locked until reboot (enabled 2)")
	}
	if st.PID != 0 && processAlive(st.PID) {
		c.Close()
		t.Skipf("an audit daemon (pid %d) is registered; not replacing it", st.PID)
	}
	rules, err := c.GetRules()
	require.NoError(t, err)
	t.Cleanup(func() {
		defer c.Close()
		if _, err := c.DeleteRules(); err != nil {
			t.Errorf("restore the kernel's rules: %v", err)
		}
		for _, r := range rules {
			if err := c.AddRule(r); err != nil {
				t.Errorf("restore the kernel's rules: %v", err)
			}
		}
		for _, err := range []error{
			c.SetBacklogLimit(st.BacklogLimit, libaudit.WaitForReply),
			c.SetRateLimit(st.RateLimit, libaudit.WaitForReply),
			c.SetBacklogWaitTime(int32(st.BacklogWaitTime), libaudit.WaitForReply),
			c.SetEnabled(st.Enabled == 1, libaudit.WaitForReply),
		} {
			if err != nil {
				t.Errorf("restore the kernel's audit settings: %v", err)
			}
		}
	})
	return c
}

func capEff() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// startAuditd runs the real auditd (Debian package auditd) on a private
// log in format (RAW or ENRICHED) until the test ends.
func startAuditd(t *testing.T, dir, format string) (logPath string) {
	t.Helper()
	auditd, err := exec.LookPath("auditd")
	if err != nil {
		t.Skip("auditd not installed (Debian package auditd; scripts/deps.sh installs it)")
	}
	logPath = filepath.Join(dir, "log", "audit.log")
	confDir := filepath.Join(dir, "conf")
	for _, d := range []string{filepath.Dir(logPath), confDir, filepath.Join(confDir, "plugins.d")} {
		require.NoError(t, os.MkdirAll(d, 0o750))
	}
	conf := strings.Replace(fmt.Sprintf(auditdConf, logPath, filepath.Join(confDir, "plugins.d")), "log_format = ENRICHED", "log_format = "+format, 1)
	require.NoError(t, os.WriteFile(filepath.Join(confDir, "auditd.conf"), []byte(conf), 0o640))
	d := exec.Command(auditd, "-n", "-c", confDir)
	out := &strings.Builder{}
	d.Stdout, d.Stderr = out, out
	require.NoError(t, d.Start())
	t.Cleanup(func() {
		_ = d.Process.Signal(syscall.SIGTERM)
		_ = d.Wait()
	})
	require.Eventually(t, func() bool { _, err := os.Stat(logPath); return err == nil }, 10*time.Second, 20*time.Millisecond,
		"auditd did not create its log: %s", out)
	return logPath
}

func auditctl(t *testing.T, args ...string) {
	t.Helper()
	c := exec.Command("auditctl", args...)
	c.Dir = os.TempDir() // the cwd its event records
	b, err := c.CombinedOutput()
	require.NoError(t, err, "auditctl %v: %s", args, b)
}

// triggers makes the events the capture and live tests look for: an ls
// (execve rule), a read of /etc/shadow by root and a refused one by
// nobody (watch rule), a file created in dir (watch rule).
func triggers(t *testing.T, dir string) {
	t.Helper()
	cmd := func(args ...string) *exec.Cmd {
		c := exec.Command(args[0], args[1:]...)
		c.Dir = dir
		return c
	}
	require.NoError(t, cmd("/usr/bin/ls", dir).Run())
	require.NoError(t, cmd("/usr/bin/cat", "/etc/shadow").Run())
	nobody := cmd("/usr/bin/cat", "/etc/shadow")
	nobody.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	require.Error(t, nobody.Run(), "nobody may not read /etc/shadow")
	require.NoError(t, cmd("/usr/bin/touch", filepath.Join(dir, "created")).Run())
}

// collect reads a session's queue until it is closed.
func collect(q *msgQueue) (msgs func() [][]byte) {
	var mu sync.Mutex
	var got [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range q.ch {
			q.took(b)
			mu.Lock()
			got = append(got, b)
			mu.Unlock()
		}
	}()
	return func() [][]byte {
		<-done
		return got
	}
}

// TestCaptureNetlink captures testdata from this kernel (-capture, as
// root): netlink-unicast.nlhex, Weir as the audit daemon with its rules;
// netlink-multicast.nlhex, the multicast group beside auditd, with
// auditd's log of the same events (RAW format) in
// netlink-multicast.auditd.log.
func TestCaptureNetlink(t *testing.T) {
	if !*capture {
		t.Skip("run with -capture (as root) to capture testdata from this kernel")
	}
	kernelAudit(t)
	dir := "/tmp/weir-capture"
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	uname, _ := exec.Command("uname", "-srm").Output()
	ctx := context.Background()

	t.Run("unicast", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Source, cfg.Mode = SourceNetlink, ModeUnicast
		cfg.Rules = []string{
			"-w /etc/shadow -p r -k shadow",
			"-a always,exit -F arch=b64 -S execve -F path=/usr/bin/ls -k ls",
			"-w " + dir + " -p wa -k capture",
		}
		rd, err := New(cfg, newFakeSpool(), nil)
		require.NoError(t, err)
		q := newMsgQueue()
		k, warnings, err := openKernel(ctx, rd, q)
		require.NoError(t, err)
		require.Empty(t, warnings)
		msgs := collect(q)
		triggers(t, dir)
		time.Sleep(500 * time.Millisecond)
		k.Stop()
		require.NoError(t, k.Close())
		writeNLHex(t, "testdata/netlink-unicast.nlhex", fmt.Sprintf(`Captured by TestCaptureNetlink -capture: the kernel's audit socket in unicast
(Weir the audit daemon) on %s, with the rules
%s
while ls, cat /etc/shadow (root, then nobody) and touch ran.`, strings.TrimSpace(string(uname)), strings.Join(cfg.Rules, "\n")), msgs())
	})

	t.Run("multicast", func(t *testing.T) {
		auditctl(t, "-D")
		logPath := startAuditd(t, t.TempDir(), "RAW")
		rules := [][]string{
			{"-w", "/etc/shadow", "-p", "r", "-k", "shadow"},
			{"-a", "always,exit", "-F", "arch=b64", "-S", "execve", "-F", "path=/usr/bin/ls", "-k", "ls"},
			{"-w", dir, "-p", "wa", "-k", "capture"},
		}
		for _, r := range rules {
			auditctl(t, r...)
		}
		cfg := DefaultConfig()
		cfg.Source, cfg.Mode = SourceNetlink, ModeMulticast
		rd, err := New(cfg, newFakeSpool(), nil)
		require.NoError(t, err)
		q := newMsgQueue()
		k, _, err := openKernel(ctx, rd, q)
		require.NoError(t, err)
		msgs := collect(q)
		triggers(t, dir)
		time.Sleep(500 * time.Millisecond)
		k.Stop()
		require.NoError(t, k.Close())
		got := msgs()
		writeNLHex(t, "testdata/netlink-multicast.nlhex", fmt.Sprintf(`Captured by TestCaptureNetlink -capture: the kernel's multicast group beside
auditd 3 (log_format RAW) on %s, with the rules (auditctl)
%s
while ls, cat /etc/shadow (root, then nobody) and touch ran.
netlink-multicast.auditd.log is auditd's log meanwhile.`, strings.TrimSpace(string(uname)), strings.Join(joinArgs(rules), "\n")), got)
		time.Sleep(200 * time.Millisecond) // auditd writes what it read
		b, err := os.ReadFile(logPath)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile("testdata/netlink-multicast.auditd.log", b, 0o644))
	})
}

func joinArgs(rules [][]string) []string {
	var out []string
	for _, r := range rules {
		out = append(out, strings.Join(r, " "))
	}
	return out
}

// waitRecord waits for a record match accepts and returns its fields.
func waitRecord(t *testing.T, s *fakeSpool, what string, match func(f map[string]any) bool) (event.Event, map[string]any) {
	t.Helper()
	var ev event.Event
	var fields map[string]any
	require.Eventually(t, func() bool {
		for _, e := range s.records() {
			if f := fieldMap(e); match(f) {
				ev, fields = e, f
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "no %s in %v", what, s.events())
	return ev, fields
}

// TestNetlinkUnicastLive: the reader becomes the kernel's audit daemon,
// loads a watch rule from its configuration and sets the backlog; a
// write under the watch is emitted with its typed fields; at stop the
// kernel is released, and a second run becomes its daemon again.
func TestNetlinkUnicastLive(t *testing.T) {
	ctl := kernelAudit(t)
	dir := t.TempDir()
	cfg := netlinkConfig(ModeUnicast)
	cfg.Rules = []string{"-w " + dir + " -p wa -k weir-unicast"}
	limit := 4096
	cfg.BacklogLimit = &limit
	for run := range 2 {
		t.Run(fmt.Sprint("run ", run), func(t *testing.T) {
			s := newFakeSpool()
			rd, stop := start(t, cfg, s)
			require.Eventually(t, func() bool {
				st := rd.Status()
				return st.State == StateReading && st.Netlink.RulesLoaded == 1
			}, 10*time.Second, 5*time.Millisecond, "%+v", rd.Status())
			st, err := ctl.GetStatus()
			require.NoError(t, err)
			require.EqualValues(t, os.Getpid(), st.PID, "Weir is the audit daemon")
			require.EqualValues(t, 1, st.Enabled)
			require.EqualValues(t, limit, st.BacklogLimit)
			require.EqualValues(t, DefaultBacklogWaitTime, st.BacklogWaitTime)
			_, f := waitRecord(t, s, "the rule's CONFIG_CHANGE", func(f map[string]any) bool {
				return f["types"] == "CONFIG_CHANGE" && f["op"] == "add_rule" && f["key"] == "weir-unicast"
			})
			require.Equal(t, ModeUnicast, f["netlink"])

			name := filepath.Join(dir, fmt.Sprint("file", run))
			require.NoError(t, exec.Command("/usr/bin/touch", name).Run())
			ev, f := waitRecord(t, s, "the write under the watch", func(f map[string]any) bool {
				return f["key"] == "weir-unicast" && strings.HasPrefix(fmt.Sprint(f["types"]), "SYSCALL,")
			})
			require.Equal(t, ModeUnicast, f["netlink"])
			require.NotContains(t, f, "path", "the file source's fields are not made up")
			require.NotContains(t, f, "offset")
			require.Equal(t, "/usr/bin/touch", f["exe"])
			require.Equal(t, true, f["success"])
			require.NotContains(t, f["types"], "EOE", "the kernel's end-of-event record ends the event and is not kept, as auditd does")
			require.Contains(t, []any{f["path.0.name"], f["path.1.name"]}, name)
			require.True(t, strings.HasPrefix(f["raw"].(string), "type=SYSCALL msg=audit("), f["raw"])
			require.NotZero(t, ev.Observed)
			require.Contains(t, ev.Message, "exe=/usr/bin/touch")

			stop()
			st, err = ctl.GetStatus()
			require.NoError(t, err)
			require.Zero(t, st.PID, "released at stop")
			require.Equal(t, StateStopped, rd.Status().State)
			require.Zero(t, rd.Status().Lost)
		})
	}
}

// TestNetlinkLostLive: with a kernel rate limit of one record a second,
// a burst makes the kernel count records lost; the reader emits a
// warning record saying how many, and keeps the count in Status.
func TestNetlinkLostLive(t *testing.T) {
	kernelAudit(t)
	dir := t.TempDir()
	cfg := netlinkConfig(ModeUnicast)
	cfg.Rules = []string{"-w " + dir + " -p wa -k weir-lost"}
	one := 1
	cfg.RateLimit = &one
	s := newFakeSpool()
	rd, err := New(cfg, s, nil)
	require.NoError(t, err)
	rd.statusEvery = 20 * time.Millisecond
	runReader(t, rd, s, context.Background())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("status %+v", rd.Status())
		}
	})
	require.Eventually(t, func() bool { return rd.Status().Netlink.RulesLoaded == 1 }, 10*time.Second, 5*time.Millisecond)
	// In a process started now: one started while auditing was off
	// (this test's) is not audited.
	burst := exec.Command("/bin/sh", "-c", "for i in $(seq 50); do : > f$i; done")
	burst.Dir = dir
	require.NoError(t, burst.Run())
	ev, f := waitRecord(t, s, "the warning of records lost", func(f map[string]any) bool {
		lost, _ := f["lost"].(uint64)
		return lost > 0
	})
	require.Equal(t, event.SevWarning, ev.Severity)
	require.Equal(t, event.PriorityCritical, ev.Priority)
	require.Contains(t, ev.Message, "the kernel lost")
	require.EqualValues(t, 1, f["rate_limit"])
	require.GreaterOrEqual(t, f["kernel_lost"].(uint64), f["lost"].(uint64))
	require.NotZero(t, rd.Status().Netlink.KernelLost)
}

// TestNetlinkMulticastBesideAuditd: with the real auditd as the kernel's
// audit daemon, mode auto reads the multicast group; a write under
// auditd's watch rule gives the same record from the kernel as from
// auditd's log (raw format) through the file source.
func TestNetlinkMulticastBesideAuditd(t *testing.T) {
	ctl := kernelAudit(t)
	tmp := t.TempDir()
	watched := filepath.Join(tmp, "watched")
	require.NoError(t, os.Mkdir(watched, 0o755))
	logPath := startAuditd(t, tmp, "RAW")
	auditctl(t, "-w", watched, "-p", "wa", "-k", "weir-multicast")
	var st *libaudit.AuditStatus
	require.Eventually(t, func() bool {
		var err error
		st, err = ctl.GetStatus()
		return err == nil && st.PID != 0
	}, 10*time.Second, 10*time.Millisecond, "auditd did not become the audit daemon")

	s := newFakeSpool()
	cfg := netlinkConfig(ModeAuto)
	cfg.Rules = []string{"-w " + tmp + " -p wa -k not-loaded"} // for when auto picks unicast
	rd, stop := start(t, cfg, s)
	require.Eventually(t, func() bool { return rd.Status().State == StateReading }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, ModeMulticast, rd.Status().Netlink.Mode, "auto: auditd holds the socket")
	warned, _ := waitRecord(t, s, "the warning that the rules are not loaded", func(f map[string]any) bool { return f["types"] == nil })
	require.Contains(t, warned.Message, fmt.Sprintf("rules and backlog settings not applied: the audit daemon pid %d holds the kernel's audit socket", st.PID))
	require.Equal(t, event.SevWarning, warned.Severity)
	out, err := exec.Command("auditctl", "-l").CombinedOutput()
	require.NoError(t, err)
	require.NotContains(t, string(out), "not-loaded", "auditd's rules are left alone")
	name := filepath.Join(watched, "file")
	require.NoError(t, exec.Command("/usr/bin/touch", name).Run())
	_, k := waitRecord(t, s, "the write under auditd's watch", func(f map[string]any) bool {
		return f["key"] == "weir-multicast" && strings.HasPrefix(fmt.Sprint(f["types"]), "SYSCALL,")
	})
	require.Equal(t, ModeMulticast, k["netlink"])
	stop()
	after, err := ctl.GetStatus()
	require.NoError(t, err)
	require.Equal(t, st.PID, after.PID, "auditd is still the audit daemon")
	require.EqualValues(t, st.PID, rd.Status().Netlink.DaemonPID)

	var f map[string]any
	require.Eventually(t, func() bool {
		for _, ev := range eventsOf(t, readLines(t, logPath), true) {
			if m := fieldMap(ev); m["serial"] == k["serial"] {
				f = m
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "serial %v not in auditd's log", k["serial"])
	delete(f, "path")
	delete(f, "offset")
	delete(k, "netlink")
	require.Equal(t, f, k)
}
