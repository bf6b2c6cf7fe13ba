package hostlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/weirgw/weir/gateway/event"
	"github.com/weirgw/weir/spool"
)

// tailedFile is one followed file and its read position.
type tailedFile struct {
	t    *Tailer
	path string // absolute
	key  string // checkpoint source: checkpointPrefix + path
	f    *os.File
	id   fileID
	// off is the committed offset: every byte before it was emitted and
	// its checkpoint is durable (unless dirty).
	off int64
	// cont says the bytes at off continue an overlong line whose earlier
	// pieces were emitted.
	cont bool
	// dirty says off is not yet this file's checkpoint (a new file, or a
	// restart after truncation): the next Emit commits it, lines or none.
	dirty bool
	// pend holds the bytes from off on that were read but not emitted: a
	// partial last line, or lines of a batch the sink has not taken yet.
	pend  []byte
	size  int64 // at the last look
	lines uint64
}

func newTailedFile(t *Tailer, path string, f *os.File, id fileID, size int64) *tailedFile {
	return &tailedFile{t: t, path: path, key: checkpointPrefix + path, f: f, id: id, size: size, dirty: true}
}

// rename follows the file under a new name; its checkpoint moves there.
func (f *tailedFile) rename(path string) {
	f.path, f.key, f.dirty = path, checkpointPrefix+path, true
}

func (f *tailedFile) close() { f.f.Close() }

func (f *tailedFile) status() FileStatus {
	return FileStatus{Path: f.path, Offset: f.off, Size: f.size, Lines: f.lines}
}

// drain reads the file to its end from the open descriptor. When last,
// the file is about to be dropped and a partial last line goes out too.
func (f *tailedFile) drain(ctx context.Context, r *run, last bool) error {
	if _, err := f.read(ctx, r, 0, last); err != nil {
		return err
	}
	if last {
		f.t.log.Info("file rotated away or deleted; finished it", "path", f.path, "offset", f.off, "lines", f.lines)
	}
	return nil
}

// read emits the complete lines between off and the end of the file, in
// batches, at most budget of them (0: no limit); more says it stopped at
// the budget. final treats the end of the file as the end of its last
// line. An error is the sink's: nothing of the refused batch is consumed.
// Failures to read the file itself are logged and counted, not returned.
func (f *tailedFile) read(ctx context.Context, r *run, budget int, final bool) (more bool, err error) {
	fi, err := f.f.Stat()
	if err != nil {
		r.fail(f.path, fmt.Errorf("hostlog: stat %s: %w", f.path, err))
		return false, nil
	}
	f.size = fi.Size()
	if read := f.off + int64(len(f.pend)); f.size < read {
		f.t.log.Warn("file truncated; reading it from the beginning", "path", f.path, "offset", read, "size", f.size)
		f.off, f.pend, f.cont, f.dirty = 0, f.pend[:0], false, true
	}

	maxLine := f.t.cfg.MaxLineBytes
	// What a line's record costs beyond its text: the path and source in
	// its fields and the record's own fields, generously.
	b := lineBatch{lineCost: len(f.path) + len(f.t.cfg.Name) + 128}
	pos, cont := 0, f.cont
	eof := false
	for batches := 0; ; {
		pos, cont = b.take(f.pend, pos, cont, maxLine, final && eof)
		if b.full() || eof && (len(b.lines) > 0 || f.dirty) {
			if err := f.emit(ctx, r, &b, pos, cont); err != nil {
				return false, err
			}
			pos = 0
			if batches++; budget > 0 && batches >= budget {
				return true, nil
			}
			continue
		}
		if eof {
			return false, nil
		}
		n, err := f.fill()
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			r.fail(f.path, fmt.Errorf("hostlog: read %s at offset %d: %w", f.path, f.off+int64(len(f.pend)), err))
			return false, nil
		case n == 0:
			eof = true
		}
	}
}

// fill reads up to readChunk bytes onto pend.
func (f *tailedFile) fill() (int, error) {
	f.pend = slices.Grow(f.pend, readChunk)
	n, err := f.f.ReadAt(f.pend[len(f.pend):len(f.pend)+readChunk], f.off+int64(len(f.pend)))
	f.pend = f.pend[:len(f.pend)+n]
	return n, err
}

