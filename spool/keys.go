package spool

import (
	"encoding/binary"
	"fmt"
)

// Key layout; see the package documentation.
const (
	recordPrefix     = "r/"
	checkpointPrefix = "c/"
	keyNext          = "m/next"
	keyAcked         = "m/acked"

	recordKeyLen = len(recordPrefix) + 8
	// stampLen is the appended time stored ahead of a record's data.
	stampLen = 8
)

func appendRecordKey(dst []byte, seq uint64) []byte {
	dst = append(dst, recordPrefix...)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func recordKey(seq uint64) []byte {
	return appendRecordKey(make([]byte, 0, recordKeyLen), seq)
}

// recordSeq decodes the sequence of a record key.
func recordSeq(key []byte) (uint64, error) {
	if len(key) != recordKeyLen || string(key[:len(recordPrefix)]) != recordPrefix {
		return 0, fmt.Errorf("malformed record key %x", key)
	}
	return binary.BigEndian.Uint64(key[len(recordPrefix):]), nil
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
