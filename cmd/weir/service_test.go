package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// repoRoot is the repository's top, two levels up from cmd/weir.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	return root
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit as
// installed, its ExecStart pointed at a built binary (verify insists the
// command exists) and nothing else changed. Any complaint about the unit
// fails the test, not only the exit status, which ignores unknown keys.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian's systemd package has it): the unit is not verified")
	}
	weir, _ := buildBinaries(t)
	unit, err := os.ReadFile(filepath.Join(repoRoot(t), "dist/systemd/weir.service"))
	require.NoError(t, err)
	require.Contains(t, string(unit), "ExecStart=/usr/bin/weir run --config /etc/weir/weir.yaml\n")
	for _, want := range []string{"Type=notify\n", "WatchdogSec=", "NoNewPrivileges=yes\n", "ProtectSystem=strict\n",
		"ReadWritePaths=/var/lib/weir\n", "PrivateTmp=yes\n", "User=weir\n", "SupplementaryGroups=dialout\n",
		"AmbientCapabilities=\n", "CapabilityBoundingSet=\n"} {
		require.Contains(t, string(unit), want)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "weir.service")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(unit), "ExecStart=/usr/bin/weir", "ExecStart="+weir, 1)), 0o644))
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify:\n%s", out)
	for _, line := range strings.Split(string(out), "\n") {
		require.NotContains(t, line, "weir.service", "systemd-analyze verify complains:\n%s", out)
	}
}

// TestMakeInstall installs into a scratch root, for systemd and for
// BusyBox, with another prefix for the latter.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("make install builds the binaries; skipped with -short")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dest := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("make", append([]string{"-C", repoRoot(t), "install", "DESTDIR=" + dest}, args...)...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "make install %s:\n%s", strings.Join(args, " "), out)
	}
	run()
	for path, mode := range map[string]os.FileMode{
		"usr/bin/weir": 0o755, "usr/lib/systemd/system/weir.service": 0o644,
		"usr/lib/sysusers.d/weir.conf": 0o644, "usr/lib/udev/rules.d/90-weir.rules": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dest, path))
		require.NoError(t, err)
		require.Equal(t, mode, fi.Mode().Perm(), path)
	}
	run("INIT=busybox", "PREFIX=/opt/weir")
	script, err := os.ReadFile(filepath.Join(dest, "etc/init.d/S95weir"))
	require.NoError(t, err)
	require.Contains(t, string(script), "DAEMON=${DAEMON:-/opt/weir/bin/weir}")
	_, err = os.Stat(filepath.Join(dest, "opt/weir/bin/weir"))
	require.NoError(t, err)
}

// TestBusyBoxInitScript runs dist/busybox/S95weir with BusyBox's own sh
// and start-stop-daemon (a directory of applet links first on PATH): start
// runs the gateway, a gateway killed with SIGKILL is started again, stop
// ends both the supervisor and the gateway.
func TestBusyBoxInitScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("start-stop-daemon -c changes user: needs root")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox is not installed (scripts/deps.sh installs it)")
	}
	weir, _ := buildBinaries(t)
	dir := t.TempDir()
	applets := filepath.Join(dir, "applets")
	require.NoError(t, os.Mkdir(applets, 0o755))
	for _, a := range []string{"sh", "start-stop-daemon", "mkdir", "chgrp", "chmod", "chown", "logger", "sleep", "cat", "rm", "touch"} {
		require.NoError(t, os.Symlink(bb, filepath.Join(applets, a)))
	}
	data := filepath.Join(dir, "data")
	config := filepath.Join(dir, "weir.yaml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`gateway: {id: gw-busybox}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
inputs: {files: []}
`, data)), 0o600))
	childPID := filepath.Join(dir, "weir.child.pid")
	env := append(os.Environ(), "PATH="+applets+":"+os.Getenv("PATH"), "DEFAULTS_FILE=/nonexistent",
		"DAEMON="+weir, "PIDFILE="+filepath.Join(dir, "weir.pid"), "CHILDPID="+childPID, "DATA="+data,
		"DAEMON_USER=root", "DAEMON_ARGS=run --config "+config, "RESPAWN_DELAY=1", "SH="+filepath.Join(applets, "sh"))
	script := filepath.Join(repoRoot(t), "dist/busybox/S95weir")
	initd := func(verb string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(applets, "sh"), script, verb)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "S95weir %s: %s", verb, out)
		return string(out)
	}
	gatewayPID := func() int {
		b, _ := os.ReadFile(childPID)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	answers := func() bool {
		return exec.Command(weir, "status", "--config", config).Run() == nil
	}
	require.Contains(t, initd("start"), "Starting weir: OK")
	t.Cleanup(func() {
		// Whatever failed, leave no supervisor or gateway behind.
		if b, err := os.ReadFile(filepath.Join(dir, "weir.pid")); err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if pid := gatewayPID(); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	require.Eventually(t, answers, 20*time.Second, 50*time.Millisecond, "the gateway did not start")
	first := gatewayPID()
	require.Positive(t, first)

	require.NoError(t, syscall.Kill(first, syscall.SIGKILL))
	require.Eventually(t, func() bool { p := gatewayPID(); return p > 0 && p != first && answers() }, 20*time.Second, 50*time.Millisecond,
		"the gateway was not started again")
	second := gatewayPID()

	require.Contains(t, initd("stop"), "Stopping weir: OK")
	require.Error(t, syscall.Kill(second, 0), "the gateway still runs after stop")
	require.False(t, answers())
	_, err = os.Stat(filepath.Join(dir, "weir.pid"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
