package spool

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// Why a record was quarantined.
const (
	reasonChecksum   = "checksum mismatch"
	reasonUnreadable = "unreadable: missing from a damaged table"
)

// Quarantined is a run of records a Read found damaged and set aside
// instead of returning them: a record whose checksum failed (Key and Value
// hold what was read), or sequences the spool should hold but could not
// read (a table block whose checksum failed, or records a compaction lost
// with it).
type Quarantined struct {
	First   uint64    `json:"first"`
	Last    uint64    `json:"last"`
	Records int       `json:"records"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	Key     []byte    `json:"-"`
	Value   []byte    `json:"-"`
}

// quarantineKeep is how many recent quarantine events QuarantinedSince can
// return; older ones are in the quarantine file.
const quarantineKeep = 64

// quarantineFileMax bounds the quarantine file: past it, runs are written
// without their bytes; past twice it, nothing more is written (the
// records are still skipped and counted).
const quarantineFileMax = 16 << 20

// QuarantinePath is the file beside a spool directory where quarantined
// records are kept: one JSON object per line with the run, the reason and,
// for a record whose checksum failed, its key and value in hex. It is
// outside the spool directory so that it outlives a spool moved aside.
func QuarantinePath(dir string) string { return filepath.Clean(dir) + ".quarantine" }

// QuarantinedSince returns the quarantine events numbered from n on (the
// first event is 0), as far as the last quarantineKeep, and the number to
// ask from next time.
func (s *Spool) QuarantinedSince(n uint64) ([]Quarantined, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := s.qEvents
	oldest := total - uint64(len(s.qRecent))
	n = max(n, oldest)
	if n >= total {
		return nil, total
	}
	return slices.Clone(s.qRecent[n-oldest:]), total
}

// quarantine sets aside what a Read found damaged: each run not
// quarantined before is added to the skip set (so no Read returns or
// reports it again), counted, logged and written to the quarantine file.
func (s *Spool) quarantine(bad []Quarantined) {
	now := s.now()
	var fresh []Quarantined
	s.mu.Lock()
	for _, q := range bad {
		for _, r := range s.skip.subtract(q.First, q.Last) {
			part := q
			part.First, part.Last, part.Records, part.At = r.first, r.last, int(r.last-r.first+1), now
			s.skip.add(r.first, r.last)
			s.quarantined += uint64(part.Records)
			fresh = append(fresh, part)
		}
	}
	s.qEvents += uint64(len(fresh))
	s.qRecent = append(s.qRecent, fresh...)
	if over := len(s.qRecent) - quarantineKeep; over > 0 {
		s.qRecent = slices.Delete(s.qRecent, 0, over)
	}
	s.mu.Unlock()
	for _, q := range fresh {
		s.log.Error("spool: damaged records quarantined, not delivered", "dir", s.dir,
			"first_seq", q.First, "last_seq", q.Last, "records", q.Records, "reason", q.Reason, "file", QuarantinePath(s.dir))
	}
	if len(fresh) > 0 {
		if err := s.writeQuarantine(fresh); err != nil {
			s.log.Error("spool: writing the quarantine file failed; the records are skipped all the same", "file", QuarantinePath(s.dir), "err", err)
		}
	}
}

// quarantineLine is one line of the quarantine file.
type quarantineLine struct {
	First   uint64    `json:"first"`
	Last    uint64    `json:"last"`
	Records int       `json:"records"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	Key     string    `json:"key,omitempty"`   // hex
	Value   string    `json:"value,omitempty"` // hex: appended time, CRC-32C, data
}

func (s *Spool) writeQuarantine(qs []Quarantined) error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	path := QuarantinePath(s.dir)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size >= 2*quarantineFileMax {
		return fmt.Errorf("%s holds %d bytes already; not adding to it", path, size)
	}
	w := bufio.NewWriter(f)
	for _, q := range qs {
		l := quarantineLine{First: q.First, Last: q.Last, Records: q.Records, Reason: q.Reason, At: q.At}
		if size < quarantineFileMax {
			l.Key, l.Value = hex.EncodeToString(q.Key), hex.EncodeToString(q.Value)
		}
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			return err
		}
		size += int64(len(b))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Sync()
}

// loadQuarantine reads the runs quarantined before above the ack mark, so
// that Read skips them without reporting them again. A line that does not
// parse (a torn last line) is ignored.
func (s *Spool) loadQuarantine() {
	f, err := os.Open(QuarantinePath(s.dir))
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var l quarantineLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Last < l.First || l.Last <= s.acked {
			continue
		}
		s.skip.add(max(l.First, s.acked+1), l.Last)
	}
}

// seqSpans is a set of sequences as sorted, disjoint, non-adjacent runs.
type seqSpans []seqSpan

type seqSpan struct{ first, last uint64 }

func (r seqSpans) clone() seqSpans { return slices.Clone(r) }

func (r seqSpans) has(seq uint64) bool {
	i := sort.Search(len(r), func(i int) bool { return r[i].last >= seq })
	return i < len(r) && r[i].first <= seq
}

// add puts first..last in the set.
func (r *seqSpans) add(first, last uint64) {
	rs := *r
	// The runs that overlap or touch first..last merge with it.
	i := sort.Search(len(rs), func(i int) bool { return rs[i].last+1 >= first })
	j := i
	for j < len(rs) && rs[j].first <= last+1 {
		first, last = min(first, rs[j].first), max(last, rs[j].last)
		j++
	}
	*r = slices.Replace(rs, i, j, seqSpan{first, last})
}

// subtract returns the runs of first..last not in the set.
func (r seqSpans) subtract(first, last uint64) []seqSpan {
	var out []seqSpan
	for _, x := range r {
		if x.last < first {
			continue
		}
		if x.first > last {
			break
		}
		if x.first > first {
			out = append(out, seqSpan{first, x.first - 1})
		}
		if x.last >= last {
			return out
		}
		first = x.last + 1
	}
	return append(out, seqSpan{first, last})
}

// prune forgets the runs at or below upTo.
func (r *seqSpans) prune(upTo uint64) {
	rs := *r
	i := sort.Search(len(rs), func(i int) bool { return rs[i].last > upTo })
	*r = rs[i:]
}
