package main

import (
	"encoding/json"
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

	"github.com/weirgw/weir/gateway"
)

// TestSystemdUnitReloads: systemctl reload sends the main process SIGHUP
// (TestSystemdUnitVerifies checks the unit as a whole).
func TestSystemdUnitReloads(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join(repoRoot(t), "dist/systemd/weir.service"))
	require.NoError(t, err)
	require.Contains(t, string(unit), "\nExecReload=/bin/kill -HUP $MAINPID\n")
}

// TestBusyBoxInitScriptReload runs dist/busybox/S95weir's reload with
// BusyBox's own sh: the running gateway (not started again) takes the
// changed file; a HUP sent to the supervisor reaches the gateway too, and
// leaves the supervisor running.
func TestBusyBoxInitScriptReload(t *testing.T) {
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
	for _, a := range []string{"sh", "start-stop-daemon", "mkdir", "chgrp", "chmod", "chown", "logger", "sleep", "cat", "rm", "touch", "kill"} {
		require.NoError(t, os.Symlink(bb, filepath.Join(applets, a)))
	}
	data := filepath.Join(dir, "data")
	config := filepath.Join(dir, "weir.yaml")
	sock := filepath.Join(data, "weir.sock")
	write := func(telemetry string) {
		require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`gateway: {id: gw-busybox}
data_dir: %s
telemetry_interval: %s
metrics: {listen: ""}
inputs: {files: []}
`, data, telemetry)), 0o600))
	}
	write("1h")
	childPID, pidFile := filepath.Join(dir, "weir.child.pid"), filepath.Join(dir, "weir.pid")
	env := append(os.Environ(), "PATH="+applets+":"+os.Getenv("PATH"), "DEFAULTS_FILE=/nonexistent",
		"DAEMON="+weir, "PIDFILE="+pidFile, "CHILDPID="+childPID, "DATA="+data,
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
	pidIn := func(f string) int {
		b, _ := os.ReadFile(f)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	status := func() (gateway.ConfigStatus, bool) {
		out, err := exec.Command(weir, "status", "--json", "--socket", sock).Output()
		if err != nil {
			return gateway.ConfigStatus{}, false
		}
		var st gateway.Status
		require.NoError(t, json.Unmarshal(out, &st))
		return st.Config, true
	}
	require.Contains(t, initd("start"), "Starting weir: OK")
	t.Cleanup(func() {
		for _, f := range []string{pidFile, childPID} {
			if pid := pidIn(f); pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	require.Eventually(t, func() bool { _, ok := status(); return ok }, 20*time.Second, 50*time.Millisecond, "the gateway did not start")
	gw := pidIn(childPID)

	write("2h")
	require.Contains(t, initd("reload"), "Reloading weir: OK")
	var cs gateway.ConfigStatus
	require.Eventually(t, func() bool { cs, _ = status(); return cs.Generation == 2 }, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, []string{"telemetry_interval: updated"}, cs.LastReload.Changed)
	require.Equal(t, gw, pidIn(childPID), "reloaded, not started again")

	require.NoError(t, syscall.Kill(pidIn(pidFile), syscall.SIGHUP))
	require.Eventually(t, func() bool { cs, _ = status(); return cs.Reloads[gateway.ReloadUnchanged] == 1 }, 20*time.Second, 50*time.Millisecond,
		"the supervisor passes a HUP on")
	require.Equal(t, gw, pidIn(childPID))
	require.NoError(t, syscall.Kill(pidIn(pidFile), 0), "the supervisor runs on")

	require.Contains(t, initd("stop"), "Stopping weir: OK")
	require.Error(t, syscall.Kill(gw, 0), "the gateway still runs after stop")
	cmd := exec.Command(filepath.Join(applets, "sh"), script, "reload")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "Reloading weir: FAIL (not running)")
}
