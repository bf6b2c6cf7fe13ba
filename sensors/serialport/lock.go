package serialport

import "fmt"

// InUseError is a serial line that another process holds, or another
// Port of this one: two masters on one RS-485 line garble each other's
// frames, so the second is refused rather than let on.
type InUseError struct {
	Device string
	// PID is the holder's process id; 0 when it cannot be seen (another
	// PID namespace).
	PID int
	// Command is the holder's command line, shortened; empty if unknown.
	Command string
	// LockFile is the UUCP lock file that named the holder (a program
	// such as minicom or cu that takes no flock); empty when the holder
	// has the tty's flock.
	LockFile string
	// Self: the holder is this process (two buses or sensors configured
	// on one line).
	Self bool
}

func (e *InUseError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("pid %d", e.PID)
		if e.Command != "" {
			who += " (" + e.Command + ")"
		}
	}
	if e.Self {
		who += ", this process: another bus or sensor on the same line"
	}
	s := fmt.Sprintf("%s is in use by %s", e.Device, who)
	if e.LockFile != "" {
		s += " according to " + e.LockFile
	}
	return s
}
