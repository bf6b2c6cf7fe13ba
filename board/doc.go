// Package board drives the appliance's own hardware on periph.io: four
// status LEDs (power, link, spool, alert) showing patterns (off, on, slow
// and fast blink) that the gateway sets from its state, the RS-485
// driver-enable pin the serial ports switch around each frame
// ([DriverEnable]), the enclosure's tamper switch (edge-triggered,
// debounced, [TamperEvent] per opening and per closing), and the Linux
// hardware watchdog ([Watchdog]: open, WDIOC_SETTIMEOUT, kick, magic
// close). It knows nothing of records or of the pipeline: the gateway
// decides what the LEDs show, turns tamper events into records and kicks
// the watchdog only while the pipeline is healthy.
//
// Pins come from periph.io/x/conn/v3's gpio interfaces: on Linux, GPIO
// lines through the character device (periph.io/x/host/v3/gpioioctl) and
// LEDs of /sys/class/leds (periph.io/x/host/v3/sysfs); in the sim profile,
// gpiotest pins that tests read and drive.
//
// # What a board profile provides
//
// A profile (board.profile) is a name and, for each role, what the
// configuration does not have to say:
//
//   - Pins: a default pin for each role it has (power_led, link_led,
//     spool_led, alert_led, tamper, rs485_de); a role without one is off
//     unless the configuration names a pin.
//   - RS485Device: the serial line its driver-enable pin serves.
//   - Watchdog: its watchdog device, if it has one.
//   - A header: its own pin names (GPIO17, P9_23) mapped to a GPIO chip,
//     found by label, and a line offset; a name that looks like the
//     header's but is not on it is a config error, caught without I/O.
//
// Every profile also takes the generic forms: a line as the kernel names
// it, gpiochipN:OFFSET, led:NAME, and none to turn a role off. A pin that
// the running host lacks is an error at Open naming the key.
//
// The profiles: raspberrypi4 and beaglebone-black (defaults in profile.go
// and README.md), generic (nothing by default), sim (every role on
// simulated pins; SimConfig.Dir connects the tamper input and the LEDs to
// files for the demo).
//
// docs/ARCHITECTURE.md places this package beside the sensors: it imports
// neither them nor the gateway.
package board
