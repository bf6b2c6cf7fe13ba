package gateway

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/sensors/serialport"
	"github.com/weirgw/weir/sensors/serialport/serialtest"
)

// kicks reads a FIFO standing in for /dev/watchdog and notes when each
// kick arrives, and whether the magic close came.
type kicks struct {
	mu    sync.Mutex
	at    []time.Time
	magic bool
}

func fakeWatchdog(t *testing.T) (string, *kicks) {
	t.Helper()
	dev := filepath.Join(t.TempDir(), "watchdog")
	require.NoError(t, syscall.Mkfifo(dev, 0o600))
	r, err := os.OpenFile(dev, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	require.NoError(t, err)
	k := &kicks{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for ctx.Err() == nil {
			n, err := r.Read(buf)
			now := time.Now()
			k.mu.Lock()
			for _, c := range buf[:n] {
				if c == 'V' {
					k.magic = true
				} else {
					k.at = append(k.at, now)
				}
			}
			k.mu.Unlock()
			if err == io.EOF || n == 0 {
				time.Sleep(5 * time.Millisecond) // no writer (yet, or any more)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; r.Close() })
	return dev, k
}

func (k *kicks) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.at)
}

// withheld waits until the health check reports the problem (a
// substring of one), then checks that no kick comes for three check
// intervals while it lasts, and returns the verdict that withheld them.
func (k *kicks) withheld(t *testing.T, g *Gateway, problem string) Health {
	t.Helper()
	var h Health
	require.Eventually(t, func() bool {
		h = g.health.snapshot()
		return !h.OK && strings.Contains(strings.Join(h.Problems, "; "), problem)
	}, 10*time.Second, 10*time.Millisecond, "the health check did not see %q", problem)
	time.Sleep(3 * testCheckInterval)
	// Every kick the device got was made by the time of that verdict.
	require.NotNil(t, h.Watchdog)
	require.Equal(t, int(h.Watchdog.Kicks), k.count(), "kicked while unhealthy: %+v", g.health.snapshot())
	require.False(t, g.health.snapshot().OK, "the fault lasts")
	return h
}

// resumed waits for n kicks after t0.
func (k *kicks) resumed(t *testing.T, t0 time.Time, n int, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		c := 0
		for _, at := range k.at {
			if at.After(t0) {
				c++
			}
		}
		return c >= n
	}, timeout, 10*time.Millisecond, "the kicks did not resume")
}

const testCheckInterval = 200 * time.Millisecond

func boardWatchdogYAML(dev string, stall time.Duration) string {
	return fmt.Sprintf(`board:
  profile: sim
  watchdog: {device: %s, timeout: 2s, interval: %s, stall: %s}
`, dev, testCheckInterval, stall)
}

// TestWatchdogStopsWhenSpoolUnwritable makes the spool's directory
// read-only under the running gateway (a read-only bind mount: what the
// spool's next file would meet on a file system remounted read-only after
// errors). The kicks stop within one check interval and resume once the
// directory is writable again; a clean stop ends with the magic close.
func TestWatchdogStopsWhenSpoolUnwritable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount the spool read-only")
	}
	dev, k := fakeWatchdog(t)
	data := filepath.Join(t.TempDir(), "data")
	file := writeConfig(t, fmt.Sprintf(`gateway: {id: gw-wd}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
inputs: {files: []}
%s`, data, boardWatchdogYAML(dev, 2*time.Second)))
	g := newTestGateway(t, file)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
	})
	require.Eventually(t, func() bool { return k.count() >= 3 }, 20*time.Second, 10*time.Millisecond, "no kicks")
	h := g.health.snapshot()
	require.True(t, h.OK, "%+v", h)
	require.NotNil(t, h.Watchdog)
	require.Equal(t, dev, h.Watchdog.Device)

	spoolDir := filepath.Join(data, "spool")
	require.NoError(t, unix.Mount(spoolDir, spoolDir, "", unix.MS_BIND, ""))
	mounted := true
	unmount := func() {
		if mounted {
			// Detached: a file Badger created between the bind and the
			// remount holds the bind mount, and would make it busy.
			require.NoError(t, unix.Unmount(spoolDir, unix.MNT_DETACH))
			mounted = false
		}
	}
	t.Cleanup(unmount)
	require.NoError(t, unix.Mount("", spoolDir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""))
	t0 := time.Now()
	h = k.withheld(t, g, "read-only file system")
	seen := h.Since.Sub(t0)
	t.Logf("the first check after the spool became read-only came %s later (check interval %s)", seen, testCheckInterval)
	// The next check sees it; a check that started before the fault may
	// still take its time (its spool probe may wait up to 500ms).
	require.Less(t, seen, testCheckInterval+500*time.Millisecond, "the fault went unseen for more than one check")
	require.Contains(t, h.SpoolProblem, "read-only file system")
	require.Equal(t, "fast", g.Board().LEDPattern(0).String(), "power LED")

	unmount()
	t1 := time.Now()
	k.resumed(t, t1, 3, 10*time.Second)
	require.True(t, g.health.snapshot().OK)

	cancel()
	require.NoError(t, <-done)
	stopped = true
	require.Eventually(t, func() bool { k.mu.Lock(); defer k.mu.Unlock(); return k.magic }, 5*time.Second, 10*time.Millisecond,
		"a clean stop writes the magic 'V'")
}

