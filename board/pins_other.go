//go:build !linux

package board

import (
	"errors"

	"periph.io/x/conn/v3/gpio"
)

// hostPins: GPIO lines and LEDs are found on Linux only; other systems
// run the sim profile.
type hostPins struct{}

func newHostPins() pinFinder { return hostPins{} }

func (hostPins) find(Profile, string) (gpio.PinIO, bool, error) {
	return nil, false, errors.New("GPIO lines and LEDs are Linux only")
}

func closePin(gpio.PinIO) {}
