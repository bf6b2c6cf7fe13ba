package collector

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/seal"
)

// Every record the collector stores carries what proves it: its leaf hash
// in the gateway's Merkle log (merkle.RecordLeaf over its sequence and the
// bytes the gateway spooled) and those exact bytes, so the log can be
// recomputed from the sink alone, without trusting the collector
// (`weir-collector verify`). The JSON of the line is a rendering of those
// bytes: a verifier renders them again and compares.

// appendProof adds "leaf" and "record_base64" to the JSON object line.
func appendProof(line []byte, e *Entry) []byte {
	if e.Event == nil || len(e.Record) == 0 || len(line) == 0 || line[len(line)-1] != '}' {
		return line
	}
	line = append(line[:len(line)-1], `,"leaf":"`...)
	line = hex.AppendEncode(line, e.Leaf[:])
	line = append(line, `","record_base64":"`...)
	line = base64.StdEncoding.AppendEncode(line, e.Record)
	return append(line, `"}`...)
}

// SinkLine is the line a JSONL sink writes for record seq of gateway,
// whose bytes are rec, without the newline: what `weir-collector verify`
// compares each line with.
func SinkLine(gateway string, seq uint64, rec []byte) ([]byte, error) {
	line, _, err := renderLine(gateway, seq, rec)
	return line, err
}

// renderLine is the sink line of a decoded record of gateway with its
// proof, as the JSONL sink writes it (without the newline).
func renderLine(gateway string, seq uint64, rec []byte) ([]byte, *event.Event, error) {
	var ev event.Event
	if err := ev.UnmarshalBinary(rec); err != nil {
		return nil, nil, err
	}
	ev.Seq, ev.Gateway = seq, gateway
	line := ev.AppendJSON(nil)
	e := Entry{Seq: seq, Event: &ev, Record: rec, Leaf: merkle.RecordLeaf(seq, rec)}
	return appendProof(line, &e), &ev, nil
}

// SinkRecord is one gateway record read back from a sink, with what
// proves it.
type SinkRecord struct {
	Line    int // 1-based line in the sink
	Gateway string
	Seq     uint64
	Leaf    merkle.Hash // recomputed from Record (never taken from the line)
	Record  []byte      // the bytes the gateway spooled
	Seal    []byte      // the seal it carries, if it is a seal record
	// Err says why the line cannot stand for its record: no proof on it
	// (written before the log), bytes that do not decode, or JSON that
	// is not the rendering of its bytes (edited). Leaf is still set when
	// Record is.
	Err error
}

// ErrLineEdited is a sink line whose JSON is not the rendering of the
// record bytes it carries.
var ErrLineEdited = errors.New("the line's JSON is not its record's: edited")

// maxSinkLine bounds one line read back (a record is at most a spool
// append's 208 KiB, base64 and JSON on top).
const maxSinkLine = 4 << 20

// ScanSink reads a JSONL sink and calls fn for every gateway record, in
// the file's order; the collector's own records are skipped. Each line is
// rendered again from its record's bytes and compared (ErrLineEdited).
func ScanSink(r io.Reader, fn func(SinkRecord) error) error { return scanSink(r, true, fn) }

// scanSink is ScanSink; without check, only seal records are decoded and
// lines are not compared (the collector's own rebuild at start, which
// trusts its sink).
func scanSink(r io.Reader, check bool, fn func(SinkRecord) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxSinkLine)
	n := 0
	for sc.Scan() {
		n++
		sr, ok := parseSinkLine(n, sc.Bytes(), check)
		if !ok {
			continue
		}
		if err := fn(sr); err != nil {
			return err
		}
	}
	return sc.Err()
}

// parseSinkLine reads line n of a sink (a JSONL line, or a JetStream
// message's body, which is the same JSON); false for the collector's own
// records.
func parseSinkLine(n int, line []byte, check bool) (SinkRecord, bool) {
	var head struct {
		Seq     uint64 `json:"seq"`
		Gateway string `json:"gateway"`
		Source  string `json:"source"`
		Record  []byte `json:"record_base64"`
		Raw     []byte `json:"raw_base64"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return SinkRecord{Line: n, Err: fmt.Errorf("line %d: %w", n, err)}, true
	}
	if head.Gateway == CollectorStream {
		return SinkRecord{}, false
	}
	sr := SinkRecord{Line: n, Gateway: head.Gateway, Seq: head.Seq}
	rec := head.Record
	if rec == nil {
		rec = head.Raw
	}
	switch {
	case rec == nil:
		sr.Err = fmt.Errorf("line %d: no record bytes on it (written before the log)", n)
	default:
		sr.Record = rec
		sr.Leaf = merkle.RecordLeaf(head.Seq, rec)
		if head.Raw != nil {
			sr.Err = fmt.Errorf("line %d: the record did not decode at the collector", n)
			break
		}
		if !check && head.Source != seal.Source {
			break
		}
		want, ev, err := renderLine(head.Gateway, head.Seq, rec)
		switch {
		case err != nil:
			sr.Err = fmt.Errorf("line %d: record does not decode: %w", n, err)
		case !bytes.Equal(want, line):
			sr.Err = fmt.Errorf("line %d: %w", n, ErrLineEdited)
		default:
			sr.Seal, _ = seal.FromEvent(ev)
		}
	}
	return sr, true
}
