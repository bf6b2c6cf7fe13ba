package hostlog

import (
	"bytes"
	"regexp"
	"time"
)

// splitter cuts a file's bytes into records: lines, pieces of overlong
// lines, and (with multiline joining) events of several lines. It works on
// the file's pend buffer, whose first byte is the committed offset, and
// keeps its place between reads, so bytes are looked at once.
type splitter struct {
	maxLine  int
	start    *regexp.Regexp // nil: every line is a record
	maxLines int
	maxBytes int
	timeout  time.Duration

	// scan is the first byte of pend not yet looked at.
	scan int
	// part > 0 says the bytes at scan continue an overlong line whose
	// pieces 0..part-1 were taken.
	part int
	// split says the next event continues one cut by a limit.
	split bool
	ev    openEvent
}

// openEvent is a multiline event still taking lines: pend[start:end].
type openEvent struct {
	open       bool
	start, end int
	lines      int
	continued  bool
	last       time.Time // when its last line was taken
}

func newSplitter(cfg FileConfig, start *regexp.Regexp) splitter {
	return splitter{
		maxLine:  cfg.MaxLineBytes,
		start:    start,
		maxLines: cfg.Multiline.MaxLines,
		// One line is never cut for max_bytes, only for max_line_bytes.
		maxBytes: max(cfg.Multiline.MaxBytes, cfg.MaxLineBytes),
		timeout:  cfg.Multiline.Timeout,
	}
}

// reset forgets everything looked at: pend's first byte is a committed
// position whose state is part and split.
func (s *splitter) reset(part int, split bool) {
	s.scan, s.part, s.split, s.ev = 0, part, split, openEvent{}
}

// commit is where the bytes taken so far end: the checkpoint's position in
// pend and its state. It never passes the first byte of an open event, so
// a restart reads the whole event again and nothing is lost or repeated.
func (s *splitter) commit() (pos, part int, split bool) {
	if s.ev.open {
		return s.ev.start, 0, s.ev.continued
	}
	return s.scan, s.part, s.split
}

// shift follows pend losing its first n bytes (n at most commit's pos).
func (s *splitter) shift(n int) {
	s.scan -= n
	if s.ev.open {
		s.ev.start -= n
		s.ev.end -= n
	}
}

// deadline is when the open event times out; zero when none is open.
func (s *splitter) deadline() time.Time {
	if !s.ev.open {
		return time.Time{}
	}
	return s.ev.last.Add(s.timeout)
}

// take adds records from pend to b until b is full or pend holds no more
// complete line. A line ends at '\n', less one trailing '\r'. One longer
// than maxLine goes in pieces of maxLine, all flagged truncated and
// numbered; a partial line is cut only once it is certain to be overlong
// (at least maxLine+2 bytes without '\n', so not a maxLine line waiting
// for "\r\n"), or at the end of a file being finished (atEOF). An overlong
// line ends an open multiline event first: its pieces are records of
// their own.
func (s *splitter) take(b *lineBatch, pend []byte, now time.Time, atEOF bool) {
	for !b.full() && s.scan < len(pend) {
		rest := pend[s.scan:]
		var le, next int // the line's length and where the next begins
		switch i := bytes.IndexByte(rest, '\n'); {
		case i >= 0:
			le, next = i, i+1
			if le > 0 && rest[le-1] == '\r' {
				le--
			}
		case atEOF:
			le, next = len(rest), len(rest)
		case len(rest) >= s.maxLine+2:
			le, next = len(rest), -1 // overlong and incomplete: only a piece is taken
		default:
			return
		}
		if s.part > 0 || le > s.maxLine {
			if s.ev.open {
				if !s.flush(b) {
					return
				}
				continue
			}
			if le > s.maxLine {
				if !b.offer(record{start: s.scan, end: s.scan + s.maxLine, truncated: true, part: s.part, lines: 1}) {
					return
				}
				s.scan += s.maxLine
				s.part++
				continue
			}
			if !b.offer(record{start: s.scan, end: s.scan + le, truncated: true, part: s.part, lines: 1}) {
				return
			}
			s.scan += next
			s.part = 0
			continue
		}
		if s.start == nil {
			if !b.offer(record{start: s.scan, end: s.scan + le, lines: 1}) {
				return
			}
			s.scan += next
			continue
		}
		if s.ev.open {
			if s.start.Match(rest[:le]) {
				if !s.flush(b) { // the line starts the next event
					return
				}
				continue
			}
			if s.ev.lines >= s.maxLines || s.scan+le-s.ev.start > s.maxBytes {
				if !s.flush(b) {
					return
				}
				s.split = true
				continue
			}
			s.ev.end, s.ev.last = s.scan+le, now
			s.ev.lines++
			s.scan += next
			continue
		}
		s.ev = openEvent{open: true, start: s.scan, end: s.scan + le, lines: 1, continued: s.split, last: now}
		s.split = false
		s.scan += next
	}
}

// expire ends the open event when the file is finished or when no line
// came for the timeout; the caller has read everything the file holds.
func (s *splitter) expire(b *lineBatch, now time.Time, final bool) {
	if s.ev.open && (final || !now.Before(s.deadline())) {
		s.flush(b)
	}
}

// flush ends the open event; false when the batch has no room for it.
func (s *splitter) flush(b *lineBatch) bool {
	if !b.offer(record{start: s.ev.start, end: s.ev.end, lines: s.ev.lines, continued: s.ev.continued}) {
		return false
	}
	s.ev = openEvent{}
	return true
}

// lineBatch collects the records of one Emit as ranges of a file's pend.
// It takes records while their estimated encoded size stays within
// maxBatchBytes (the first always: at most MaxMaxLineBytes and its cost).
type lineBatch struct {
	recs     []record
	bytes    int  // the records' estimated encoded size
	lineCost int  // a record's size beyond its text
	closed   bool // a record did not fit
}

// record is one record of a batch: pend[start:end] and how it was cut.
type record struct {
	start, end int
	truncated  bool // a piece of an overlong line
	part       int  // the piece's index, from 0
	lines      int  // lines joined
	continued  bool // a multiline event going on from one cut by a limit
}

func (b *lineBatch) full() bool {
	return b.closed || len(b.recs) >= maxBatchLines
}

func (b *lineBatch) reset() {
	b.recs = b.recs[:0]
	b.bytes = 0
	b.closed = false
}

// offer adds r if the batch has room for it.
func (b *lineBatch) offer(r record) bool {
	cost := r.end - r.start + b.lineCost
	if b.full() || len(b.recs) > 0 && b.bytes+cost > maxBatchBytes {
		b.closed = true
		return false
	}
	b.recs = append(b.recs, r)
	b.bytes += cost
	return true
}
