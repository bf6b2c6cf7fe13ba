package spool

import (
	"strconv"
	"testing"
)

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
			for b.Loop() {
				if _, err := s.appendBytes(recs, nil); err != nil {
					b.Fatal(err)
				}
				ops++
			}
			b.ReportMetric(float64(ops*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
