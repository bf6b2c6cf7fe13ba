package siem

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/seal"
)

// ExportRecord is what a SIEM's copy of one record says about the
// gateway's Merkle log: its gateway and sequence (the dedupe id's parts),
// its leaf hash (LeafField) and, for a seal record, the seal's bytes.
// It is enough to recompute the log's trees and check every seal; it is
// not the record's bytes, so it cannot show that the rest of the SIEM's
// copy (message, fields) is the record the leaf hashes.
type ExportRecord struct {
	Gateway string
	Seq     uint64
	Leaf    merkle.Hash
	Seal    []byte // nil unless the record is a seal
}

// ErrNotWeir is an export line that is not a Weir record (no weir.gateway
// and weir.seq): other sources share a SIEM's index.
var ErrNotWeir = errors.New("siem: export line: not a Weir record")

// ParseECSExport reads one line of an ECS export: the ECS document Weir
// sent, or an Elasticsearch hit or dump line holding it under _source.
// It never panics, and allocates for the seal only within seal.MaxSize.
func ParseECSExport(line []byte) (ExportRecord, error) {
	var r ExportRecord
	m, err := ParseECS(line)
	if err != nil {
		return r, err
	}
	if src, ok := m["_source"].(map[string]any); ok {
		m = src
	}
	gw, ok1 := Lookup(m, "weir.gateway")
	seq, ok2 := Lookup(m, "weir.seq")
	if !ok1 || !ok2 {
		return r, ErrNotWeir
	}
	if r.Gateway, ok1 = gw.(string); !ok1 || r.Gateway == "" {
		return r, errors.New("siem: export line: weir.gateway is not a string")
	}
	n, ok := seq.(json.Number)
	if !ok {
		return r, fmt.Errorf("siem: export line: weir.seq of %s is not a number", r.Gateway)
	}
	if r.Seq, err = strconv.ParseUint(string(n), 10, 64); err != nil || r.Seq == 0 {
		return r, fmt.Errorf("siem: export line: weir.seq %q of %s is not a sequence", n, r.Gateway)
	}
	leaf, ok := Lookup(m, "weir.fields."+LeafField)
	if !ok {
		return r, fmt.Errorf("siem: export line: record %s:%d has no %s (forwarded before the log, or the field was dropped)", r.Gateway, r.Seq, LeafField)
	}
	if s, _ := leaf.(string); !decodeHash(&r.Leaf, s) {
		return r, fmt.Errorf("siem: export line: %s of %s:%d is not a hex SHA-256", LeafField, r.Gateway, r.Seq)
	}
	if src, _ := Lookup(m, "weir.source"); src == seal.Source {
		v, _ := Lookup(m, "weir.fields."+seal.Field)
		s, _ := v.(string)
		if len(s) > 2*seal.MaxSize {
			return r, fmt.Errorf("siem: export line: seal %s:%d of %d hex digits, more than a seal's", r.Gateway, r.Seq, len(s))
		}
		if r.Seal, err = hex.DecodeString(s); err != nil || len(r.Seal) == 0 {
			return r, fmt.Errorf("siem: export line: seal record %s:%d carries no seal in hex", r.Gateway, r.Seq)
		}
	}
	return r, nil
}

func decodeHash(h *merkle.Hash, s string) bool {
	if len(s) != 2*len(h) {
		return false
	}
	_, err := hex.Decode(h[:], []byte(s))
	return err == nil
}
