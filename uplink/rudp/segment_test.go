package rudp

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSegmentRoundTrip(t *testing.T) {
	tests := []segment{
		{kind: kindData, seq: 7, ack: 3, wnd: 4096, tsval: 1, tsecr: 2, payload: []byte("hello")},
		{kind: kindAck, ack: 100, wnd: 10, tsval: 99, tsecr: 98, blocks: []sackBlock{{102, 105}, {110, 111}, {200, 300}}},
		{kind: kindAck, ack: 1<<64 - 10, blocks: []sackBlock{{1<<64 - 8, 1<<64 - 7}}},
		{kind: kindPing, tsval: 5},
		{kind: kindFin, seq: 1 << 40, ack: 1},
	}
	for _, in := range tests {
		b := appendSegment(nil, &in)
		require.Len(t, b, headerLen+len(in.blocks)*blockLen+len(in.payload))
		var out segment
		require.NoError(t, decodeSegment(b, &out))
		if len(in.payload) == 0 {
			in.payload = []byte{}
		}
		require.Equal(t, in, out)
	}
}

func TestSegmentDecodeErrors(t *testing.T) {
	valid := appendSegment(nil, &segment{kind: kindAck, ack: 10, blocks: []sackBlock{{12, 14}, {20, 21}}})
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), valid...)) }
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, errShort},
		{"short", valid[:headerLen-1], errShort},
		{"version", mutate(func(b []byte) []byte { b[0] = 2<<4 | kindAck; return b }), errVersion},
		{"kind 0", mutate(func(b []byte) []byte { b[0] = wireVersion << 4; return b }), errKind},
		{"kind 9", mutate(func(b []byte) []byte { b[0] = wireVersion<<4 | 9; return b }), errKind},
		{"blocks past end", valid[:len(valid)-1], errBlocks},
		{"too many blocks", mutate(func(b []byte) []byte { b[1] = maxBlocks + 1; return b }), errBlocks},
		{"block at ack", mutate(func(b []byte) []byte { b[headerLen+3] = 0; return b }), errBlockOrd},
		{"empty block", mutate(func(b []byte) []byte { b[headerLen+7] = 0; return b }), errBlockOrd},
		{"overlapping blocks", mutate(func(b []byte) []byte { b[headerLen+8+3] = 3; return b }), errBlockOrd},
		{"payload on ack", append(append([]byte(nil), valid...), 1), errPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s segment
			require.ErrorIs(t, decodeSegment(tt.b, &s), tt.err)
		})
	}
}

func TestAddRange(t *testing.T) {
	tests := []struct {
		name string
		in   []uint64
		want []sackBlock
	}{
		{"single", []uint64{5}, []sackBlock{{5, 6}}},
		{"extend right", []uint64{5, 6, 7}, []sackBlock{{5, 8}}},
		{"extend left", []uint64{7, 6, 5}, []sackBlock{{5, 8}}},
		{"disjoint", []uint64{9, 5, 20}, []sackBlock{{5, 6}, {9, 10}, {20, 21}}},
		{"bridge", []uint64{5, 7, 6}, []sackBlock{{5, 8}}},
		{"duplicate", []uint64{5, 5, 6, 5}, []sackBlock{{5, 7}}},
		{"insert between", []uint64{1, 10, 5}, []sackBlock{{1, 2}, {5, 6}, {10, 11}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r []sackBlock
			for _, s := range tt.in {
				r = addRange(r, s)
			}
			require.Equal(t, tt.want, r)
		})
	}
}

// FuzzDecodeSegment feeds the segment decoder arbitrary datagrams: it must
// not panic, must bound its allocations, and what it accepts must encode
// back to the same bytes.
func FuzzDecodeSegment(f *testing.F) {
	// More seeds, hostile ones included, live in testdata/fuzz/FuzzDecodeSegment.
	f.Add(appendSegment(nil, &segment{kind: kindData, seq: 1, payload: []byte("x")}))
	f.Add(appendSegment(nil, &segment{kind: kindAck, ack: 5, blocks: []sackBlock{{7, 9}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s segment
		if err := decodeSegment(b, &s); err != nil {
			return
		}
		if len(s.blocks) > maxBlocks {
			t.Fatalf("%d blocks", len(s.blocks))
		}
		for i, k := range s.blocks {
			if k.start <= s.ack || k.end <= k.start || (i > 0 && k.start <= s.blocks[i-1].end) {
				t.Fatalf("accepted bad block %d %+v (ack %d)", i, k, s.ack)
			}
		}
		if again := appendSegment(nil, &s); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