// TestWatchdogStopsWhenASourceIsWedged wedges a Modbus bus the way a line
// with flow control does: the gateway's tty is told to honour XON/XOFF
// and the far end sends XOFF, so the bus's next write never returns. The
// kicks stop once the bus is stall past its schedule, and resume after
// XON.
func TestWatchdogStopsWhenASourceIsWedged(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ptys and termios flow control are tested on linux")
	}
	dev, k := fakeWatchdog(t)
	gwEnd, farEnd := serialtest.PTYPair(t)
	pc := serialport.DefaultConfig()
	pc.Device, pc.Baud = farEnd, 115200
	far, err := serialport.Open(pc, nil)
	require.NoError(t, err)
	t.Cleanup(func() { far.Close() })
	slave := modbustest.New(7, 8)
	sctx, scancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { _ = slave.ServeRTU(sctx, far); close(served) }()
	t.Cleanup(func() { scancel(); <-served })

	const stall = time.Second
	data := filepath.Join(t.TempDir(), "data")
	file := writeConfig(t, fmt.Sprintf(`gateway: {id: gw-wedge}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
inputs:
  files: []
  modbus:
    buses: [{name: rtu1, type: rtu, serial: {device: %s, baud: 115200}, timeout: 200ms}]
    devices:
      - {name: meter, bus: rtu1, unit: 7, interval: 100ms, registers: [{name: level, register: holding, address: 0}]}
%s`, data, gwEnd, boardWatchdogYAML(dev, stall)))
	g := runBoardGateway(t, file)
	require.Eventually(t, func() bool {
		st := g.now().modbusStatus()
		return k.count() >= 3 && len(st.Buses) == 1 && st.Buses[0].Devices[0].State == "ok"
	}, 20*time.Second, 10*time.Millisecond, "no kicks, or no polls")

	// IXON on the gateway's tty (termios is the tty's, whoever opened it).
	tty, err := os.OpenFile(gwEnd, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	require.NoError(t, err)
	t.Cleanup(func() { tty.Close() })
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	require.NoError(t, err)
	orig := *tio
	tio.Iflag |= unix.IXON
	tio.Cc[unix.VSTOP], tio.Cc[unix.VSTART] = 0x13, 0x11 // raw mode may have cleared them
	require.NoError(t, unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, tio))
	unwedge := func() {
		_ = unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, &orig)
		_, _ = far.Write([]byte{0x11}) // XON
	}
	t.Cleanup(unwedge)               // before the gateway's stop, which would wait for the bus
	_, err = far.Write([]byte{0x13}) // XOFF
	require.NoError(t, err)
	t0 := time.Now()
	h := k.withheld(t, g, "inputs.modbus bus rtu1: device meter is")
	t.Logf("kicks withheld %s after XOFF (device interval 100ms, stall %s, check interval %s)", h.Since.Sub(t0), stall, testCheckInterval)
	require.Contains(t, fmt.Sprint(h.Problems), "past its poll (the bus is stuck)")

	unwedge()
	t1 := time.Now()
	k.resumed(t, t1, 3, 10*time.Second)
	require.True(t, g.health.snapshot().OK)
}

// TestNoWatchdogDevice: a device that does not exist is said once and the
// gateway runs on, its health still checked.
func TestNoWatchdogDevice(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	missing := filepath.Join(t.TempDir(), "watchdog")
	file := writeConfig(t, fmt.Sprintf(`gateway: {id: gw-nowd}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
inputs: {files: []}
%s`, data, boardWatchdogYAML(missing, time.Second)))
	g := runBoardGateway(t, file)
	require.Eventually(t, func() bool { return g.health.snapshot().Kicks >= 2 }, 10*time.Second, 10*time.Millisecond)
	h := g.health.snapshot()
	require.True(t, h.OK)
	require.Nil(t, h.Watchdog)
	require.Equal(t, "no "+missing, h.WatchdogNote)
}
