package poll

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/sensors/serialport"
)

// socatPair starts socat linking ptys at a and b; stop kills it, as
// unplugging a USB adapter takes the tty away.
func socatPair(t *testing.T, a, b string) (stop func()) {
	socat, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("socat is not installed (scripts/deps.sh installs it)")
	}
	_ = os.Remove(a)
	_ = os.Remove(b)
	cmd := exec.Command(socat, "-b", "4096", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	require.NoError(t, cmd.Start())
	done := false
	stop = func() {
		if !done {
			done = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	require.Eventually(t, func() bool {
		_, ea := os.Stat(a)
		_, eb := os.Stat(b)
		return ea == nil && eb == nil
	}, 5*time.Second, 10*time.Millisecond)
	return stop
}

func serveSlave(t *testing.T, s *modbustest.Slave, dev string) (stop func()) {
	cfg := serialport.DefaultConfig()
	cfg.Device, cfg.Baud = dev, 115200
	p, err := serialport.Open(cfg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.ServeRTU(ctx, p) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			p.Close()
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestSerialLineReopened: when the tty goes away under a running bus (its
// reads and writes fail), the bus shows down, opens the line again once it
// is back, and readings resume.
func TestSerialLineReopened(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "gw"), filepath.Join(dir, "dev")
	stopSocat := socatPair(t, a, b)
	s := modbustest.New(4, 10)
	stopSlave := serveSlave(t, s, b)
	bc := DefaultBusConfig()
	bc.Name, bc.Timeout, bc.Serial.Device, bc.Serial.Baud = "usb0", 100*time.Millisecond, a, 115200
	bc.ReopenDelay = 200 * time.Millisecond
	d := dev("meter", "usb0", 4, 20*time.Millisecond, RegisterConfig{Name: "r", Register: "holding", Address: 3})
	p, err := New(Config{Buses: []BusConfig{bc}, Devices: []DeviceConfig{d}}, nil, nil)
	require.NoError(t, err)
	out := &sink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx, out) }()
	defer func() { cancel(); <-done }()
	readings := func() int { return len(out.bySource("modbus:meter", event.KindReading)) }
	require.Eventually(t, func() bool { return readings() >= 3 }, 5*time.Second, 10*time.Millisecond)

	stopSlave()
	stopSocat()
	require.Eventually(t, func() bool { return p.Status().Buses[0].State == "down" }, 5*time.Second, 10*time.Millisecond)
	t.Logf("down: %s", p.Status().Buses[0].Error)
	before := readings()

	socatPair(t, a, b)
	serveSlave(t, s, b)
	require.Eventually(t, func() bool { return readings() >= before+3 }, 5*time.Second, 20*time.Millisecond,
		"readings resume after the line is opened again")
	require.Equal(t, "open", p.Status().Buses[0].State)
}
