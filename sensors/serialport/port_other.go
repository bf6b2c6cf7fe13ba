//go:build !linux

package serialport

import (
	"errors"
	"time"

	"github.com/tarm/serial"
)

// otherIO is tarm/serial's port as it is: no read deadlines finer than the
// read timeout, which the Modbus RTU master needs. Weir runs on Linux; this
// keeps the package (and its tests) building elsewhere.
type otherIO struct {
	p *serial.Port
}

func openIO(_ Config, p *serial.Port) (ioPort, error) { return &otherIO{p: p}, nil }

func (o *otherIO) Read(b []byte) (int, error)  { return o.p.Read(b) }
func (o *otherIO) Write(b []byte) (int, error) { return o.p.Write(b) }
func (o *otherIO) SetReadDeadline(time.Time) error {
	return errors.New("read deadlines are supported on linux only")
}
func (o *otherIO) drain() error { return errors.New("tcdrain is supported on linux only") }
func (o *otherIO) Close() error { return nil } // the serial.Port is closed by Port.Close

func setKernelRS485(ioPort, RS485) (bool, error) { return false, nil }
