package spool

import (
	"encoding/binary"
	"fmt"
)

// Key layout; see the package documentation.
const (
	recordPrefix     = "r/"
	indexPrefix      = "i/"
	checkpointPrefix = "c/"
	keyNext          = "m/next"
	keyAcked         = "m/acked"
	keyCounts        = "m/counts"

	recordKeyLen = len(recordPrefix) + 8 + 1
	indexKeyLen  = len(indexPrefix) + 1 + 8
	// stampLen is the appended time stored ahead of a record's data.
	stampLen = 8
	// recordOverhead is what a record costs beyond its data, for the
	// max_bytes bound: two keys, the stamp and Badger's per-entry metadata.
	recordOverhead = 64
)

// appendRecordKey writes r/<seq><class>. The class rides in the key so that
// Ack and eviction can account for a record from a key-only scan.
func appendRecordKey(dst []byte, seq uint64, c Class) []byte {
	dst = append(dst, recordPrefix...)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	return append(dst, byte(c))
}

// recordSeekKey is where a scan for seq and above starts.
func recordSeekKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(recordPrefix), seq)
}

// parseRecordKey decodes r/<seq><class>.
func parseRecordKey(key []byte) (uint64, Class, error) {
	if len(key) != recordKeyLen || string(key[:len(recordPrefix)]) != recordPrefix || Class(key[recordKeyLen-1]) >= numClasses {
		return 0, 0, fmt.Errorf("malformed record key %x", key)
	}
	return binary.BigEndian.Uint64(key[len(recordPrefix):]), Class(key[recordKeyLen-1]), nil
}

// appendIndexKey writes i/<class><seq>: each class's records, oldest first,
// for eviction and expiry. Its value is the stamp and the data size.
func appendIndexKey(dst []byte, c Class, seq uint64) []byte {
	dst = append(dst, indexPrefix...)
	dst = append(dst, byte(c))
	return binary.BigEndian.AppendUint64(dst, seq)
}

func indexClassPrefix(c Class) []byte { return append([]byte(indexPrefix), byte(c)) }

func parseIndexKey(key []byte) (Class, uint64, error) {
	if len(key) != indexKeyLen || string(key[:len(indexPrefix)]) != indexPrefix || Class(key[len(indexPrefix)]) >= numClasses {
		return 0, 0, fmt.Errorf("malformed index key %x", key)
	}
	return Class(key[len(indexPrefix)]), binary.BigEndian.Uint64(key[len(indexPrefix)+1:]), nil
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
