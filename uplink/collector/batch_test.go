package collector

import (
	"bufio"
	"bytes"
	"fmt"
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
}

func newMemSink() *memSink { return &memSink{set: map[string]*seqSet{}, written: map[uint64]int{}} }

func (m *memSink) s(gw string) *seqSet {
	if m.set[gw] == nil {
		m.set[gw] = &seqSet{}
	}
	return m.set[gw]
}

func (m *memSink) Write(gw string, entries []Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range entries {
		if m.s(gw).holds(e.Seq) {
			continue
		}
		m.s(gw).add(e.Seq)
		m.written[e.Seq]++
	}
	return nil
}

func (m *memSink) Holds(gw string, seq uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s(gw).holds(seq)
}

func (m *memSink) Resume(gw string, floor uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s(gw).raise(floor)
	return m.s(gw).highest()
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
	b := newBatcher(1 << 20)
	defer b.close()
	send := func(first uint64, n int, codec uplink.Codec) {
		p := payload(t, first, n)
		if codec == uplink.CodecZstd {
			p = zst(t, p)
		}
		require.NoError(t, b.accept("gw", &uplink.Data{First: first, Count: uint64(n), Codec: codec, Payload: p}, sink))
	}
	send(100, 10, uplink.CodecZstd) // 100..109
	send(105, 10, uplink.CodecNone) // overlaps the mark: 110..114 new
	send(130, 5, uplink.CodecZstd)  // out of order (another session's batch)
	send(115, 15, uplink.CodecZstd) // fills the gap
	send(100, 35, uplink.CodecZstd) // replay of everything
	require.Len(t, sink.written, 35)
	for seq, n := range sink.written {
		require.Equal(t, 1, n, "seq %d", seq)
	}
	require.Equal(t, uint64(134), sink.Resume("gw", 99))
}

func TestBatchRejects(t *testing.T) {
	bomb := zst(t, make([]byte, 4<<20)) // 4 MiB of zeros in a few hundred bytes
	cases := map[string]struct {
		d    uplink.Data
		want string
	}{
		"zip bomb":      {uplink.Data{First: 1, Count: 1, Codec: uplink.CodecZstd, Payload: bomb}, "exceeds the limit"},
		"not zstd":      {uplink.Data{First: 1, Count: 1, Codec: uplink.CodecZstd, Payload: []byte("plain")}, "zstd payload"},
		"count too big": {uplink.Data{First: 1, Count: 1 << 40, Payload: []byte{1, 'x'}}, "records announced in 2 bytes"},
		"count short":   {uplink.Data{First: 1, Count: 1, Payload: payload(t, 1, 2)}, "more than the 1 records"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := newBatcher(1 << 20)
			defer b.close()
			err := b.accept("gw", &c.d, newMemSink())
			require.ErrorIs(t, err, errBadPayload)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestSeqSet(t *testing.T) {
	cases := []struct {
		name  string
		floor uint64
		add   []uint64
		want  seqSet
	}{
		{"in order", 0, []uint64{5, 6, 7}, seqSet{Ranges: [][2]uint64{{5, 7}}}},
		{"from floor", 4, []uint64{5, 6, 7}, seqSet{Floor: 7}},
		{"gap then fill", 4, []uint64{7, 8, 5, 6}, seqSet{Floor: 8}},
		{"two gaps", 0, []uint64{10, 20, 30, 21, 11, 29}, seqSet{Ranges: [][2]uint64{{10, 11}, {20, 21}, {29, 30}}}},
		{"join", 0, []uint64{10, 12, 11}, seqSet{Ranges: [][2]uint64{{10, 12}}}},
		{"below floor", 10, []uint64{3, 10}, seqSet{Floor: 10}},
		{"dup", 0, []uint64{3, 3, 3}, seqSet{Ranges: [][2]uint64{{3, 3}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := seqSet{}
			s.raise(c.floor)
			for _, q := range c.add {
				s.add(q)
			}
			if len(s.Ranges) == 0 {
				s.Ranges = nil
			}
			require.Equal(t, c.want, s)
			for _, q := range c.add {
				require.True(t, s.holds(q))
			}
		})
	}
	s := seqSet{Ranges: [][2]uint64{{10, 11}, {20, 21}}}
	require.Equal(t, uint64(11), s.highest(), "no floor yet: the lowest range")
	require.False(t, s.holds(15))
	s.raise(19)
	require.Equal(t, uint64(21), s.highest(), "a floor below the second range swallows both")
}

// FuzzBatch feeds frames through the collector's Data path: decode,
// bounded decompression, split, dedupe, write. It must never panic nor
// allocate beyond the bound.
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
	f.Fuzz(func(t *testing.T, in []byte) {
		sink := newMemSink()
		b := newBatcher(1 << 16)
		defer b.close()
		r := bufio.NewReader(bytes.NewReader(in))
		var buf []byte
		for {
			typ, body, nb, err := uplink.ReadFrame(r, buf, 1<<16)
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
			if err := b.accept("gw", d, sink); err == nil {
				for seq := d.First; seq < d.First+d.Count; seq++ {
					if !sink.Holds("gw", seq) {
						t.Fatalf("accepted batch %d+%d but %d is not held", d.First, d.Count, seq)
					}
				}
			}
			if len(b.plain) > 1<<16 {
				t.Fatalf("decoded %d bytes past the bound", len(b.plain))
			}
		}
	})
}

// captureSink keeps the entries written, for checks on what they hold.
type captureSink struct {
	*memSink
	entries []Entry
}

func (c *captureSink) Write(gw string, entries []Entry) error {
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
	b := newBatcher(1 << 20)
	defer b.close()
	require.NoError(t, b.accept("gw", &uplink.Data{First: 10, Count: 4, Codec: uplink.CodecNone, Payload: p}, sink))
	require.Len(t, sink.entries, 4)
	require.Equal(t, "before", sink.entries[0].Event.Message)
	require.Nil(t, sink.entries[1].Event)
	require.ErrorIs(t, sink.entries[1].DecodeErr, event.ErrChecksum)
	require.Equal(t, damaged, sink.entries[1].Raw, "kept as it came, for analysis")
	require.Equal(t, "after", sink.entries[2].Event.Message)
	require.Equal(t, "from an old spool", sink.entries[3].Event.Message)
}