// emit hands the batch and the checkpoint after pend[:pos] to the sink
// and, once it took them, consumes pend[:pos].
func (f *tailedFile) emit(ctx context.Context, r *run, b *lineBatch, pos int, cont bool) error {
	defer b.reset()
	end := f.off + int64(pos)
	cp := spool.Checkpoint{
		Source:   f.key,
		Position: position{Dev: f.id.dev, Ino: f.id.ino, Off: end, Cont: cont}.marshal(),
	}
	evs := b.events(f)
	if err := r.sink.Emit(ctx, evs, []spool.Checkpoint{cp}); err != nil {
		return fmt.Errorf("hostlog: emit %d lines of %s at offset %d: %w", len(evs), f.path, f.off, err)
	}
	f.pend = f.pend[:copy(f.pend, f.pend[pos:])]
	f.off, f.cont, f.dirty = end, cont, false
	f.lines += uint64(len(evs))
	f.t.addLines(len(evs))
	return nil
}

// lineBatch collects the lines of one Emit as ranges of a file's pend.
type lineBatch struct {
	lines    []lineRange
	bytes    int // the records' estimated encoded size
	lineCost int // a record's size beyond its text
}

type lineRange struct {
	start, end int // in pend
	truncated  bool
}

func (b *lineBatch) full() bool {
	return len(b.lines) >= maxBatchLines || b.bytes >= maxBatchBytes
}

func (b *lineBatch) reset() {
	b.lines = b.lines[:0]
	b.bytes = 0
}

func (b *lineBatch) add(start, end int, truncated bool) {
	b.lines = append(b.lines, lineRange{start, end, truncated})
	b.bytes += end - start + b.lineCost
}

// take adds the lines of pend from pos on until the batch is full or
// pend holds no more complete line, and returns the position after the
// last one taken. A line is cut at '\n', less a trailing '\r'; one longer
// than maxLine goes in pieces of maxLine, all flagged truncated, and cont
// says a piece was taken and the rest of its line was not. A partial line
// is taken only once it is certain to be overlong (at least maxLine+2
// bytes without '\n', so not a maxLine line still waiting for "\r\n"), or
// at the end of a file being finished (atEOF).
func (b *lineBatch) take(pend []byte, pos int, cont bool, maxLine int, atEOF bool) (int, bool) {
	for !b.full() && pos < len(pend) {
		rest := pend[pos:]
		var line []byte
		var next int // after the line and its '\n'
		switch i := bytes.IndexByte(rest, '\n'); {
		case i >= 0:
			line, next = bytes.TrimSuffix(rest[:i], []byte{'\r'}), i+1
		case atEOF:
			line, next = rest, len(rest)
		case len(rest) >= maxLine+2:
			line = rest // overlong and incomplete: only a piece is taken
		default:
			return pos, cont
		}
		if len(line) > maxLine {
			b.add(pos, pos+maxLine, true)
			pos, cont = pos+maxLine, true
			continue
		}
		b.add(pos, pos+len(line), cont)
		pos, cont = pos+next, false
	}
	return pos, cont
}

// events makes the batch's records. Their messages share one string and
// their fields one array, so a batch costs a few allocations, not a few
// per line.
func (b *lineBatch) events(f *tailedFile) []event.Event {
	if len(b.lines) == 0 {
		return nil
	}
	lo, hi := b.lines[0].start, b.lines[len(b.lines)-1].end
	text := string(f.pend[lo:hi])
	nf := 0
	for _, l := range b.lines {
		nf += 2
		if l.truncated {
			nf++
		}
	}
	fields := make([]event.Field, 0, nf)
	evs := make([]event.Event, len(b.lines))
	for i, l := range b.lines {
		s := len(fields)
		fields = append(fields, event.Str("path", f.path), event.Uint("offset", uint64(f.off)+uint64(l.start)))
		if l.truncated {
			fields = append(fields, event.Bool("truncated", true))
		}
		evs[i] = event.Event{
			Source:   f.t.cfg.Name,
			Kind:     event.KindLog,
			Severity: event.SevInfo,
			Priority: f.t.priority,
			Message:  text[l.start-lo : l.end-lo],
			Fields:   fields[s:len(fields):len(fields)],
		}
	}
	return evs
}
