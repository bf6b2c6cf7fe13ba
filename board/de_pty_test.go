package board

import (
	"context"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"

	"github.com/weirgw/weir/sensors/modbus"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/sensors/serialport"
	"github.com/weirgw/weir/sensors/serialport/serialtest"
)

// wire collects what arrives at the far end of the line.
type wire struct {
	mu   sync.Mutex
	got  []byte
	last time.Time
}

func (w *wire) add(b []byte) {
	w.mu.Lock()
	w.got = append(w.got, b...)
	w.last = time.Now()
	w.mu.Unlock()
}

// settled returns how many bytes have arrived once none has for quiet
// (and quiet has passed): bytes already written are on their way through
// socat.
func (w *wire) settled(quiet time.Duration) int {
	end := time.Now().Add(2 * time.Second)
	time.Sleep(quiet)
	for {
		w.mu.Lock()
		n, last := len(w.got), w.last
		w.mu.Unlock()
		if time.Since(last) >= quiet || time.Now().After(end) {
			return n
		}
		time.Sleep(quiet / 4)
	}
}

// reach waits until n bytes have arrived, or for at most max.
func (w *wire) reach(n int, max time.Duration) {
	end := time.Now().Add(max)
	for time.Now().Before(end) {
		w.mu.Lock()
		got := len(w.got)
		w.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// edge is a level written to the driver-enable pin and the bytes that had
// arrived at the far end by then.
type edge struct {
	level gpio.Level
	at    int
}

// recorder notes, at each write of the pin, how many bytes the far end
// has received, once the line is quiet.
type recorder struct {
	gpio.PinOut
	w     *wire
	mu    sync.Mutex
	edges []edge
}

func (r *recorder) Out(l gpio.Level) error {
	if l == gpio.Low {
		// Released after a frame: its bytes have left the port but may
		// still be in socat's hands on a loaded machine. Wait for them
		// (every request of the test is 8 bytes); bytes written only
		// after this release would never come, and the wait would end
		// with them missing.
		r.mu.Lock()
		rises := 0
		for _, e := range r.edges {
			if e.level == gpio.High {
				rises++
			}
		}
		r.mu.Unlock()
		r.w.reach(8*rises, 2*time.Second)
	}
	n := r.w.settled(30 * time.Millisecond)
	r.mu.Lock()
	r.edges = append(r.edges, edge{l, n})
	r.mu.Unlock()
	return r.PinOut.Out(l)
}

// TestDriverEnableAroundEachFrame runs a Modbus RTU master on a pty with
// the sim board's driver-enable pin (rs485.mode pin) and a slave at the
// far end. Every byte of every request must reach the far end while the
// pin is high, and none while it is low: the driver is enabled before the
// first byte and released only after the last has left.
func TestDriverEnableAroundEachFrame(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("serial lines are tested on linux")
	}
	gwEnd, farEnd := serialtest.PTYPair(t)
	cfg := DefaultConfig()
	cfg.Profile = "sim"
	cfg.RS485.Device = gwEnd
	b, err := Open(cfg, nil)
	require.NoError(t, err)
	defer b.Close()
	de := b.DriverEnable()
	require.NotNil(t, de)
	require.Equal(t, gwEnd, de.Device())
	w := &wire{}
	rec := &recorder{PinOut: de.pin, w: w}
	de.pin = rec

	pc := serialport.DefaultConfig()
	pc.Device, pc.Baud = gwEnd, 115200
	pc.RS485.Mode = serialport.RS485Pin
	port, err := serialport.Open(pc, de)
	require.NoError(t, err)
	defer port.Close()
	pc.Device, pc.RS485.Mode = farEnd, serialport.RS485Off
	far, err := serialport.Open(pc, nil)
	require.NoError(t, err)
	defer far.Close()

	// The far end: every byte read is noted, then handed to the slave,
	// which answers on the line.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer pw.Close()
	defer cancel()
	wg.Go(func() {
		buf := make([]byte, 256)
		for ctx.Err() == nil {
			_ = far.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, _ := far.Read(buf)
			if n > 0 {
				w.add(buf[:n])
				if _, err := pw.Write(buf[:n]); err != nil {
					return
				}
			}
		}
	})
	slave := modbustest.New(7, 16)
	wg.Go(func() {
		_ = slave.ServeRTU(ctx, struct {
			io.Reader
			io.Writer
		}{pr, far})
	})

	m, err := modbus.NewRTU(port, modbus.RTUConfig{Name: gwEnd, Baud: 115200, Timeout: time.Second})
	require.NoError(t, err)
	const frames = 3
	for i := range frames {
		regs, err := m.ReadHoldingRegisters(ctx, 7, uint16(i), 2)
		require.NoError(t, err)
		require.Equal(t, []uint16{uint16(i), uint16(i + 1)}, regs)
	}
	total := w.settled(100 * time.Millisecond)

	rec.mu.Lock()
	edges := rec.edges
	rec.mu.Unlock()
	// Drop repeated releases (at open: the board's, then the port's).
	var tx []edge
	for _, e := range edges {
		if len(tx) == 0 && e.level == gpio.Low {
			require.Zero(t, e.at, "released before anything was sent")
			continue
		}
		tx = append(tx, e)
	}
	require.Len(t, tx, 2*frames, "one enable and one release per frame: %+v", edges)
	w.mu.Lock()
	got := w.got
	w.mu.Unlock()
	prev := 0
	for i := range frames {
		rise, fall := tx[2*i], tx[2*i+1]
		require.Equal(t, gpio.High, rise.level)
		require.Equal(t, gpio.Low, fall.level)
		require.Equal(t, prev, rise.at, "frame %d: bytes arrived while the driver was off", i)
		want := modbus.AppendCRC([]byte{7, 3, 0, byte(i), 0, 2})
		require.Equal(t, want, got[rise.at:fall.at], "frame %d: exactly its bytes while the driver was on", i)
		prev = fall.at
	}
	require.Equal(t, prev, total, "bytes arrived after the last release")
	require.Equal(t, gpio.Low, b.Sim().Pin("rs485_de").Read())
	st := b.Status().RS485
	require.Equal(t, uint64(frames), st.Transmits)
	require.False(t, st.Enabled)
}

func TestDriverEnableActiveLow(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Profile = "sim"
	cfg.RS485 = RS485Config{Device: "/dev/ttyS9", Active: Low}
	b, err := Open(cfg, nil)
	require.NoError(t, err)
	pin := b.Sim().Pin("rs485_de")
	require.Equal(t, gpio.High, pin.Read(), "released at open")
	require.NoError(t, b.DriverEnable().Set(true))
	require.Equal(t, gpio.Low, pin.Read())
	require.NoError(t, b.Close())
	require.Equal(t, gpio.High, pin.Read(), "released at close")
}
