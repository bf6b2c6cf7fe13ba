package serialport

import (
	"errors"
	"fmt"
	"time"
)

// Parity of a serial line.
type Parity string

// Parities.
const (
	ParityNone Parity = "none"
	ParityEven Parity = "even"
	ParityOdd  Parity = "odd"
)

// RS485Mode selects how the transmitter of a half-duplex RS-485 line is
// switched.
type RS485Mode string

// RS-485 modes.
const (
	// RS485Off: RS-232, or a transceiver that switches itself.
	RS485Off RS485Mode = "off"
	// RS485Kernel: the UART driver switches RTS (TIOCSRS485); an error if
	// the driver cannot.
	RS485Kernel RS485Mode = "kernel"
	// RS485Pin: a GPIO through a DriverEnable switches the transceiver.
	RS485Pin RS485Mode = "pin"
	// RS485Auto: the kernel if the driver supports it, else the pin.
	RS485Auto RS485Mode = "auto"
)

// RS485 configures direction control.
type RS485 struct {
	Mode RS485Mode `mapstructure:"mode" yaml:"mode"`
	// DelayBeforeSend and DelayAfterSend hold the driver enabled around a
	// frame, for transceivers slow to settle. Millisecond resolution (the
	// kernel's unit).
	DelayBeforeSend time.Duration `mapstructure:"delay_before_send" yaml:"delay_before_send"`
	DelayAfterSend  time.Duration `mapstructure:"delay_after_send" yaml:"delay_after_send"`
	// RTSActiveLow inverts RTS for kernel mode (RTS low while sending).
	RTSActiveLow bool `mapstructure:"rts_active_low" yaml:"rts_active_low"`
}

// Config is one serial line.
type Config struct {
	Device   string `mapstructure:"device" yaml:"device"`
	Baud     int    `mapstructure:"baud" yaml:"baud"`
	DataBits int    `mapstructure:"data_bits" yaml:"data_bits"`
	Parity   Parity `mapstructure:"parity" yaml:"parity"`
	StopBits int    `mapstructure:"stop_bits" yaml:"stop_bits"`
	// ReadTimeout bounds a Read without a deadline: it returns what arrived
	// (possibly nothing) after this long. Deadlines are the finer tool.
	ReadTimeout time.Duration `mapstructure:"read_timeout" yaml:"read_timeout"`
	RS485       RS485         `mapstructure:"rs485" yaml:"rs485"`
}

// DefaultConfig is 19200 baud 8E1, the Modbus serial line guide's default,
// with a 1 s read timeout and no RS-485 switching.
func DefaultConfig() Config {
	return Config{Baud: 19200, DataBits: 8, Parity: ParityEven, StopBits: 1, ReadTimeout: time.Second,
		RS485: RS485{Mode: RS485Off}}
}

// Bauds tarm/serial can set on Linux.
var validBauds = map[int]bool{
	50: true, 75: true, 110: true, 134: true, 150: true, 200: true, 300: true, 600: true, 1200: true,
	1800: true, 2400: true, 4800: true, 9600: true, 19200: true, 38400: true, 57600: true,
	115200: true, 230400: true, 460800: true, 500000: true, 576000: true, 921600: true,
	1000000: true, 1152000: true, 1500000: true, 2000000: true, 2500000: true, 3000000: true,
	3500000: true, 4000000: true,
}

// Validate checks the configuration without touching the device; errors
// name the key.
func (c Config) Validate() error {
	switch {
	case c.Device == "":
		return errors.New("device: empty")
	case !validBauds[c.Baud]:
		return fmt.Errorf("baud: %d is not a standard rate", c.Baud)
	case c.DataBits < 5 || c.DataBits > 8:
		return fmt.Errorf("data_bits: %d out of range 5..8", c.DataBits)
	case c.StopBits != 1 && c.StopBits != 2:
		return fmt.Errorf("stop_bits: %d is not 1 or 2", c.StopBits)
	case c.ReadTimeout < 100*time.Millisecond || c.ReadTimeout > 25*time.Second:
		// termios VTIME: tenths of a second, at most 255 of them.
		return fmt.Errorf("read_timeout: %s out of range 100ms..25s", c.ReadTimeout)
	case c.RS485.DelayBeforeSend < 0 || c.RS485.DelayBeforeSend > time.Second:
		return fmt.Errorf("rs485.delay_before_send: %s out of range 0..1s", c.RS485.DelayBeforeSend)
	case c.RS485.DelayAfterSend < 0 || c.RS485.DelayAfterSend > time.Second:
		return fmt.Errorf("rs485.delay_after_send: %s out of range 0..1s", c.RS485.DelayAfterSend)
	}
	switch c.Parity {
	case ParityNone, ParityEven, ParityOdd:
	default:
		return fmt.Errorf("parity: %q is not none, even or odd", c.Parity)
	}
	switch c.RS485.Mode {
	case RS485Off, RS485Kernel, RS485Pin, RS485Auto, "":
	default:
		return fmt.Errorf("rs485.mode: %q is not off, kernel, pin or auto", c.RS485.Mode)
	}
	return nil
}

// CharBits is the bits per character on the wire: start, data, parity and
// stop.
func (c Config) CharBits() int {
	n := 1 + c.DataBits + c.StopBits
	if c.Parity != ParityNone {
		n++
	}
	return n
}

// DriverEnable switches an RS-485 transceiver's driver: transmit true
// enables it (the line is ours), false releases the line to receive. The
// board package implements it on a GPIO.
type DriverEnable interface {
	Set(transmit bool) error
}
