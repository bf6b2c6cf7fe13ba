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

// BenchmarkRead measures Read of a batch of 200-byte records as the
// uplink asks for them: a full batch from a backlog, and the few records
// appended since the last read at the head of the spool.
func BenchmarkRead(b *testing.B) {
	s := openTemp(b)
	recs := make([][]byte, 1024)
	for i := range recs {
		recs[i] = make([]byte, 200)
	}
	var first uint64
	for i := range 10 {
		seq, err := s.appendBytes(recs, nil)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			first = seq
		}
	}
	for _, c := range []struct {
		name   string
		cursor uint64
	}{{"backlog", first}, {"head-50", first + 10*1024 - 50}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := s.Read(c.cursor, 1024, 1<<20)
				if err != nil || len(got) == 0 {
					b.Fatal(len(got), err)
				}
			}
		})
	}
}
