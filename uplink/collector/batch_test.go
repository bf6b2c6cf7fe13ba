package collector

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink"
)

// memSink is an in-memory Sink for the batch path's tests.
type memSink struct {
	mu      sync.Mutex
	set     map[string]*seqSet
	written map[uint64]int
	alerts  []event.Event
	panicAt uint64 // Write panics on a batch holding this sequence (0: never)
	failAt  uint64 // Write fails on a batch holding this sequence (0: never)
	// block, if set, is called with a batch's first sequence before Write
	// takes it: a Write that takes long (an fsync).
	block func(first uint64)
}

func newMemSink() *memSink { return &memSink{set: map[string]*seqSet{}, written: map[uint64]int{}} }

func (m *memSink) s(gw string) *seqSet {
	if m.set[gw] == nil {
		m.set[gw] = &seqSet{}
	}
	return m.set[gw]
}

func (m *memSink) Write(gw string, entries []Entry) (WriteResult, error) {
	if m.block != nil && len(entries) > 0 {
		m.block(entries[0].Seq)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var res WriteResult
	for _, e := range entries {
		if m.panicAt != 0 && e.Seq == m.panicAt {
			panic(fmt.Sprintf("memSink: told to fail on %d", e.Seq))
		}
		if m.failAt != 0 && e.Seq == m.failAt {
			return res, fmt.Errorf("memSink: told to fail on %d", e.Seq)
		}
		if m.s(gw).holds(e.Seq) {
			continue
		}
		if m.s(gw).add(e.Seq, DefaultMaxRanges) {
			res.Forgotten++
		}
		m.written[e.Seq]++
		res.Written++
	}
	return res, nil
}

func (m *memSink) Holds(gw string, seq uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s(gw).holds(seq)
}

func (m *memSink) Resume(gw string, floor uint64) Resumed {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s(gw).claim(floor)
}

func (m *memSink) Alert(ev *event.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alerts = append(m.alerts, *ev)
	return nil
}

func (m *memSink) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.written)
}

func testServer(t testing.TB, cfg Config, sink Sink) *Server {
	return NewServer(cfg, nil, sink, slog.New(slog.DiscardHandler))
}

func payload(t testing.TB, first uint64, n int) []byte {
	var p []byte
	for i := range n {
		b, err := (&event.Event{Message: fmt.Sprintf("r%d", first+uint64(i)), Quality: event.Quality{ErrorBound: -1}}).MarshalBinary()
		require.NoError(t, err)
		p = uplink.AppendRecord(p, b)
	}
	return p
}

func zst(t testing.TB, p []byte) []byte {
	c, err := uplink.NewCompressor(uplink.CodecZstd, 3)
	require.NoError(t, err)
	defer c.Close()
	return c.Compress(nil, p)
}

func TestBatchOverlapAndReplay(t *testing.T) {
	sink := newMemSink()
	b := newBatcher(testServer(t, DefaultConfig(), sink), "gw", 1000, 1<<20)
	send := func(first uint64, n int, codec uplink.Codec) {
		p := payload(t, first, n)
		if codec == uplink.CodecZstd {
			p = zst(t, p)
		}
		require.NoError(t, b.accept(context.Background(), &uplink.Data{First: first, Count: uint64(n), Codec: codec, Payload: p}))
	}
	require.Equal(t, FloorNew, sink.Resume("gw", 99).Verdict)
	send(100, 10, uplink.CodecZstd) // 100..109
	send(105, 10, uplink.CodecNone) // overlaps the mark: 110..114 new
	send(130, 5, uplink.CodecZstd)  // out of order (another session's batch)
	send(115, 15, uplink.CodecZstd) // fills the gap
	send(100, 35, uplink.CodecZstd) // replay of everything
	require.Len(t, sink.written, 35)
	for seq, n := range sink.written {
		require.Equal(t, 1, n, "seq %d", seq)
	}
	r := sink.Resume("gw", 99)
	require.Equal(t, FloorRaised, r.Verdict, "99 is just below the first record held")
	require.Equal(t, uint64(134), r.Highest)
}

