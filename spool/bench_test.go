package spool

import (
	"strconv"
	"syscall"
	"testing"
	"time"
)

// processCPU is the user and system CPU the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppend measures durable appends of 200-byte records; each
// operation is one Append (one fsynced transaction) of a batch.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 64, 1024} {
		b.Run("batch="+strconv.Itoa(n), func(b *testing.B) {
			s := openTemp(b)
			recs := make([][]byte, n)
			for i := range recs {
				recs[i] = make([]byte, 200)
			}
			b.SetBytes(int64(200 * n))
			b.ReportAllocs()
			ops := 0
			cpu0 := processCPU()
			for b.Loop() {
				if _, err := s.appendBytes(recs, nil); err != nil {
					b.Fatal(err)
				}
				ops++
			}
			b.ReportMetric(float64(ops*n)/b.Elapsed().Seconds(), "records/s")
			// The whole process's CPU (Badger's goroutines included) per
			// record: what the Merkle log's hashing (merkle
			// BenchmarkRecordLeafAndAppend) is a share of.
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(ops*n), "cpu-ns/record")
		})
	}
}
