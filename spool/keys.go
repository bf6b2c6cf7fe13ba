package spool

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Key layout; see the package documentation. Every key that is not a
// record sorts after the records, so whole tables of a dropped segment
// hold nothing else and Badger can delete them without rewriting.
const (
	recordPrefix     = "r/"
	metaPrefix       = "s/"
	segmentPrefix    = "s/seg/"
	checkpointPrefix = "s/c/"
	keyNext          = "s/next"
	keyAcked         = "s/acked"
	keyCounts        = "s/counts"
	keyFormat        = "s/format"
	keyCheckedFrom   = "s/checked"
	indexPrefix      = "x/"

	// format is the layout version in s/format. Version 3 added the
	// record checksum and eviction markers; a version 2 spool is upgraded
	// in place at Open, and its older records are read as they were
	// written (s/checked says where the checked records begin).
	format       = 3
	formatLegacy = 2

	recordKeyLen = len(recordPrefix) + 4 + 8 + 1
	indexKeyLen  = len(indexPrefix) + 4 + 1 + 8
	// stampLen is the appended time stored ahead of a record's data.
	stampLen = 8
	// headerLen is what a record's value holds ahead of its data: the
	// stamp and the CRC-32C of key, stamp and data. A value of stampLen
	// bytes alone is an eviction marker.
	headerLen = stampLen + 4
	// recordOverhead is what a record costs beyond its data, for the
	// max_bytes bound: two keys, the stamp and Badger's per-entry metadata.
	recordOverhead = 64
)

// appendRecordKey writes r/<seg><seq><class>. Segments and sequences both
// only grow, so keys sort in sequence order across segments. The class
// rides in the key so that Ack and eviction can account for a record from
// a key-only scan.
func appendRecordKey(dst []byte, seg uint32, seq uint64, c Class) []byte {
	dst = segmentRecordPrefix(dst, seg)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	return append(dst, byte(c))
}

// segmentRecordPrefix writes r/<seg>: every record of one segment.
func segmentRecordPrefix(dst []byte, seg uint32) []byte {
	dst = append(dst, recordPrefix...)
	return binary.BigEndian.AppendUint32(dst, seg)
}

// recordSeekKey is where a scan for seq and above starts, seg being the
// segment that holds seq.
func recordSeekKey(seg uint32, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(segmentRecordPrefix(nil, seg), seq)
}

// parseRecordKey decodes r/<seg><seq><class>.
func parseRecordKey(key []byte) (seg uint32, seq uint64, c Class, err error) {
	if len(key) != recordKeyLen || string(key[:len(recordPrefix)]) != recordPrefix || Class(key[recordKeyLen-1]) >= numClasses {
		return 0, 0, 0, fmt.Errorf("malformed record key %x", key)
	}
	p := len(recordPrefix)
	return binary.BigEndian.Uint32(key[p:]), binary.BigEndian.Uint64(key[p+4:]), Class(key[recordKeyLen-1]), nil
}

// castagnoli is the CRC-32C table (hardware-assisted on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordCRC is the checksum a record's value carries: CRC-32C over the
// key (segment, sequence, class), the stamp and the data, so a record read
// under the wrong key or with a damaged stamp fails as surely as one with
// damaged data.
func recordCRC(key, stamp, data []byte) uint32 {
	c := crc32.Update(0, castagnoli, key)
	c = crc32.Update(c, castagnoli, stamp)
	return crc32.Update(c, castagnoli, data)
}

// appendRecordValue writes a checked record's value: stamp, CRC, data.
func appendRecordValue(dst, key []byte, stamp int64, data []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(stamp))
	crc := recordCRC(key, dst[start:], data)
	dst = binary.BigEndian.AppendUint32(dst, crc)
	return append(dst, data...)
}

// valueKind is what a record key's value holds.
type valueKind uint8

const (
	valueRecord  valueKind = iota // a record whose checksum matched (or a legacy record, which has none)
	valueMarker                   // an evicted or expired record's marker: no data
	valueCorrupt                  // a record whose checksum or length is wrong
)

// parseRecordValue splits a value read under key: the stamp, the data and
// what it is. checked says the record was written with a checksum (its
// sequence is at or above s/checked); a legacy record is stamp and data.
func parseRecordValue(key, v []byte, checked bool) (stamp int64, data []byte, kind valueKind) {
	if !checked {
		if len(v) < stampLen {
			return 0, nil, valueCorrupt
		}
		return int64(binary.BigEndian.Uint64(v)), v[stampLen:], valueRecord
	}
	switch {
	case len(v) == stampLen:
		return int64(binary.BigEndian.Uint64(v)), nil, valueMarker
	case len(v) < headerLen:
		return 0, nil, valueCorrupt
	}
	stamp = int64(binary.BigEndian.Uint64(v))
	if binary.BigEndian.Uint32(v[stampLen:]) != recordCRC(key, v[:stampLen], v[headerLen:]) {
		return stamp, nil, valueCorrupt
	}
	return stamp, v[headerLen:], valueRecord
}

