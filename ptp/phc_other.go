//go:build !linux

package ptp

import (
	"errors"
	"fmt"
	"time"
)

// phcDevice is a PTP hardware clock, which only Linux has.
type phcDevice struct{}

func openPHC(path string) (*phcDevice, error) {
	return nil, fmt.Errorf("phc %s: PTP hardware clocks need Linux", path)
}

func (*phcDevice) read() (time.Time, error) {
	return time.Time{}, errors.New("phc: PTP hardware clocks need Linux")
}