// TestBatchRejects: every batch that breaks a bound is refused with its
// code and reason, and nothing of it is written.
func TestBatchRejects(t *testing.T) {
	bomb := zst(t, make([]byte, 4<<20)) // 4 MiB of zeros in a few hundred bytes
	// The count bomb: zero-length records, 16 MiB of them in a few hundred
	// bytes, once taken as 16 Mi events to preallocate and lines to write.
	countBomb := zst(t, make([]byte, 1<<20))
	two, err := os.ReadFile("../testdata/zstd-two-block.bin")
	require.NoError(t, err)
	good := payload(t, 1, 3)
	cases := map[string]struct {
		d      uplink.Data
		code   uplink.ErrorCode
		reason string
		want   string
	}{
		"zip bomb":           {uplink.Data{First: 1, Count: 1, Codec: uplink.CodecZstd, Payload: bomb}, uplink.ErrLimit, "size", "decodes to more than"},
		"not zstd":           {uplink.Data{First: 1, Count: 1, Codec: uplink.CodecZstd, Payload: []byte("plain")}, uplink.ErrPayload, "decompress", "zstd payload"},
		"two-block zstd":     {uplink.Data{First: 1, Count: 7, Codec: uplink.CodecZstd, Payload: two}, uplink.ErrPayload, "decompress", "zstd payload"},
		"count bomb":         {uplink.Data{First: 1, Count: 1 << 24, Codec: uplink.CodecZstd, Payload: countBomb}, uplink.ErrLimit, "count", "16777216 records, more than the 1000 agreed"},
		"count bomb, agreed": {uplink.Data{First: 1, Count: 1000, Codec: uplink.CodecZstd, Payload: countBomb}, uplink.ErrPayload, "split", "record 0: 0 bytes, shorter than the 15-byte minimum"},
		"count over agreed":  {uplink.Data{First: 1, Count: 1001, Payload: good}, uplink.ErrLimit, "count", "1001 records, more than the 1000 agreed"},
		"count vs bytes":     {uplink.Data{First: 1, Count: 100, Payload: good}, uplink.ErrPayload, "count", "100 records announced in"},
		"empty records":      {uplink.Data{First: 1, Count: 5, Payload: make([]byte, 5*16)}, uplink.ErrPayload, "split", "record 0: 0 bytes, shorter than the 15-byte minimum"},
		"short last":         {uplink.Data{First: 1, Count: 11, Payload: uplink.AppendRecord(payload(t, 1, 10), []byte("tiny"))}, uplink.ErrPayload, "split", "record 10: 4 bytes"},
		"count short":        {uplink.Data{First: 1, Count: 1, Payload: good}, uplink.ErrPayload, "split", "more than the 1 records"},
		"plain too big":      {uplink.Data{First: 1, Count: 1, Payload: make([]byte, 1<<20+3000+1)}, uplink.ErrLimit, "size", "payload, more than"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			sink := newMemSink()
			b := newBatcher(testServer(t, DefaultConfig(), sink), "gw", 1000, 64<<10)
			b.bound = uplink.PayloadBound(1000, 1<<20)
			err := b.accept(context.Background(), &c.d)
			var be *batchError
			require.ErrorAs(t, err, &be)
			require.Equal(t, c.code, be.code)
			require.Equal(t, c.reason, be.reason)
			require.ErrorContains(t, err, c.want)
			require.Zero(t, sink.count(), "nothing written")
		})
	}
}

// FuzzBatch feeds frames through the collector's Data path: decode,
// bounded decompression, split, dedupe, write. It must never panic nor
// write anything of a refused batch. Seeds include the two-block zstd
// frame that panicked klauspost/compress v1.20.1 (testdata).
func FuzzBatch(f *testing.F) {
	p := payload(f, 1, 3)
	for _, d := range []uplink.Data{
		{First: 1, Count: 3, Payload: p},
		{First: 1, Count: 3, Codec: uplink.CodecZstd, Payload: zst(f, p)},
		{First: 2, Count: 1 << 30, Codec: uplink.CodecZstd, Payload: zst(f, make([]byte, 1<<17))},
	} {
		f.Add(uplink.AppendFrame(nil, &d))
	}
	enc, _ := zstd.NewWriter(nil)
	f.Add(uplink.AppendFrame(nil, &uplink.Data{First: 1, Count: 1, Codec: uplink.CodecZstd, Payload: enc.EncodeAll(make([]byte, 1<<20), nil)}))
	two, err := os.ReadFile("../testdata/zstd-two-block.bin")
	require.NoError(f, err)
	f.Add(uplink.AppendFrame(nil, &uplink.Data{First: 1, Count: 7, Codec: uplink.CodecZstd, Payload: two}))
	cfg := DefaultConfig()
	cfg.MaxBatchRecords, cfg.MaxBatchBytes = 100, 16<<10
	f.Fuzz(func(t *testing.T, in []byte) {
		sink := newMemSink()
		b := newBatcher(testServer(t, cfg, sink), "gw", 100, 16<<10)
		r := bufio.NewReader(bytes.NewReader(in))
		var buf []byte
		for {
			typ, body, nb, err := uplink.ReadFrame(r, buf, uplink.FrameBound(100, 16<<10))
			if err != nil {
				return
			}
			buf = nb
			m, err := uplink.Decode(typ, body)
			if err != nil {
				continue
			}
			d, ok := m.(*uplink.Data)
			if !ok {
				continue
			}
			before := sink.count()
			err = b.accept(context.Background(), d)
			if err == nil {
				for seq := d.First; seq < d.First+d.Count; seq++ {
					if !sink.Holds("gw", seq) {
						t.Fatalf("accepted batch %d+%d but %d is not held", d.First, d.Count, seq)
					}
				}
				continue
			}
			if after := sink.count(); after != before {
				t.Fatalf("refused batch %d+%d (%v) wrote %d records", d.First, d.Count, err, after-before)
			}
		}
	})
}

