package spool

import (
	"bytes"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func openAt(t testing.TB, dir string) *Spool {
	t.Helper()
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openTemp(t testing.TB) *Spool {
	t.Helper()
	return openAt(t, t.TempDir())
}

// payloads returns n records "<prefix>-0", "<prefix>-1", ...
func payloads(prefix string, n int) [][]byte {
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	return recs
}

func seqs(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func seqRange(first uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = first + uint64(i)
	}
	return out
}

func TestAppendReadAck(t *testing.T) {
	s := openTemp(t)
	before := time.Now()
	first, err := s.appendBytes(payloads("a", 5), nil)
	require.NoError(t, err)
	second, err := s.appendBytes(payloads("b", 5), nil)
	require.NoError(t, err)
	require.Equal(t, first+5, second)

	all, err := s.Read(0, 100, 0)
	require.NoError(t, err)
	require.Equal(t, seqRange(first, 10), seqs(all))
	want := append(payloads("a", 5), payloads("b", 5)...)
	for i, r := range all {
		require.Equal(t, want[i], r.Data, "record %d", r.Seq)
		require.False(t, r.Appended.Before(before.Truncate(time.Nanosecond)), "appended time %v before %v", r.Appended, before)
		require.False(t, r.Appended.After(time.Now()))
	}

	require.NoError(t, s.Ack(first+3))
	got, err := s.Read(0, 100, 0)
	require.NoError(t, err)
	require.Equal(t, seqRange(first+4, 6), seqs(got), "acked records must be gone")
	got, err = s.Read(first, 100, 0)
	require.NoError(t, err)
	require.Equal(t, seqRange(first+4, 6), seqs(got), "a cursor below the mark must not see acked records")

	require.NoError(t, s.Ack(first+1), "acking below the mark is a no-op")
	require.NoError(t, s.Ack(first+9))
	got, err = s.Read(0, 100, 0)
	require.NoError(t, err)
	require.Empty(t, got)
	require.Equal(t, first+9, s.Stats().AckedUpTo)
}

func TestRead(t *testing.T) {
	s := openTemp(t)
	// Records of 10, 11, ..., 19 bytes.
	recs := make([][]byte, 10)
	for i := range recs {
		recs[i] = bytes.Repeat([]byte{byte('a' + i)}, 10+i)
	}
	first, err := s.appendBytes(recs, nil)
	require.NoError(t, err)

	for _, tc := range []struct {
		name     string
		cursor   uint64 // offset from first
		max      int
		maxBytes int
		want     []uint64 // offsets from first
	}{
		{name: "all", max: 100, want: []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{name: "cursor in the middle", cursor: 4, max: 100, want: []uint64{4, 5, 6, 7, 8, 9}},
		{name: "max", cursor: 2, max: 3, want: []uint64{2, 3, 4}},
		{name: "max one", cursor: 9, max: 1, want: []uint64{9}},
		{name: "maxBytes exact", max: 100, maxBytes: 10 + 11 + 12, want: []uint64{0, 1, 2}},
		{name: "maxBytes between", max: 100, maxBytes: 10 + 11 + 12 + 5, want: []uint64{0, 1, 2}},
		{name: "maxBytes below first record", cursor: 5, max: 100, maxBytes: 1, want: []uint64{5}},
		{name: "max before maxBytes", max: 2, maxBytes: 1000, want: []uint64{0, 1}},
		{name: "cursor past the end", cursor: 10, max: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Read(first+tc.cursor, tc.max, tc.maxBytes)
			require.NoError(t, err)
			var want []uint64
			for _, o := range tc.want {
				want = append(want, first+o)
			}
			require.Equal(t, len(want), len(got))
			for i, r := range got {
				require.Equal(t, want[i], r.Seq)
				require.Equal(t, recs[r.Seq-first], r.Data)
			}
		})
	}

	_, err = s.Read(first, 0, 0)
	require.Error(t, err, "max below 1")
}

func TestReadDataIsOwned(t *testing.T) {
	s := openTemp(t)
	in := [][]byte{[]byte("hello"), []byte("world")}
	first, err := s.appendBytes(in, nil)
	require.NoError(t, err)
	in[0][0] = 'J' // the caller reuses its buffer

	got, err := s.Read(first, 10, 0)
	require.NoError(t, err)
	require.Equal(t, "hello", string(got[0].Data))
	got[0].Data = append(got[0].Data, "!!!"...) // must not run into the next record
	require.Equal(t, "world", string(got[1].Data))
	got[1].Data[0] = 'W'

	again, err := s.Read(first, 10, 0)
	require.NoError(t, err)
	require.Equal(t, "hello", string(again[0].Data))
	require.Equal(t, "world", string(again[1].Data))
}

func TestFreshSpoolSeedsFromClock(t *testing.T) {
	before := uint64(time.Now().UnixMicro())
	s := openTemp(t)
	require.GreaterOrEqual(t, s.Stats().NextSeq, before)
	first, err := s.appendBytes(payloads("x", 1), nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, first, before)
	require.LessOrEqual(t, first, uint64(time.Now().UnixMicro()))
}

func TestSequencesSurviveReopen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ackAll bool
	}{
		{name: "with backlog"},
		{name: "everything acked", ackAll: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var want uint64
			seen := map[uint64]bool{}
			for round := range 3 {
				s := openAt(t, dir)
				if round > 0 {
					require.Equal(t, want, s.Stats().NextSeq)
				}
				for range 2 {
					first, err := s.appendBytes(payloads("r", 4), nil)
					require.NoError(t, err)
					if want != 0 {
						require.Equal(t, want, first, "round %d: sequences must continue", round)
					}
					for i := range uint64(4) {
						require.False(t, seen[first+i], "sequence %d repeated", first+i)
						seen[first+i] = true
					}
					want = first + 4
				}
				if tc.ackAll {
					require.NoError(t, s.Ack(want-1))
				}
				require.NoError(t, s.Close())
			}
		})
	}
}

