package hostlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// tailedFile is one followed file and its read position.
type tailedFile struct {
	t    *Tailer
	path string // absolute
	key  string // checkpoint source: checkpointPrefix + path
	base string // the globBase path lies under: where openLog starts
	// f is the open descriptor; nil while closed for close_inactive.
	f  *os.File
	id fileID
	fp fingerprint // of the file's start, as far as it was read
	// off is the committed offset: every byte before it was emitted and
	// its checkpoint is durable (unless dirty).
	off int64
	// part and split are the splitter's state at off (see position).
	part  int
	split bool
	// dirty says off is not yet this file's checkpoint (a new file, a
	// restart after truncation, a rename): the next Emit commits it,
	// records or none.
	dirty bool
	// moved says the file follows a new name, or was resumed from the
	// checkpoint of another path: its key must be committed before any
	// other (see run.commitMoved).
	moved bool
	// pend holds the bytes from off on that were read but not emitted: a
	// partial last line, an open multiline event, or records of a batch
	// the sink has not taken yet.
	pend   []byte
	cut    splitter
	size   int64 // at the last look
	lines  uint64
	active time.Time // when it last grew or was opened
}

func newTailedFile(t *Tailer, path, base string, f *os.File, id fileID, size int64, now time.Time) *tailedFile {
	return &tailedFile{
		t: t, path: path, key: checkpointPrefix + path, base: base, f: f, id: id, size: size, dirty: true,
		cut: newSplitter(t.cfg, t.start), active: now,
	}
}

// rename follows the file under a new name; its checkpoint moves there.
func (f *tailedFile) rename(path, base string) {
	f.path, f.key, f.base, f.dirty = path, checkpointPrefix+path, base, true
}

// close releases the descriptor; the state stays.
func (f *tailedFile) close() {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
}

func (f *tailedFile) status() FileStatus {
	return FileStatus{Path: f.path, Offset: f.off, Size: f.size, Lines: f.lines, Open: f.f != nil}
}

// position is what the checkpoint after pend[:pos] says.
func (f *tailedFile) position(pos, part int, split bool) position {
	return position{
		Dev: f.id.dev, Ino: f.id.ino, Off: f.off + int64(pos),
		Cont: part > 0, Part: part, Split: split,
		FpLen: f.fp.n, Fp: f.fp.sum,
	}
}

// restart reads the file again from its first byte: it was truncated, or
// its start changed under the same inode.
func (f *tailedFile) restart() {
	f.off, f.pend, f.part, f.split, f.dirty, f.fp = 0, f.pend[:0], 0, false, true, fingerprint{}
	f.cut.reset(0, false)
}

// drain reads the file to its end from the open descriptor. When last,
// the file is about to be dropped and a partial last line (or an open
// multiline event) goes out too.
func (f *tailedFile) drain(ctx context.Context, r *run, last bool) error {
	if _, err := f.read(ctx, r, 0, last); err != nil {
		return err
	}
	if last {
		f.t.log.Info("file rotated away or deleted; finished it", "path", f.path, "offset", f.off, "lines", f.lines)
	}
	return nil
}

