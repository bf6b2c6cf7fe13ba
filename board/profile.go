package board

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Profile is what the gateway knows of a board: its default pins, the
// serial line its RS-485 transceiver sits on, its watchdog device, and how
// its header's pin names map to GPIO lines.
type Profile struct {
	Name string
	// Pins are the defaults; a role left empty has no pin unless the
	// configuration names one.
	Pins        Pins
	RS485Device string
	Watchdog    string
	// header maps the board's own pin names to lines; nil: the profile
	// knows no header (generic) or needs none (sim).
	header map[string]chipLine
	// headerPattern matches names that look like the header's, so a typo
	// (GPIO72, P8_99) is a config error rather than a line looked for in
	// vain at start.
	headerPattern *regexp.Regexp
	headerDoc     string
}

// chipLine is a line of a GPIO chip: the chip found by its label (the
// first label that matches; kernels have named the same controller
// differently), else by its device name.
type chipLine struct {
	labels []string
	chip   string // gpiochipN, when no label matches
	offset int
}

// profiles are the boards the configuration may name (board.profile).
//
// raspberrypi4: LEDs on GPIO5, GPIO6, GPIO13 and GPIO19 (header pins 29,
// 31, 33, 35), the tamper switch on GPIO26 (pin 37), the RS-485 driver
// enable on GPIO17 (pin 11) for the PL011 UART /dev/ttyAMA0 (GPIO14/15,
// with dtoverlay=disable-bt), and the bcm2835 watchdog (at most 15 s).
//
// beaglebone-black: the four user LEDs USR0..USR3 (/sys/class/leds), the
// tamper switch on P8_7 (GPIO2_2), the driver enable on P9_23 (GPIO1_17)
// for UART1 /dev/ttyS1 (P9_24 TX, P9_26 RX), and the OMAP watchdog.
//
// generic: nothing by default; every pin is named in the configuration.
//
// sim: simulated pins (periph's gpiotest) for tests and the demo, every
// role present; no watchdog unless board.watchdog.device names one.
var profiles = map[string]Profile{
	"sim": {
		Name: "sim",
		Pins: Pins{PowerLED: "sim-power", LinkLED: "sim-link", SpoolLED: "sim-spool", AlertLED: "sim-alert",
			Tamper: "sim-tamper", RS485DE: "sim-de"},
	},
	"raspberrypi4": {
		Name: "raspberrypi4",
		Pins: Pins{PowerLED: "GPIO5", LinkLED: "GPIO6", SpoolLED: "GPIO13", AlertLED: "GPIO19",
			Tamper: "GPIO26", RS485DE: "GPIO17"},
		RS485Device:   "/dev/ttyAMA0",
		Watchdog:      DefaultWatchdogDevice,
		header:        rpiHeader(),
		headerPattern: regexp.MustCompile(`^(?i)(gpio|bcm)[0-9]+$`),
		headerDoc:     "GPIO2..GPIO27",
	},
	"beaglebone-black": {
		Name: "beaglebone-black",
		Pins: Pins{PowerLED: "led:beaglebone:green:usr0", LinkLED: "led:beaglebone:green:usr1",
			SpoolLED: "led:beaglebone:green:usr2", AlertLED: "led:beaglebone:green:usr3",
			Tamper: "P8_7", RS485DE: "P9_23"},
		RS485Device:   "/dev/ttyS1",
		Watchdog:      DefaultWatchdogDevice,
		header:        bbbHeader(),
		headerPattern: regexp.MustCompile(`^(?i)p[89]_[0-9]+$`),
	},
	"generic": {Name: "generic"},
}

// ProfileNames lists the profiles, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// rpiHeader: the BCM2711's GPIO2..27 on the 40-pin header are lines 2..27
// of its pinctrl chip (gpiochip0). Lines 0 and 1 carry the HAT EEPROM.
func rpiHeader() map[string]chipLine {
	m := map[string]chipLine{}
	for n := 2; n <= 27; n++ {
		m["GPIO"+strconv.Itoa(n)] = chipLine{labels: []string{"pinctrl-bcm2711"}, chip: "gpiochip0", offset: n}
	}
	return m
}