// TestSequencesSurviveLosingEveryRecord: once every record is gone, with
// the ack mark or without it, only s/next knows which numbers were used.
func TestSequencesSurviveLosingEveryRecord(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	first, err := s.appendBytes(payloads("k", 5), nil)
	require.NoError(t, err)
	require.NoError(t, s.db.DropPrefix([]byte(recordPrefix), []byte(indexPrefix)))
	require.NoError(t, s.Close())

	s = openAt(t, dir)
	require.Equal(t, first+5, s.Stats().NextSeq)
	again, err := s.appendBytes(payloads("k", 1), nil)
	require.NoError(t, err)
	require.Equal(t, first+5, again)
}

func TestStats(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	st := s.Stats()
	require.Zero(t, st.Records)
	require.Zero(t, st.Bytes)
	require.Zero(t, st.AckedUpTo)
	require.True(t, st.Oldest.IsZero())
	require.Positive(t, st.DiskBytes)
	next := st.NextSeq

	first, err := s.appendBytes([][]byte{make([]byte, 100), make([]byte, 200)}, nil)
	require.NoError(t, err)
	require.Equal(t, next, first)
	recs, err := s.Read(first, 1, 0)
	require.NoError(t, err)
	t0 := recs[0].Appended
	time.Sleep(2 * time.Millisecond)
	_, err = s.appendBytes([][]byte{make([]byte, 300), nil}, nil)
	require.NoError(t, err)
	recs, err = s.Read(first+2, 1, 0)
	require.NoError(t, err)
	t1 := recs[0].Appended
	require.True(t, t1.After(t0))

	check := func(s *Spool, want Stats, when string) {
		t.Helper()
		got := s.Stats()
		require.Equal(t, want.NextSeq, got.NextSeq, when)
		require.Equal(t, want.AckedUpTo, got.AckedUpTo, when)
		require.Equal(t, want.Records, got.Records, when)
		require.Equal(t, want.Bytes, got.Bytes, when)
		require.True(t, want.Oldest.Equal(got.Oldest), "%s: oldest %v, want %v", when, got.Oldest, want.Oldest)
		require.Positive(t, got.DiskBytes, when)
	}
	check(s, Stats{NextSeq: first + 4, Records: 4, Bytes: 600, Oldest: t0}, "after appends")
	require.NoError(t, s.Ack(first+1))
	want := Stats{NextSeq: first + 4, AckedUpTo: first + 1, Records: 2, Bytes: 300, Oldest: t1}
	check(s, want, "after ack")
	require.NoError(t, s.Close())

	s = openAt(t, dir)
	check(s, want, "after reopen")
	require.NoError(t, s.Ack(first+3))
	want = Stats{NextSeq: first + 4, AckedUpTo: first + 3}
	check(s, want, "after acking all")
	require.NoError(t, s.Close())

	s = openAt(t, dir)
	check(s, want, "after reopen, empty")
}

func TestAckBeyondLastAppended(t *testing.T) {
	s := openTemp(t)
	next := s.Stats().NextSeq
	require.Error(t, s.Ack(next), "nothing appended yet")

	first, err := s.appendBytes(payloads("z", 3), nil)
	require.NoError(t, err)
	require.Error(t, s.Ack(first+3))
	require.Error(t, s.Ack(^uint64(0)))
	require.Equal(t, uint64(0), s.Stats().AckedUpTo, "a failed ack must not move the mark")
	require.Equal(t, int64(3), s.Stats().Records)
	require.NoError(t, s.Ack(first+2))
}

func TestClosed(t *testing.T) {
	s := openTemp(t)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "closing twice")
	_, err := s.appendBytes(payloads("c", 1), nil)
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.Read(0, 1, 0)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, s.Ack(1), ErrClosed)
	_, err = s.Checkpoint("x")
	require.ErrorIs(t, err, ErrClosed)
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(Options{})
	require.Error(t, err)

	dir := t.TempDir()
	s := openAt(t, dir)
	_, err = Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.Error(t, err, "a second open of the same directory must fail on badger's lock")
	require.Contains(t, err.Error(), "spool: open "+dir)
	require.NoError(t, s.Close())
}

// TestReadBufferSize: a Read takes room ahead for the records it may
// return, as many as are there and max allows, within maxBytes (plus the
// record read past it) and maxReadBuffer.
func TestReadBufferSize(t *testing.T) {
	for _, c := range []struct {
		name           string
		size           int
		n              uint64
		maxBytes, want int
	}{
		{"a batch of 1,024 records of 200 bytes", 200, 1024, 0, 204800},
		{"50 records at the head", 200, 50, 1 << 20, 10000},
		{"within max bytes, and the record past it", 200, 1024, 1000, 1200},
		{"a large record and no byte limit", 256 << 10, 1024, 0, maxReadBuffer},
		{"an empty record", 0, 10, 0, 10},
		{"one record", 300, 1, 0, 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, readBufferSize(c.size, c.n, c.maxBytes))
		})
	}
}

// TestReadTakesRoomForWhatIsThere: a fresh spool's mark is 0 and its
// numbers start at the clock, so a Read from 0 with a large max must take
// room for the records there are, not for every sequence below next (a
// crash test reading with max 2^30 ran out of memory that way).
func TestReadTakesRoomForWhatIsThere(t *testing.T) {
	s := openAt(t, t.TempDir())
	_, err := s.appendBytes(payloads("rec", 3), nil)
	require.NoError(t, err)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	recs, err := s.Read(0, 1<<24, 0)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(2<<20), "bytes allocated by one Read of 3 records")
}