// captureSink keeps the entries written, for checks on what they hold.
type captureSink struct {
	*memSink
	entries []Entry
}

func (c *captureSink) Write(gw string, entries []Entry) (WriteResult, error) {
	for _, e := range entries {
		if e.Event != nil {
			ev := *e.Event
			e.Event = &ev
		}
		c.entries = append(c.entries, e)
	}
	return c.memSink.Write(gw, entries)
}

// TestDamagedRecordIsNotData: a record whose bytes changed on the way (its
// CRC-32C fails) reaches the sink as an undecodable entry with its raw
// bytes and the checksum error, never as an event; the records around it,
// and a version 1 record from an old spool, decode.
func TestDamagedRecordIsNotData(t *testing.T) {
	enc := func(msg string) []byte {
		b, err := (&event.Event{Message: msg, Quality: event.Quality{ErrorBound: -1}}).MarshalBinary()
		require.NoError(t, err)
		return b
	}
	damaged := enc("the payload that must not arrive as data")
	copy(damaged[len(damaged)/2:], "0123456789abcdef")
	v1 := enc("from an old spool")
	v1 = v1[:len(v1)-4]
	v1[0] = 1
	var p []byte
	for _, r := range [][]byte{enc("before"), damaged, enc("after"), v1} {
		p = uplink.AppendRecord(p, r)
	}
	sink := &captureSink{memSink: newMemSink()}
	b := newBatcher(testServer(t, DefaultConfig(), sink), "gw", 1000, 1<<20)
	defer b.close()
	require.NoError(t, b.accept(context.Background(), &uplink.Data{First: 10, Count: 4, Codec: uplink.CodecNone, Payload: p}))
	require.Len(t, sink.entries, 4)
	require.Equal(t, "before", sink.entries[0].Event.Message)
	require.Nil(t, sink.entries[1].Event)
	require.ErrorIs(t, sink.entries[1].DecodeErr, event.ErrChecksum)
	require.Equal(t, damaged, sink.entries[1].Raw, "kept as it came, for analysis")
	require.Equal(t, "after", sink.entries[2].Event.Message)
	require.Equal(t, "from an old spool", sink.entries[3].Event.Message)
}

// TestPreparedBatchesKeepTheirBuffers: batches prepared at once decode
// into buffers of their own, and a batch's entries stay as decoded while
// another is decoded into the buffers its neighbour gave back.
func TestPreparedBatchesKeepTheirBuffers(t *testing.T) {
	sink := newMemSink()
	b := newBatcher(testServer(t, DefaultConfig(), sink), "gw", 1000, 1<<20)
	prep := func(first uint64, n int, codec uplink.Codec) *prepared {
		p := payload(t, first, n)
		if codec == uplink.CodecZstd {
			p = zst(t, p)
		}
		pr, err := b.prepare(context.Background(), &uplink.Data{First: first, Count: uint64(n), Codec: codec, Payload: p})
		require.NoError(t, err)
		return pr
	}
	check := func(p *prepared, first uint64, n int) {
		t.Helper()
		require.Len(t, p.entries, n)
		for i, e := range p.entries {
			seq := first + uint64(i)
			require.Equal(t, seq, e.Seq)
			require.Equal(t, fmt.Sprintf("r%d", seq), e.Event.Message)
			var again event.Event
			require.NoError(t, again.UnmarshalBinary(e.Record))
			require.Equal(t, e.Event.Message, again.Message, "the record's bytes")
		}
	}
	p1 := prep(1, 100, uplink.CodecZstd)
	p2 := prep(101, 50, uplink.CodecNone)
	check(p1, 1, 100)
	check(p2, 101, 50)
	p1.release()
	p3 := prep(151, 200, uplink.CodecZstd)
	check(p2, 101, 50)
	check(p3, 151, 200)
	require.NoError(t, b.commit(p2))
	p2.release()
	require.NoError(t, b.commit(p3))
	p3.release()
	require.Equal(t, 250, sink.count())
}
