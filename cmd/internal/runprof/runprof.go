package runprof

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// Start starts the CPU profile and block profiling the flags ask for (an
// empty name: none); end writes them out.
func Start(cpu, block string) (end func(*slog.Logger), err error) {
	var cpuFile *os.File
	if cpu != "" {
		if cpuFile, err = os.Create(cpu); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpuFile); err != nil {
			cpuFile.Close()
			return nil, fmt.Errorf("--cpuprofile %s: %w", cpu, err)
		}
	}
	if block != "" {
		runtime.SetBlockProfileRate(int((10 * time.Microsecond).Nanoseconds()))
	}
	return func(log *slog.Logger) {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			if err := cpuFile.Close(); err != nil {
				log.Error("writing the CPU profile failed", "file", cpu, "err", err)
			}
		}
		if block == "" {
			return
		}
		f, err := os.Create(block)
		if err == nil {
			err = pprof.Lookup("block").WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			log.Error("writing the block profile failed", "file", block, "err", err)
		}
	}, nil
}
