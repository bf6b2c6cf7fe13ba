package serialport

import (
	"fmt"
	"time"

	"github.com/tarm/serial"
)

// Port is an open serial line. Read, Write and SetReadDeadline fit
// modbus.Port. Not safe for concurrent writes; one bus has one user.
type Port struct {
	cfg      Config
	line     *serial.Port // holds the configuration
	io       ioPort       // what reads and writes go through
	de       DriverEnable // nil unless RS-485 mode is pin
	rs485    RS485Mode    // the mode in effect: off, kernel or pin
	charTime time.Duration
	lock     *lineLock // the line is ours while the port is open
}

// ioPort is the platform's I/O side of a Port.
type ioPort interface {
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	SetReadDeadline(t time.Time) error
	drain() error // block until written bytes have left the UART
	Close() error
}

func tarmConfig(c Config) *serial.Config {
	sc := &serial.Config{Name: c.Device, Baud: c.Baud, ReadTimeout: c.ReadTimeout, Size: byte(c.DataBits),
		StopBits: serial.Stop1}
	if c.StopBits == 2 {
		sc.StopBits = serial.Stop2
	}
	switch c.Parity {
	case ParityEven:
		sc.Parity = serial.ParityEven
	case ParityOdd:
		sc.Parity = serial.ParityOdd
	default:
		sc.Parity = serial.ParityNone
	}
	return sc
}

// Open opens and configures the line. de is needed for RS-485 modes pin
// and auto (as the fallback) and ignored otherwise; pass nil when the board
// has no driver-enable pin.
//
// The line is locked first (an exclusive flock on the tty, and a UUCP lock
// file in /run/lock where that is writable) and an *InUseError names the
// process holding it: one master per line.
func Open(cfg Config, de DriverEnable) (*Port, error) {
	return open(cfg, de, uucpLockDir)
}

func open(cfg Config, de DriverEnable, lockDir string) (*Port, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("serialport: %s: %w", cfg.Device, err)
	}
	if cfg.RS485.Mode == "" {
		cfg.RS485.Mode = RS485Off
	}
	if cfg.RS485.Mode == RS485Pin && de == nil {
		return nil, fmt.Errorf("serialport: %s: rs485.mode: pin needs a driver-enable pin and the board has none", cfg.Device)
	}
	lock, err := lockLine(cfg.Device, lockDir)
	if err != nil {
		return nil, fmt.Errorf("serialport: %w", err)
	}
	line, err := serial.OpenPort(tarmConfig(cfg))
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("serialport: open %s: %w", cfg.Device, err)
	}
	p := &Port{cfg: cfg, line: line, lock: lock, charTime: time.Duration(cfg.CharBits()) * time.Second / time.Duration(cfg.Baud)}
	p.io, err = openIO(cfg, line)
	if err != nil {
		line.Close()
		lock.release()
		return nil, fmt.Errorf("serialport: open %s: %w", cfg.Device, err)
	}
	if err := p.setupRS485(de); err != nil {
		p.Close()
		return nil, fmt.Errorf("serialport: %s: rs485: %w", cfg.Device, err)
	}
	return p, nil
}

func (p *Port) setupRS485(de DriverEnable) error {
	switch p.cfg.RS485.Mode {
	case RS485Off:
		p.rs485 = RS485Off
		return nil
	case RS485Pin:
		p.de, p.rs485 = de, RS485Pin
		return de.Set(false)
	}
	supported, err := setKernelRS485(p.io, p.cfg.RS485)
	if err != nil {
		return err
	}
	if supported {
		p.rs485 = RS485Kernel
		return nil
	}
	if p.cfg.RS485.Mode == RS485Kernel {
		return fmt.Errorf("mode kernel: the driver of %s does not support TIOCSRS485", p.cfg.Device)
	}
	if de == nil {
		return fmt.Errorf("mode auto: the driver of %s does not support TIOCSRS485 and the board has no driver-enable pin", p.cfg.Device)
	}
	p.de, p.rs485 = de, RS485Pin
	return de.Set(false)
}

// RS485Mode returns the direction control in effect: off, kernel or pin.
func (p *Port) RS485Mode() RS485Mode { return p.rs485 }

// Name returns the device path.
func (p *Port) Name() string { return p.cfg.Device }

// Config returns the configuration the port was opened with.
func (p *Port) Config() Config { return p.cfg }

// Read reads what has arrived, waiting up to the read deadline (or the read
// timeout).
func (p *Port) Read(b []byte) (int, error) { return p.io.Read(b) }

// SetReadDeadline bounds the next reads, as on a net.Conn.
func (p *Port) SetReadDeadline(t time.Time) error { return p.io.SetReadDeadline(t) }

// Write sends b. With a driver-enable pin it enables the driver first and
// releases the line only once the last byte has left the UART, so the
// answer's first byte is not lost to a driver still enabled, nor ours
// truncated by one disabled too soon.
func (p *Port) Write(b []byte) (int, error) {
	if p.de == nil {
		return p.io.Write(b)
	}
	if err := p.de.Set(true); err != nil {
		return 0, fmt.Errorf("driver enable: %w", err)
	}
	time.Sleep(p.cfg.RS485.DelayBeforeSend)
	n, err := p.io.Write(b)
	if derr := p.io.drain(); derr != nil && err == nil {
		// No tcdrain: wait out the bytes' time on the wire instead.
		time.Sleep(time.Duration(n) * p.charTime)
	}
	time.Sleep(p.cfg.RS485.DelayAfterSend)
	if rerr := p.de.Set(false); rerr != nil && err == nil {
		err = fmt.Errorf("driver release: %w", rerr)
	}
	return n, err
}

// Close closes the line, then lets it go. A driver-enable pin is left
// released.
func (p *Port) Close() error {
	err := p.io.Close()
	if e := p.line.Close(); err == nil {
		err = e
	}
	p.lock.release()
	return err
}