// bbbHeader: the BeagleBone Black's header pins free for GPIO with the
// default device tree (eMMC and HDMI keep theirs), as bank and line of
// the AM335x's four GPIO controllers. Newer kernels label the chips by
// their global range (gpio-64-95), older by address (481ac000.gpio).
func bbbHeader() map[string]chipLine {
	banks := [4][]string{
		{"44e07000.gpio", "gpio-0-31"},
		{"4804c000.gpio", "gpio-32-63"},
		{"481ac000.gpio", "gpio-64-95"},
		{"481ae000.gpio", "gpio-96-127"},
	}
	pins := map[string][2]int{
		"P8_7": {2, 2}, "P8_8": {2, 3}, "P8_9": {2, 5}, "P8_10": {2, 4},
		"P8_11": {1, 13}, "P8_12": {1, 12}, "P8_13": {0, 23}, "P8_14": {0, 26},
		"P8_15": {1, 15}, "P8_16": {1, 14}, "P8_17": {0, 27}, "P8_18": {2, 1},
		"P8_19": {0, 22}, "P8_26": {1, 29},
		"P9_12": {1, 28}, "P9_14": {1, 18}, "P9_15": {1, 16}, "P9_16": {1, 19},
		"P9_23": {1, 17}, "P9_25": {3, 21}, "P9_27": {3, 19}, "P9_30": {3, 16}, "P9_41": {0, 20},
	}
	m := map[string]chipLine{}
	for name, bl := range pins {
		m[name] = chipLine{labels: banks[bl[0]], chip: "gpiochip" + strconv.Itoa(bl[0]), offset: bl[1]}
	}
	return m
}

var chipOffset = regexp.MustCompile(`^(gpiochip[0-9]+):([0-9]+)$`)

// checkPin checks a pin's name without I/O.
func (p Profile) checkPin(pin string) error {
	switch {
	case pin == "" || pin == PinNone:
		return nil
	case p.Name == "sim":
		return nil // the simulated board makes the pins it is asked for
	case strings.HasPrefix(pin, "led:"):
		if name := strings.TrimPrefix(pin, "led:"); name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("%q: want led:NAME with NAME a directory of /sys/class/leds", pin)
		}
		return nil
	case chipOffset.MatchString(pin):
		m := chipOffset.FindStringSubmatch(pin)
		if n, err := strconv.Atoi(m[2]); err != nil || n > 511 {
			return fmt.Errorf("%q: line offset out of range", pin)
		}
		return nil
	}
	if p.headerPattern != nil && p.headerPattern.MatchString(pin) {
		if _, ok := p.headerLine(pin); !ok {
			return fmt.Errorf("%q is not a GPIO of the %s header (%s)", pin, p.Name, p.headerNames())
		}
		return nil
	}
	// A line as the kernel names it: at most 31 bytes (GPIO_MAX_NAME_SIZE).
	if len(pin) > 31 || strings.ContainsAny(pin, " \t/") {
		return fmt.Errorf("%q is not a pin: want a line name (gpioinfo), gpiochipN:OFFSET, led:NAME or none", pin)
	}
	return nil
}

// headerLine finds a header name, ignoring case (gpio17, p9_23).
func (p Profile) headerLine(pin string) (chipLine, bool) {
	up := strings.ToUpper(pin)
	if strings.HasPrefix(up, "BCM") {
		up = "GPIO" + strings.TrimPrefix(up, "BCM")
	}
	cl, ok := p.header[up]
	return cl, ok
}

func (p Profile) headerNames() string {
	if p.headerDoc != "" {
		return p.headerDoc
	}
	names := make([]string, 0, len(p.header))
	for n := range p.header {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) && names[i][:2] == names[j][:2] {
			return len(names[i]) < len(names[j])
		}
		return names[i] < names[j]
	})
	return strings.Join(names, ", ")
}
