package serialport_test

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/sensors/serialport"
	"github.com/weirgw/weir/sensors/serialport/serialtest"
)

func TestConfigValidate(t *testing.T) {
	ok := serialport.DefaultConfig()
	ok.Device = "/dev/ttyS1"
	mod := func(f func(*serialport.Config)) serialport.Config {
		c := ok
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  serialport.Config
		want string
	}{
		{"default", ok, ""},
		{"no device", mod(func(c *serialport.Config) { c.Device = "" }), "device:"},
		{"odd baud", mod(func(c *serialport.Config) { c.Baud = 12345 }), "baud:"},
		{"data bits", mod(func(c *serialport.Config) { c.DataBits = 9 }), "data_bits:"},
		{"stop bits", mod(func(c *serialport.Config) { c.StopBits = 3 }), "stop_bits:"},
		{"parity", mod(func(c *serialport.Config) { c.Parity = "mark" }), "parity:"},
		{"read timeout", mod(func(c *serialport.Config) { c.ReadTimeout = time.Millisecond }), "read_timeout:"},
		{"rs485 mode", mod(func(c *serialport.Config) { c.RS485.Mode = "yes" }), "rs485.mode:"},
		{"rs485 delay", mod(func(c *serialport.Config) { c.RS485.DelayAfterSend = -1 }), "rs485.delay_after_send:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
	require.Equal(t, 11, ok.CharBits(), "8E1")
}

type fakePin struct {
	mu  sync.Mutex
	log []bool
}

func (p *fakePin) Set(tx bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, tx)
	return nil
}

func openPair(t *testing.T, mode serialport.RS485Mode, de serialport.DriverEnable) (*serialport.Port, *serialport.Port, error) {
	if runtime.GOOS != "linux" {
		t.Skip("serial lines are tested on linux")
	}
	a, b := serialtest.PTYPair(t)
	cfg := serialport.DefaultConfig()
	cfg.Baud = 115200
	cfg.Device = a
	cfg.RS485.Mode = mode
	pa, err := serialport.Open(cfg, de)
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { pa.Close() })
	cfg.Device, cfg.RS485.Mode = b, serialport.RS485Off
	pb, err := serialport.Open(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { pb.Close() })
	return pa, pb, nil
}

func TestPortOverPTY(t *testing.T) {
	pa, pb, err := openPair(t, serialport.RS485Off, nil)
	require.NoError(t, err)
	require.Equal(t, serialport.RS485Off, pa.RS485Mode())
	msg := []byte("\x01\x03\x00\x00\x00\x0a\xc5\xcd")
	_, err = pa.Write(msg)
	require.NoError(t, err)
	got := make([]byte, 0, 16)
	buf := make([]byte, 16)
	require.NoError(t, pb.SetReadDeadline(time.Now().Add(2*time.Second)))
	for len(got) < len(msg) {
		n, err := pb.Read(buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
	}
	require.Equal(t, msg, got)

	// A deadline ends a read on a silent line within milliseconds, not
	// the read timeout's tenths of seconds.
	start := time.Now()
	require.NoError(t, pb.SetReadDeadline(time.Now().Add(5*time.Millisecond)))
	_, err = pb.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Less(t, time.Since(start), 100*time.Millisecond)
}

// A pty has no RS-485 mode, like most USB adapters: kernel mode fails with
// a reason, auto falls back to the pin, pin mode uses it.
func TestRS485Fallback(t *testing.T) {
	_, _, err := openPair(t, serialport.RS485Kernel, nil)
	require.ErrorContains(t, err, "does not support TIOCSRS485")
	require.ErrorContains(t, err, "rs485")

	_, _, err = openPair(t, serialport.RS485Auto, nil)
	require.ErrorContains(t, err, "no driver-enable pin")

	_, _, err = openPair(t, serialport.RS485Pin, nil)
	require.ErrorContains(t, err, "rs485.mode: pin needs a driver-enable pin")

	pin := &fakePin{}
	pa, pb, err := openPair(t, serialport.RS485Auto, pin)
	require.NoError(t, err)
	require.Equal(t, serialport.RS485Pin, pa.RS485Mode())
	_, err = pa.Write([]byte{1, 2, 3})
	require.NoError(t, err)
	buf := make([]byte, 8)
	require.NoError(t, pb.SetReadDeadline(time.Now().Add(2*time.Second)))
	n, err := pb.Read(buf)
	require.NoError(t, err)
	require.Positive(t, n)
	pin.mu.Lock()
	defer pin.mu.Unlock()
	require.Equal(t, []bool{false, true, false}, pin.log, "released at open, enabled for the write, released after")
}

type failingPin struct{}

func (failingPin) Set(bool) error { return errors.New("gpio gone") }

func TestRS485PinFailure(t *testing.T) {
	_, _, err := openPair(t, serialport.RS485Pin, failingPin{})
	require.ErrorContains(t, err, "gpio gone")
}
