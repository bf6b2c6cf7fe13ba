package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
)

// sinkRecord is what the smoke test reads of a line of the collector's
// JSONL sink.
type sinkRecord struct {
	Seq     uint64         `json:"seq"`
	Gateway string         `json:"gateway"`
	TimeNs  int64          `json:"time_ns"`
	Source  string         `json:"source"`
	Kind    string         `json:"kind"`
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields"`
}

// held is what the collector holds of one gateway.
type held struct {
	lines    int                 // the gateway's lines in the sink
	seqs     map[uint64]int      // lines per sequence
	contents map[string][]uint64 // sequences per (source, time, message)
	bySource map[string]int
	min, max uint64
}

// readSink reads the sink's whole lines (the collector may be writing the
// last one).
func readSink(path, gateway string) (*held, error) {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	h := &held{seqs: map[uint64]int{}, contents: map[string][]uint64{}, bySource: map[string]int{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	n := 0
	for sc.Scan() {
		n++
		var r sinkRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("sink %s line %d: %w", path, n, err)
		}
		if r.Gateway != gateway {
			continue
		}
		h.add(r)
	}
	return h, sc.Err()
}

func (h *held) add(r sinkRecord) {
	h.lines++
	h.seqs[r.Seq]++
	key := r.Source + "\x00" + strconv.FormatInt(r.TimeNs, 10) + "\x00" + r.Message
	h.contents[key] = append(h.contents[key], r.Seq)
	h.bySource[r.Source]++
	if h.min == 0 || r.Seq < h.min {
		h.min = r.Seq
	}
	if r.Seq > h.max {
		h.max = r.Seq
	}
}

// distinct is the number of sequences held.
func (h *held) distinct() int { return len(h.seqs) }

// duplicated counts the records held more than once: a sequence on two
// lines, or one record (source, time, message) under two sequences.
func (h *held) duplicated() int {
	n := 0
	for _, c := range h.seqs {
		n += c - 1
	}
	for _, seqs := range h.contents {
		distinct := map[uint64]bool{}
		for _, s := range seqs {
			distinct[s] = true
		}
		n += len(distinct) - 1
	}
	return n
}

// missing lists the sequences from first to last (inclusive) not held.
func (h *held) missing(first, last uint64) []uint64 {
	var out []uint64
	for s := first; s <= last; s++ {
		if h.seqs[s] == 0 {
			out = append(out, s)
		}
	}
	return out
}

// spoolOpened is the gateway's log line when its spool opens:
// `msg="spool opened" ... next_seq=N acked_up_to=A records=R`.
var spoolOpened = regexp.MustCompile(`msg="spool opened".*?\bnext_seq=(\d+) acked_up_to=(\d+) records=(\d+)`)

// opened is the spool's state at the gateway's start, from its log.
type opened struct {
	next, acked uint64
	records     int
}

// parseOpened finds the first "spool opened" line in the gateway's log.
func parseOpened(logs string) (opened, bool) {
	m := spoolOpened.FindStringSubmatch(collapse(logs))
	if m == nil {
		return opened{}, false
	}
	next, _ := strconv.ParseUint(m[1], 10, 64)
	acked, _ := strconv.ParseUint(m[2], 10, 64)
	records, _ := strconv.Atoi(m[3])
	return opened{next: next, acked: acked, records: records}, true
}

// statusSpool is the status's spool line: `spool    backlog N records
// (...); acked up to A, next S; ...`.
var statusSpool = regexp.MustCompile(`spool backlog (\d+) records .*?; acked up to (\d+), next (\d+);`)

type spoolStatus struct {
	backlog     int
	acked, next uint64
}

func parseStatusSpool(status string) (spoolStatus, bool) {
	m := statusSpool.FindStringSubmatch(collapse(status))
	if m == nil {
		return spoolStatus{}, false
	}
	backlog, _ := strconv.Atoi(m[1])
	acked, _ := strconv.ParseUint(m[2], 10, 64)
	next, _ := strconv.ParseUint(m[3], 10, 64)
	return spoolStatus{backlog: backlog, acked: acked, next: next}, true
}

// statusUplink is the status's uplink line: `uplink   connected ADDR ...;
// sent N, acked M; ...`.
var statusUplink = regexp.MustCompile(`uplink (\S+) \S+.*?; sent (\d+), acked (\d+);`)

// collapse joins the console's folded lines: every run of white space
// becomes one space.
func collapse(s string) string { return whitespace.ReplaceAllString(s, " ") }

var whitespace = regexp.MustCompile(`\s+`)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
