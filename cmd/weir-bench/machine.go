package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// machine is what the machine itself allows, measured before the runs so
// that a table from another day or another machine can be compared with
// this one (the same binaries have measured twice as fast on one day as
// on another here) and so that the durable rates have a ceiling beside
// them: the disk's synced write latency and bandwidth on the file system
// the spools are on, and two CPU references.
type machine struct {
	FsyncMillis  float64 `json:"fsync_4k_ms"`          // median of 4 KiB O_DSYNC writes in a row
	SyncedMBps   float64 `json:"synced_write_mb_s"`    // 256 KiB O_DSYNC writes in a row
	SHA256MBps   float64 `json:"sha256_mb_s"`          // one core
	SyscallNanos float64 `json:"syscall_ns"`           // getppid, the cheapest system call
	CeilingRecs  float64 `json:"synced_ceiling_rec_s"` // SyncedMBps in 200-byte lines
}

// measureMachine measures in dir, which it leaves as it found it.
func measureMachine(dir string) (machine, error) {
	var m machine
	path := filepath.Join(dir, "weir-bench-machine")
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|syscall.O_DSYNC, 0o600)
	if err != nil {
		return m, fmt.Errorf("machine: %w", err)
	}
	defer f.Close()
	small := make([]byte, 4<<10)
	lat := make([]float64, 0, 300)
	for range cap(lat) {
		t := time.Now()
		if _, err := f.Write(small); err != nil {
			return m, fmt.Errorf("machine: synced write to %s: %w", path, err)
		}
		lat = append(lat, float64(time.Since(t).Microseconds())/1000)
	}
	slices.Sort(lat)
	m.FsyncMillis = lat[len(lat)/2]
	big := make([]byte, 256<<10)
	const bigWrites = 100
	t := time.Now()
	for range bigWrites {
		if _, err := f.Write(big); err != nil {
			return m, fmt.Errorf("machine: synced write to %s: %w", path, err)
		}
	}
	m.SyncedMBps = float64(bigWrites*len(big)) / time.Since(t).Seconds() / 1e6
	m.CeilingRecs = m.SyncedMBps * 1e6 / tailLineSize

	buf := make([]byte, 1<<20)
	t = time.Now()
	for range 64 {
		sha256.Sum256(buf)
	}
	m.SHA256MBps = 64 * float64(len(buf)) / time.Since(t).Seconds() / 1e6
	const calls = 200_000
	t = time.Now()
	for range calls {
		syscall.Getppid()
	}
	m.SyscallNanos = float64(time.Since(t).Nanoseconds()) / calls
	return m, nil
}

func (m machine) String() string {
	return fmt.Sprintf("the machine: a 4 KiB synced write %.2f ms (median), synced writes %.0f MB/s (a ceiling of %.0f records/s of %d bytes written once), SHA-256 %.0f MB/s a core, a system call %.0f ns",
		m.FsyncMillis, m.SyncedMBps, m.CeilingRecs, tailLineSize, m.SHA256MBps, m.SyscallNanos)
}

// ceilingLine says how close each Weir system's flat-out median came to
// the disk's synced-write ceiling.
func ceilingLine(res []result, m machine) string {
	var b strings.Builder
	for _, r := range res {
		if !strings.HasPrefix(r.System, "weir") || len(r.FlatOut) == 0 || m.CeilingRecs <= 0 {
			continue
		}
		med := median(r.FlatOut)
		fmt.Fprintf(&b, "\n%s flat out: %.0f records/s, %.1f %% of the synced-write ceiling (%.0f records/s; the spool writes each record more than once)", r.System, med, 100*med/m.CeilingRecs, m.CeilingRecs)
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	return b.String()
}
