package ptp

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/facebook/time/clock"
	"golang.org/x/sys/unix"
)

// kernelSteer steers CLOCK_REALTIME (adjust_system_clock).
type kernelSteer struct{}

func (kernelSteer) Step(d time.Duration) error {
	_, err := clock.Step(unix.CLOCK_REALTIME, d)
	return err
}

func (kernelSteer) SetFrequency(ppb float64) error {
	_, err := clock.AdjFreqPPB(unix.CLOCK_REALTIME, ppb)
	return err
}

// hasSysTime reports whether the process may set the system clock.
func hasSysTime() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<unix.CAP_SYS_TIME) != 0
		}
	}
	return false
}
