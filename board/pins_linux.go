package board

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"
	"periph.io/x/host/v3/sysfs"
)

// hostPins finds pins on the running Linux host: GPIO lines through the
// GPIO character device (periph's gpioioctl: /dev/gpiochipN, ioctl v2)
// and LEDs of /sys/class/leds (periph's sysfs).
type hostPins struct {
	once    sync.Once
	initErr error
}

func newHostPins() pinFinder { return &hostPins{} }

func (h *hostPins) init() error {
	h.once.Do(func() {
		// Loads the drivers this package imports (gpioioctl, sysfs);
		// absent hardware is "skipped", not an error.
		_, h.initErr = driverreg.Init()
	})
	return h.initErr
}

func (h *hostPins) find(p Profile, name string) (gpio.PinIO, bool, error) {
	if err := h.init(); err != nil {
		return nil, false, fmt.Errorf("periph drivers: %w", err)
	}
	if led, ok := strings.CutPrefix(name, "led:"); ok {
		l, err := sysfs.LEDByName(led)
		if err != nil {
			return nil, false, fmt.Errorf("%s: no such LED in /sys/class/leds (found: %s)", name, sysLEDNames())
		}
		return l, true, nil
	}
	if m := chipOffset.FindStringSubmatch(name); m != nil {
		n, _ := strconv.Atoi(m[2])
		return chipLineByName(name, m[1], nil, n)
	}
	if cl, ok := p.headerLine(name); ok {
		return chipLineByName(name, cl.chip, cl.labels, cl.offset)
	}
	for _, c := range gpioioctl.Chips {
		if l := c.ByName(name); l != nil {
			return l, false, nil
		}
	}
	return nil, false, fmt.Errorf("%s: no GPIO line of that name on this host (chips: %s; gpioinfo lists the lines)", name, chipNames())
}

// chipLineByName finds line offset of the chip with one of labels, else
// of the chip named chip.
func chipLineByName(pin, chip string, labels []string, offset int) (gpio.PinIO, bool, error) {
	var found *gpioioctl.GPIOChip
	for _, want := range labels {
		for _, c := range gpioioctl.Chips {
			if c.Label() == want {
				found = c
				break
			}
		}
		if found != nil {
			break
		}
	}
	if found == nil {
		for _, c := range gpioioctl.Chips {
			if c.Name() == chip {
				found = c
				break
			}
		}
	}
	if found == nil {
		return nil, false, fmt.Errorf("%s: no GPIO chip %s on this host (chips: %s)", pin, chip, chipNames())
	}
	if offset >= found.LineCount() {
		return nil, false, fmt.Errorf("%s: %s (%s) has %d lines, no line %d", pin, found.Name(), found.Label(), found.LineCount(), offset)
	}
	return found.ByNumber(offset), false, nil
}

func chipNames() string {
	if len(gpioioctl.Chips) == 0 {
		return "none: no /dev/gpiochip*"
	}
	var s []string
	for _, c := range gpioioctl.Chips {
		s = append(s, fmt.Sprintf("%s %q %d lines", c.Name(), c.Label(), c.LineCount()))
	}
	return strings.Join(s, ", ")
}

func sysLEDNames() string {
	if len(sysfs.LEDs) == 0 {
		return "none"
	}
	var s []string
	for _, l := range sysfs.LEDs {
		s = append(s, l.Name())
	}
	return strings.Join(s, ", ")
}

// closePin releases a GPIO line, so another process may take it.
func closePin(p gpio.PinIO) {
	if l, ok := p.(*gpioioctl.GPIOLine); ok {
		l.Close()
	}
}
