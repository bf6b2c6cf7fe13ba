package ptp

import (
	"fmt"
	"os"
	"time"

	"github.com/facebook/time/phc"
	"golang.org/x/sys/unix"
)

// phcDevice is an open PTP hardware clock (/dev/ptpN). It stays open for
// the life of the clock: Now may be reading it at any moment, and a
// closed descriptor's number could be reused by another device.
type phcDevice struct {
	f       *os.File // held so that the descriptor stays open
	clockID int32
}

// openPHC opens path read-only (reading a dynamic POSIX clock needs no
// write access) and checks that it is a clock by reading it once.
func openPHC(path string) (*phcDevice, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("phc %s: %w", path, err)
	}
	// The clock id is derived from the descriptor once, here: Now then
	// makes one clock_gettime and never touches the *os.File.
	d := &phcDevice{f: f, clockID: phc.FromFile(f).ClockID()}
	if _, err := d.read(); err != nil {
		f.Close()
		return nil, fmt.Errorf("phc %s: not a PTP hardware clock: %w", path, err)
	}
	return d, nil
}

// read is one clock_gettime on the device's dynamic clock id.
func (d *phcDevice) read() (time.Time, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(d.clockID, &ts); err != nil {
		return time.Time{}, err
	}
	return time.Unix(ts.Unix()), nil
}
