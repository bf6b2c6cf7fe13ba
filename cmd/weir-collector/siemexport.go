package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/siem"
)

// maxExportLine bounds one line of a SIEM export (a record is at most a
// spool append's 208 KiB, rendered as ECS with its fields).
const maxExportLine = 4 << 20

// exportScan is what reading a SIEM export found besides the records.
type exportScan struct {
	lines, other, unreadable, duplicates int
	firstErr                             string
}

// scanSIEMExport reads an ECS export, a JSON document a line (as sent, or
// under an Elasticsearch hit's _source), and gives every Weir record's
// leaf and seal to fn. A SIEM may hold a record twice (delivery is at
// least once; its dedupe id is gateway:sequence): the same leaf again is
// skipped, another leaf for the same sequence is given, and fails.
func scanSIEMExport(r io.Reader, st *exportScan, fn func(collector.SinkRecord) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxExportLine)
	seen := map[string]map[uint64]merkle.Hash{}
	for sc.Scan() {
		st.lines++
		if len(sc.Bytes()) == 0 {
			continue
		}
		rec, err := siem.ParseECSExport(sc.Bytes())
		switch {
		case errors.Is(err, siem.ErrNotWeir):
			st.other++
			continue
		case err != nil:
			st.unreadable++
			if st.firstErr == "" {
				st.firstErr = fmt.Sprintf("line %d: %v", st.lines, err)
			}
			continue
		}
		gw := seen[rec.Gateway]
		if gw == nil {
			gw = map[uint64]merkle.Hash{}
			seen[rec.Gateway] = gw
		}
		if l, ok := gw[rec.Seq]; ok && l == rec.Leaf {
			st.duplicates++
			continue
		}
		gw[rec.Seq] = rec.Leaf
		// No bytes: the leaf is taken as the export gives it.
		if err := fn(collector.SinkRecord{Line: st.lines, Gateway: rec.Gateway, Seq: rec.Seq, Leaf: rec.Leaf,
			Record: []byte{}, Seal: rec.Seal}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("siem export: line %d: %w", st.lines+1, err)
	}
	return nil
}