// read emits the records between off and the end of the file, in
// batches, at most budget of them (0: no limit); more says it stopped at
// the budget. final treats the end of the file as the end of its last
// line. An error is the sink's: nothing of the refused batch is consumed.
// Failures to read the file itself are logged and counted, not returned.
// A closed file (close_inactive) has nothing to read, but what it holds in
// pend still goes out when final.
func (f *tailedFile) read(ctx context.Context, r *run, budget int, final bool) (more bool, err error) {
	// The reads go to the run's scratch buffer; the file keeps only what
	// is left over (a partial line, an open event), so a thousand idle
	// files do not hold a read buffer each.
	own := f.pend
	f.pend = append(r.scratch[:0], own...)
	defer func() {
		r.scratch = f.pend[:0]
		f.pend = append(own[:0], f.pend...)
		if cap(f.pend) > 2*len(f.pend)+4096 {
			f.pend = slices.Clip(slices.Clone(f.pend))
		}
	}()
	now := time.Now()
	if f.f != nil {
		if err := f.check(now); err != nil {
			r.fail(f.path, err)
			return false, nil
		}
	}
	b := lineBatch{lineCost: len(f.path) + len(f.t.cfg.Name) + r.recordCost}
	eof := f.f == nil
	for batches := 0; ; {
		f.cut.take(&b, f.pend, now, final && eof)
		if eof {
			f.cut.expire(&b, now, final)
		}
		if b.full() || eof && (len(b.recs) > 0 || f.dirty) {
			if err := f.emit(ctx, r, &b); err != nil {
				return false, err
			}
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

// check looks at the open file's size and start: a file shorter than what
// was read, or whose first bytes changed (copytruncate followed by new
// writes, or an inode reused), is read again from its start.
func (f *tailedFile) check(now time.Time) error {
	fi, err := f.f.Stat()
	if err != nil {
		return fmt.Errorf("hostlog: stat %s: %w", f.path, err)
	}
	size := fi.Size()
	read := f.off + int64(len(f.pend))
	switch {
	case size < read:
		f.t.log.Warn("file truncated; reading it from the beginning", "path", f.path, "offset", read, "size", size)
		f.restart()
	case size != f.size && f.fp.n > 0:
		ok, err := f.fp.matches(f.f, size)
		if err != nil {
			return fmt.Errorf("hostlog: fingerprint of %s: %w", f.path, err)
		}
		if !ok {
			f.t.log.Warn("file's first bytes changed (truncated and rewritten); reading it from the beginning",
				"path", f.path, "offset", read, "size", size)
			f.restart()
		}
	}
	if size != f.size {
		f.active = now
	}
	f.size = size
	return nil
}

// fill reads up to readChunk bytes onto pend.
func (f *tailedFile) fill() (int, error) {
	f.pend = slices.Grow(f.pend, readChunk)
	n, err := f.f.ReadAt(f.pend[len(f.pend):len(f.pend)+readChunk], f.off+int64(len(f.pend)))
	f.pend = f.pend[:len(f.pend)+n]
	return n, err
}

// refingerprint extends the fingerprint while the file is shorter than
// fingerprintBytes; a failure keeps the old one, which still matches.
func (f *tailedFile) refingerprint() {
	if f.f == nil || f.fp.complete() || f.size <= int64(f.fp.n) {
		return
	}
	if fp, err := takeFingerprint(f.f, f.size); err == nil {
		f.fp = fp
	}
}

// emit hands the batch and the checkpoint after it to the sink and, once
// it took them, consumes what the checkpoint covers. When the sink
// refuses, the splitter starts over at the committed position.
func (f *tailedFile) emit(ctx context.Context, r *run, b *lineBatch) error {
	defer b.reset()
	if len(b.recs) > 0 && f.f != nil && f.fp.n > 0 {
		// Truncated and written again between check and the reads:
		// the bytes read may be the new file's. Checked after reading,
		// so what was read came from the file the fingerprint names.
		if ok, err := f.fp.matches(f.f, f.size); err == nil && !ok {
			f.t.log.Warn("file's first bytes changed while it was read; reading it from the beginning", "path", f.path)
			f.restart()
			return nil
		}
	}
	f.refingerprint()
	pos, part, split := f.cut.commit()
	p := f.position(pos, part, split)
	cp := spool.Checkpoint{Source: f.key, Position: p.marshal()}
	evs := b.events(f, r)
	if err := r.sink.Emit(ctx, evs, []spool.Checkpoint{cp}); err != nil {
		f.cut.reset(f.part, f.split)
		return fmt.Errorf("hostlog: emit %d lines of %s at offset %d: %w", len(evs), f.path, f.off, err)
	}
	r.committed(f.key, p)
	f.committed(p, pos)
	f.lines += uint64(len(evs))
	f.t.addLines(len(evs))
	return nil
}

// committed consumes pend[:pos], now covered by the durable position p.
func (f *tailedFile) committed(p position, pos int) {
	f.pend = f.pend[:copy(f.pend, f.pend[pos:])]
	f.cut.shift(pos)
	f.off, f.part, f.split, f.dirty, f.moved = p.Off, p.part(), p.Split, false, false
}

// events makes the batch's records. Their messages share one string, and
// the records and their fields live in arrays the run reuses (the Sink
// keeps none of them), so a batch costs one allocation, not a few per
// line.
func (b *lineBatch) events(f *tailedFile, r *run) []event.Event {
	if len(b.recs) == 0 {
		return nil
	}
	lo, hi := b.recs[0].start, b.recs[0].end
	nf := 0
	for _, rec := range b.recs {
		lo, hi = min(lo, rec.start), max(hi, rec.end)
		nf += 4 // path, offset, fingerprint; invalid_utf8 perhaps
		if rec.truncated {
			nf += 2
		}
		if rec.lines > 1 {
			nf++
		}
		if rec.continued {
			nf++
		}
	}
	text := string(f.pend[lo:hi])
	fp := fingerprintField(f.id, f.fp)
	fields := slices.Grow(r.fields[:0], nf)
	evs := slices.Grow(r.events[:0], len(b.recs))[:len(b.recs)]
	defer func() { r.fields, r.events = fields[:0], evs[:0] }()
	for i, rec := range b.recs {
		s := len(fields)
		msg := text[rec.start-lo : rec.end-lo]
		fields = append(fields, event.Str("path", f.path), event.Uint("offset", uint64(f.off)+uint64(rec.start)), fp)
		if rec.truncated {
			fields = append(fields, event.Bool("truncated", true), event.Uint("part", uint64(rec.part)))
		}
		if rec.lines > 1 {
			fields = append(fields, event.Uint("lines", uint64(rec.lines)))
		}
		if rec.continued {
			fields = append(fields, event.Bool("continued", true))
		}
		if !utf8.ValidString(msg) {
			// The message keeps the bytes as they are; the flag tells a
			// consumer not to take it for text.
			fields = append(fields, event.Bool("invalid_utf8", true))
		}
		evs[i] = event.Event{
			Source:   f.t.cfg.Name,
			Kind:     event.KindLog,
			Severity: event.SevInfo,
			Priority: f.t.priority,
			Message:  msg,
			Fields:   fields[s:len(fields):len(fields)],
		}
	}
	return evs
}

// fingerprintField names the file a record came from independently of its
// path: "dev:inode:crc64 of its first bytes". For a file shorter than
// fingerprintBytes the hash covers the bytes it held at the time.
func fingerprintField(id fileID, fp fingerprint) event.Field {
	b := make([]byte, 0, 64)
	b = strconv.AppendUint(b, id.dev, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, id.ino, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, fp.sum, 16)
	return event.Str("fingerprint", string(b))
}
