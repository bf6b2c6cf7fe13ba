//go:build !linux

package board

import (
	"errors"
	"os"
	"time"
)

// setWatchdogTimeout: only Linux has the watchdog ioctls.
func setWatchdogTimeout(*os.File, time.Duration) (time.Duration, error) {
	return 0, errors.New("watchdog timeout: Linux only")
}
