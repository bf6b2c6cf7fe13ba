package board

import (
	"fmt"
	"sync/atomic"

	"periph.io/x/conn/v3/gpio"
)

// DriverEnable switches an RS-485 transceiver's driver through a GPIO. It
// is the serial port's driver-enable (sensors/serialport.DriverEnable,
// which it meets by its method set: the board imports no sensor): the
// port enables the driver, writes the frame, waits for the UART to drain
// and its turnaround delay (rs485.delay_after_send), then releases it.
type DriverEnable struct {
	pin     gpio.PinOut
	pinName string
	device  string
	active  gpio.Level

	enabled   atomic.Bool
	transmits atomic.Uint64
}

// Set enables the driver (transmit) or releases the line to receive.
func (d *DriverEnable) Set(transmit bool) error {
	lvl := d.active
	if !transmit {
		lvl = !lvl
	}
	if err := d.pin.Out(lvl); err != nil {
		return fmt.Errorf("board: rs485 driver enable %s: %w", d.pinName, err)
	}
	if transmit && !d.enabled.Swap(true) {
		d.transmits.Add(1)
	} else if !transmit {
		d.enabled.Store(false)
	}
	return nil
}

// Device is the serial line this pin's transceiver sits on.
func (d *DriverEnable) Device() string { return d.device }

// RS485Status is the driver-enable pin as `weir status` shows it.
type RS485Status struct {
	Pin       string `json:"pin"`
	Device    string `json:"device"`
	Enabled   bool   `json:"enabled"`   // the driver is on now
	Transmits uint64 `json:"transmits"` // frames sent with it since start
}

func (d *DriverEnable) snapshot() RS485Status {
	return RS485Status{Pin: d.pinName, Device: d.device, Enabled: d.enabled.Load(), Transmits: d.transmits.Load()}
}
