package spool

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"testing"
)

// FuzzParseKeys: the parsers of the keys and values the spool reads back
// from Badger (record, index and segment keys, index values, the counts,
// the eight-byte sequences) take any bytes, as a corrupt or foreign
// database may hold, without a panic; what one accepts encodes back to the
// same bytes; record and index keys sort as the tuples they encode, which
// the spool's scans rely on.
func FuzzParseKeys(f *testing.F) {
	f.Add(appendRecordKey(nil, 3, 1796589889447418, ClassNormal), appendRecordKey(nil, 4, 7, ClassCritical))
	f.Add(appendIndexKey(nil, 1, ClassBulk, 99), appendIndexKey(nil, 1, ClassNormal, 100))
	f.Add(segmentKey(7), indexValue(1796589889447418, 208<<10))
	f.Add(new(counts).encode(), encodeUint64(42))
	f.Add([]byte("r/\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x09"), []byte("x/"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for _, k := range [][]byte{a, b} {
			if seg, seq, c, err := parseRecordKey(k); err == nil {
				if c >= numClasses {
					t.Fatalf("record key %x: class %d accepted", k, c)
				}
				if got := appendRecordKey(nil, seg, seq, c); !bytes.Equal(got, k) {
					t.Fatalf("record key %x parsed as %d/%d/%d, encodes to %x", k, seg, seq, c, got)
				}
			}
			if seg, c, seq, err := parseIndexKey(k); err == nil {
				if c >= numClasses {
					t.Fatalf("index key %x: class %d accepted", k, c)
				}
				if got := appendIndexKey(nil, seg, c, seq); !bytes.Equal(got, k) {
					t.Fatalf("index key %x parsed as %d/%d/%d, encodes to %x", k, seg, c, seq, got)
				}
			}
			if seg, err := parseSegmentKey(k); err == nil {
				if got := segmentKey(seg); !bytes.Equal(got, k) {
					t.Fatalf("segment key %x parsed as %d, encodes to %x", k, seg, got)
				}
			}
			if stamp, size, err := parseIndexValue(k); err == nil {
				if size < 0 || size > 1<<32-1 {
					t.Fatalf("index value %x: size %d", k, size)
				}
				got := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, uint64(stamp)), uint32(size))
				if !bytes.Equal(got, k) {
					t.Fatalf("index value %x parsed as %d, %d, encodes to %x", k, stamp, size, got)
				}
			}
			var c counts
			if err := c.decode(k); err == nil {
				if got := c.encode(); !bytes.Equal(got, k) {
					t.Fatalf("counts %x decode and encode to %x", k, got)
				}
			}
			if v, err := decodeUint64("k", k); err == nil && !bytes.Equal(encodeUint64(v), k) {
				t.Fatalf("uint64 %x decodes to %d", k, v)
			}
		}

		// Keys sort as what they encode: segment, then sequence (record
		// keys), or segment, class, sequence (index keys).
		sa, qa, ca, errA := parseRecordKey(a)
		sb, qb, cb, errB := parseRecordKey(b)
		if errA == nil && errB == nil {
			want := cmp.Or(cmp.Compare(sa, sb), cmp.Compare(qa, qb), cmp.Compare(ca, cb))
			if got := bytes.Compare(a, b); got != want {
				t.Fatalf("record keys %x, %x compare %d, their tuples %d", a, b, got, want)
			}
		}
		ia, cla, xa, errA := parseIndexKey(a)
		ib, clb, xb, errB := parseIndexKey(b)
		if errA == nil && errB == nil {
			want := cmp.Or(cmp.Compare(ia, ib), cmp.Compare(cla, clb), cmp.Compare(xa, xb))
			if got := bytes.Compare(a, b); got != want {
				t.Fatalf("index keys %x, %x compare %d, their tuples %d", a, b, got, want)
			}
		}
	})
}
