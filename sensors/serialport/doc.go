// Package serialport opens serial lines for the sensor drivers: device,
// baud, data bits, parity, stop bits and read timeout from a [Config] whose
// validation errors name the key, and RS-485 direction control.
//
// The line is configured by github.com/tarm/serial. On Linux, reads and
// writes then go through a second, non-blocking descriptor of the same tty,
// registered with Go's poller, so that [Port.SetReadDeadline] works with
// millisecond resolution: a Modbus RTU master finds the end of a frame by
// 1.75 ms of silence, while termios' VTIME counts tenths of a second. Both
// descriptors share the tty's settings.
//
// RS-485 half-duplex transceivers need their driver enabled while sending
// and disabled right after the last stop bit. Where the UART driver supports
// it, the kernel does that from the RTS line (TIOCSRS485, mode "kernel");
// otherwise the port drives a GPIO through a [DriverEnable] that the board
// package supplies (mode "pin"), waiting for the transmitter to drain
// (tcdrain) before turning around. Mode "auto" tries the kernel first.
//
// A line has one master: Open takes an exclusive flock on the tty before
// configuring it (the kernel drops it with the process, so it is never
// stale), plus a UUCP lock file in /run/lock naming the process where that
// directory is writable, for minicom, cu and kin, which look only there.
// A line already held is refused with an [InUseError] naming the holder's
// pid and command line, found in /proc/locks or in its lock file.
//
// docs/ARCHITECTURE.md places this package among the sensors.
package serialport
