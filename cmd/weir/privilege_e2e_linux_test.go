//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/weirgw/weir/sensors/serialport/serialtest"
)

// weirUser is the unprivileged user the service files run the gateway as:
// the system user weir, in group dialout for serial lines. It is created
// (or put into dialout) when missing.
func weirUser(t *testing.T) (uid, gid, dialout uint32) {
	t.Helper()
	if _, err := user.Lookup("weir"); err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", "--groups", "dialout", "weir").CombinedOutput()
		require.NoError(t, err, "useradd weir: %s", out)
	} else {
		out, err := exec.Command("usermod", "--append", "--groups", "dialout", "weir").CombinedOutput()
		require.NoError(t, err, "usermod weir: %s", out)
	}
	u, err := user.Lookup("weir")
	require.NoError(t, err)
	d, err := user.LookupGroup("dialout")
	require.NoError(t, err)
	atoi := func(s string) uint32 {
		n, err := strconv.ParseUint(s, 10, 32)
		require.NoError(t, err)
		return uint32(n)
	}
	return atoi(u.Uid), atoi(u.Gid), atoi(d.Gid)
}

// freePrivilegedUDP finds a UDP port below 1024 free on loopback.
func freePrivilegedUDP(t *testing.T) int {
	t.Helper()
	for range 100 {
		port := 600 + rand.IntN(400)
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no free UDP port in 600-999 on 127.0.0.1")
	return 0
}

// TestRunUnprivileged runs `weir run` as the weir user, in group dialout,
// with CAP_NET_BIND_SERVICE alone (syslog on a port below 1024), as the
// service files do, and shows that records flow from a tailed file, a
// serial line sensor (a pty given to group dialout, as /dev/ttyS* are)
// and syslog into the spool, and that the admin socket answers the weir
// user's `weir status` and `weir spool inspect`. The gateway logs whom it
// runs as and finds nothing to warn about.
func TestRunUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates the weir system user and starts weir run as it with one capability")
	}
	if testing.Short() {
		t.Skip("end-to-end test builds the binary; skipped with -short")
	}
	uid, gid, dialout := weirUser(t)

	// Everything the weir user reaches lives under a directory it can
	// traverse (the test's TempDir is root's, 0700).
	base, err := os.MkdirTemp("/tmp", "weir-unprivileged-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	bin := filepath.Join(base, "weir")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "build weir: %s", out)
	require.NoError(t, os.Chmod(bin, 0o755))
	data := filepath.Join(base, "data")
	require.NoError(t, os.Mkdir(data, 0o750))
	require.NoError(t, os.Chown(data, int(uid), int(gid)))
	logs := filepath.Join(base, "logs")
	require.NoError(t, os.Mkdir(logs, 0o755))
	logFile := filepath.Join(logs, "app.log")
	require.NoError(t, os.WriteFile(logFile, []byte("first line\n"), 0o644))

	// The line sensor's port: a pty given to root:dialout 0660.
	sensorEnd, ourEnd := serialtest.PTYPair(t)
	tty, err := filepath.EvalSymlinks(sensorEnd)
	require.NoError(t, err)
	require.NoError(t, os.Chown(tty, 0, int(dialout)))
	require.NoError(t, os.Chmod(tty, 0o660))
	gps := openPTY(t, ourEnd)

	port := freePrivilegedUDP(t)
	cfgFile := filepath.Join(base, "weir.yaml")
	cfg := fmt.Sprintf(`gateway:
  id: gw-unprivileged
data_dir: %s
telemetry_interval: 1h
metrics:
  listen: ""
inputs:
  files:
    - {name: app, paths: ["%s/*.log"], start_at: beginning, poll_interval: 20ms}
  lines:
    - {name: gps1, port: {device: %s, baud: 115200}, flush_interval: 20ms}
  syslog:
    udp: {listen: "127.0.0.1:%d"}
    tcp: {listen: ""}
`, data, logs, tty, port)
	require.NoError(t, os.WriteFile(cfgFile, []byte(cfg), 0o644))

	asWeir := func(caps ...uintptr) *syscall.SysProcAttr {
		return &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{dialout}},
			AmbientCaps: caps,
		}
	}
	env := []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	logPath := filepath.Join(base, "gateway.log")
	logOut, err := os.Create(logPath)
	require.NoError(t, err)
	defer logOut.Close()
	cmd := exec.Command(bin, "run", "-c", cfgFile)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = base, env, logOut, logOut
	cmd.SysProcAttr = asWeir(unix.CAP_NET_BIND_SERVICE)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("gateway log:\n%s", b)
		}
	})

	// The CLI as the weir user, with no capability.
	cli := func(args ...string) (string, error) {
		c := exec.Command(bin, args...)
		c.Dir, c.Env, c.SysProcAttr = base, env, asWeir()
		b, err := c.CombinedOutput()
		return string(b), err
	}
	sock := filepath.Join(data, "weir.sock")
	require.Eventually(t, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("weir run exited at start: %v", err)
		default:
		}
		_, err := cli("status", "--socket", sock)
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "the admin socket never answered the weir user")

	// It is the weir user, with CAP_NET_BIND_SERVICE only.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	require.NoError(t, err)
	require.Contains(t, string(status), fmt.Sprintf("\nUid:\t%d\t%d\t%d\t%d\n", uid, uid, uid, uid))
	require.Contains(t, string(status), "\nCapEff:\t0000000000000400\n")

	f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("second line\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = gps.Write([]byte("$GPGLL,4916.45,N,12311.12,W,225444,A*31\r\n"))
	require.NoError(t, err)
	udp, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err)
	defer udp.Close()

	type rec struct {
		Event struct {
			Source  string `json:"source"`
			Message string `json:"message"`
		} `json:"event"`
	}
	want := map[string]string{"app": "second line", "gps1": "$GPGLL,4916.45,N,12311.12,W,225444,A*31", "syslog": "unprivileged hello"}
	require.Eventually(t, func() bool {
		_, _ = udp.Write([]byte("<13>Nov 23 14:40:00 plc7 app: unprivileged hello"))
		out, err := cli("spool", "inspect", "--socket", sock, "--n", "1000")
		if err != nil {
			return false
		}
		seen := map[string]bool{}
		for l := range strings.Lines(out) {
			var r rec
			if json.Unmarshal([]byte(l), &r) == nil && want[r.Event.Source] != "" && strings.Contains(r.Event.Message, want[r.Event.Source]) {
				seen[r.Event.Source] = true
			}
		}
		return len(seen) == len(want)
	}, 20*time.Second, 100*time.Millisecond, "records from the file, the serial line and syslog in the spool")

	out2, err := cli("status", "--socket", sock, "--json")
	require.NoError(t, err, out2)
	var st struct {
		DataDir string `json:"data_dir"`
		Sources []struct {
			Name  string `json:"name"`
			Lines uint64 `json:"lines"`
		} `json:"sources"`
	}
	require.NoError(t, json.Unmarshal([]byte(out2), &st))
	require.Equal(t, data, st.DataDir)
	require.Len(t, st.Sources, 1)
	require.Equal(t, uint64(2), st.Sources[0].Lines)
	fi, err := os.Stat(filepath.Join(data, "spool"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.Equal(t, uid, fi.Sys().(*syscall.Stat_t).Uid)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	stopped = true
	select {
	case err := <-exited:
		require.NoError(t, err, "weir run exits cleanly on SIGTERM")
	case <-time.After(20 * time.Second):
		t.Fatal("weir run did not stop within 20s of SIGTERM")
	}
	logText, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.Contains(t, string(logText), `msg="running as" user=weir uid=`+strconv.Itoa(int(uid)))
	require.Contains(t, string(logText), "groups=")
	require.Contains(t, string(logText), "dialout")
	require.Contains(t, string(logText), "capabilities=CAP_NET_BIND_SERVICE")
	require.NotContains(t, string(logText), "does not need")
	require.NotContains(t, string(logText), "lacks CAP_")
}