// markerValue is what eviction and expiry leave under a record's key: its
// stamp alone. Every sequence between the ack mark and the next to assign
// then still has a key, so a read that finds one missing knows it is
// damage, not a gap left on purpose.
func markerValue(stamp int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, stampLen), uint64(stamp))
}

// dataSize is the record data a value of valueSize bytes holds, from a
// key-only scan; markers hold none.
func dataSize(valueSize int64, checked bool) int64 {
	if !checked {
		return max(valueSize-stampLen, 0)
	}
	if valueSize <= stampLen {
		return 0
	}
	return max(valueSize-headerLen, 0)
}

// indexed says whether a record of class c has an index key: every class
// has. Bulk and normal records are indexed for eviction and expiry,
// critical ones so that the uplink can send them ahead of the backlog
// (ReadCritical). A spool written before critical records were indexed
// has none for its older critical records: they go in sequence order.
func indexed(Class) bool { return true }

// appendIndexKey writes x/<seg><class><seq>: each segment's records of one
// class, oldest first, for eviction and expiry (bulk, normal) and reading
// ahead (critical). Its value is the stamp and the data size.
func appendIndexKey(dst []byte, seg uint32, c Class, seq uint64) []byte {
	dst = indexClassPrefix(dst, seg, c)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// segmentIndexPrefix writes x/<seg>: every index key of one segment.
func segmentIndexPrefix(dst []byte, seg uint32) []byte {
	dst = append(dst, indexPrefix...)
	return binary.BigEndian.AppendUint32(dst, seg)
}

func indexClassPrefix(dst []byte, seg uint32, c Class) []byte {
	return append(segmentIndexPrefix(dst, seg), byte(c))
}

func parseIndexKey(key []byte) (seg uint32, c Class, seq uint64, err error) {
	p := len(indexPrefix)
	if len(key) != indexKeyLen || string(key[:p]) != indexPrefix || Class(key[p+4]) >= numClasses {
		return 0, 0, 0, fmt.Errorf("malformed index key %x", key)
	}
	return binary.BigEndian.Uint32(key[p:]), Class(key[p+4]), binary.BigEndian.Uint64(key[p+5:]), nil
}

func indexValue(stamp int64, size int) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(stamp))
	return binary.BigEndian.AppendUint32(b, uint32(size))
}

func parseIndexValue(v []byte) (stamp int64, size int64, err error) {
	if len(v) != 12 {
		return 0, 0, fmt.Errorf("malformed index value of %d bytes", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint32(v[8:])), nil
}

// segmentKey is s/seg/<seg>; its value is the segment's first sequence.
func segmentKey(seg uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte(segmentPrefix), seg)
}

func parseSegmentKey(key []byte) (uint32, error) {
	if len(key) != len(segmentPrefix)+4 || string(key[:len(segmentPrefix)]) != segmentPrefix {
		return 0, fmt.Errorf("malformed segment key %x", key)
	}
	return binary.BigEndian.Uint32(key[len(segmentPrefix):]), nil
}

func checkpointKey(source string) []byte {
	return append([]byte(checkpointPrefix), source...)
}

func encodeUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v)
}

func decodeUint64(name string, v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("malformed %s: %d bytes, want 8", name, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// counts are the backlog per class, persisted in every transaction that
// changes it so Open needs no scan.
type counts [numClasses]struct{ records, bytes int64 }

func (c *counts) add(cl Class, records, bytes int64) {
	c[cl].records += records
	c[cl].bytes += bytes
}

func (c *counts) total() (records, bytes int64) {
	for _, x := range c {
		records += x.records
		bytes += x.bytes
	}
	return
}

// used is what counts against max_bytes.
func (c *counts) used() int64 {
	r, b := c.total()
	return b + r*recordOverhead
}

func (c *counts) encode() []byte {
	b := make([]byte, 0, 16*numClasses)
	for _, x := range c {
		b = binary.BigEndian.AppendUint64(b, uint64(x.records))
		b = binary.BigEndian.AppendUint64(b, uint64(x.bytes))
	}
	return b
}

func (c *counts) decode(b []byte) error {
	if len(b) != 16*int(numClasses) {
		return fmt.Errorf("malformed %s: %d bytes", keyCounts, len(b))
	}
	for i := range c {
		c[i].records = int64(binary.BigEndian.Uint64(b[16*i:]))
		c[i].bytes = int64(binary.BigEndian.Uint64(b[16*i+8:]))
	}
	return nil
}
