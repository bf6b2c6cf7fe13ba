package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// maxWindowBytes bounds the distance between the checkpoint (the start
// of the oldest open event) and the read position, and so the lines a
// checkpoint lists as already emitted.
const maxWindowBytes = 64 << 10

// run is the state of one call to Reader.Run; only its goroutine uses it.
type run struct {
	rd   *Reader
	sink Sink
	g    *Grouper
	b    *builder

	f    *os.File // nil: no file open
	name string   // the name f was opened under
	id   fileID
	size int64 // at the last look

	// buf holds the bytes read from bufOff on that are not yet fed to the
	// grouper: a partial last line.
	buf    []byte
	bufOff int64
	// fed is the offset after the last line fed to the grouper; cont says
	// the bytes there continue an overlong line.
	fed  int64
	cont bool
	// committed is the offset of the last durable checkpoint; dirty says
	// the current file's position is not yet durable at all.
	committed int64
	dirty     bool
	// skip are lines after the checkpoint that belong to events emitted
	// before it was taken (see position.Skip); tail are all lines at or
	// after committed that were emitted, for the next checkpoint's Skip.
	skip map[int64]bool
	tail []int64

	ready      []Group // completed events not yet in the batch
	batch      []event.Event
	batchLines []int64 // offsets of the batch's lines
	batchBytes int

	opened  bool   // a file was opened in this run (start_at applies only before)
	lastErr string // the last error logged, so a repeated one is logged once
}

func newRun(rd *Reader, sink Sink) *run {
	return &run{
		rd: rd, sink: sink,
		g: NewGrouper(rd.cfg.EventTimeout),
		b: newBuilder(rd.cfg.Name, rd.cfg.Raw == RawLines),
	}
}

func (r *run) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.rd.update(func(s *Status) { s.State, s.Pending = StateStopped, 0 })
}

// step opens the log if needed, reads what is new, finishes a rotated
// file and emits. busy says there is more to do at once.
func (r *run) step(ctx context.Context) (busy bool) {
	if r.f == nil {
		if err := r.open(); err != nil {
			r.fail(err, StateWaiting)
			return false
		}
	}
	if !r.read(ctx, false) {
		return false
	}
	if r.rotated() {
		// Finish the old file from its descriptor: what auditd wrote
		// before the rename is there, and nothing more will be.
		if !r.read(ctx, true) {
			return false
		}
		r.g.Flush()
		if !r.drain(ctx) || !r.emit(ctx) {
			return false
		}
		r.rd.log.Info("log rotated; finished the old file", "file", r.name, "offset", r.fed)
		if err := r.next(); err != nil {
			r.fail(err, StateWaiting)
			return false
		}
		return true
	}
	r.g.Expire(time.Now())
	if !r.drain(ctx) {
		return false
	}
	if len(r.batch) > 0 || r.dirty {
		r.emit(ctx)
	}
	r.publish()
	return false
}

// open opens the log at its checkpoint: in Path, in a rotated Path.N it
// was renamed to while Weir was not running, or (no checkpoint) at
// start_at.
func (r *run) open() error {
	cp, err := r.rd.cps.Checkpoint(r.rd.key)
	if err != nil {
		return fmt.Errorf("audit: checkpoint of %s: %w", r.rd.abs, err)
	}
	var pos position
	havePos := len(cp) > 0
	if havePos {
		if pos, err = parsePosition(cp); err != nil {
			// Starting over may repeat events; guessing may lose them.
			r.rd.log.Warn("unreadable checkpoint; reading the log from the beginning", "err", err)
			havePos = false
		}
	}
	if havePos {
		if f, name, ok := r.find(pos.id()); ok {
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return fmt.Errorf("audit: stat %s: %w", name, err)
			}
			if pos.Off > fi.Size() {
				r.rd.log.Warn("log shorter than its checkpoint (truncated); reading it from the beginning",
					"file", name, "offset", pos.Off, "size", fi.Size())
				return r.use(f, name, 0, false, nil, true)
			}
			r.rd.log.Info("resuming the log", "file", name, "offset", pos.Off)
			skip := make([]int64, len(pos.Skip))
			for i, s := range pos.Skip {
				skip[i] = pos.Off + s
			}
			return r.use(f, name, pos.Off, pos.Cont, skip, false)
		}
	}
	f, err := os.Open(r.rd.abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: %s does not exist (yet): is auditd installed and running? waiting for it", r.rd.abs)
		}
		return fmt.Errorf("audit: open %s: %w", r.rd.abs, err)
	}
	var off int64
	switch {
	case havePos:
		r.rd.log.Warn("the file of the checkpoint is not the log nor a rotated one (rotated away or deleted); reading the log from the beginning")
	case r.rd.cfg.StartAt == StartAtEnd && !r.opened:
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("audit: stat %s: %w", r.rd.abs, err)
		}
		off = fi.Size()
		r.rd.log.Info("no checkpoint; reading the log from its end", "offset", off)
	default:
		r.rd.log.Info("no checkpoint; reading the log from the beginning")
	}
	return r.use(f, r.rd.abs, off, false, nil, true)
}

// find looks for the file id names at Path, then Path.1 to Path.9.
func (r *run) find(id fileID) (*os.File, string, bool) {
	for i := 0; i <= maxRotated; i++ {
		name := r.rotatedName(i)
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && id.matches(f, fi) {
			return f, name, true
		}
		f.Close()
	}
	return nil, "", false
}

func (r *run) rotatedName(i int) string {
	if i == 0 {
		return r.rd.abs
	}
	return r.rd.abs + "." + strconv.Itoa(i)
}

// use makes f, opened under name, the file read, from off.
func (r *run) use(f *os.File, name string, off int64, cont bool, skip []int64, dirty bool) error {
	id, size, err := identify(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: read %s: %w", name, err)
	}
	if r.f != nil {
		r.f.Close()
	}
	r.f, r.name, r.id, r.size = f, name, id, size
	r.buf, r.bufOff, r.fed, r.cont = r.buf[:0], off, off, cont
	r.committed, r.dirty = off, dirty
	r.skip, r.tail = nil, skip
	if len(skip) > 0 {
		r.skip = make(map[int64]bool, len(skip))
		for _, s := range skip {
			r.skip[s] = true
		}
	}
	r.opened = true
	r.b.path = name
	r.lastErr = ""
	r.rd.update(func(s *Status) {
		s.State, s.File, s.Offset, s.Size = StateReading, name, off, size
	})
	return nil
}

// rotated says whether Path now names another file than the one read.
// A missing Path is not a rotation: auditd is between the rename and
// creating the new file, or the log was deleted and is recreated later.
func (r *run) rotated() bool {
	fi, err := os.Stat(r.rd.abs)
	if err != nil {
		return false
	}
	if cur := idOf(fi); cur.known && r.id.known {
		return cur.dev != r.id.dev || cur.ino != r.id.ino
	}
	f, err := os.Open(r.rd.abs)
	if err != nil {
		return false
	}
	defer f.Close()
	r.refreshHead()
	return !r.id.matches(f, fi)
}

// next opens the file that followed the finished one: the younger
// rotated file if auditd rotated more than once meanwhile, else Path.
func (r *run) next() error {
	from := r.name
	r.f.Close()
	r.f = nil
	name := r.rd.abs
	for i := 1; i <= maxRotated; i++ {
		f, err := os.Open(r.rotatedName(i))
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		match := err == nil && r.id.matches(f, fi)
		f.Close()
		if match {
			name = r.rotatedName(i - 1)
			break
		}
	}
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("audit: open %s after finishing %s: %w", name, from, err)
	}
	r.rd.log.Info("reading the next log file from the beginning", "file", name)
	return r.use(f, name, 0, false, nil, true)
}

// read feeds the lines from fed to the end of the file to the grouper
// and emits full batches. final treats the end of the file as the end of
// its last line (the file is being finished). false means ctx is done.
func (r *run) read(ctx context.Context, final bool) bool {
	if fi, err := r.f.Stat(); err == nil {
		r.size = fi.Size()
		// Truncated, or truncated and written past the old size since the
		// last look: its first bytes changed.
		if r.size < r.bufOff+int64(len(r.buf)) || !r.id.matches(r.f, fi) {
			r.rd.log.Warn("log truncated; reading it from the beginning", "file", r.name, "offset", r.fed, "size", r.size)
			// What was read of the old contents goes out with its own
			// position first.
			r.g.Flush()
			if !r.drain(ctx) || !r.emit(ctx) {
				return false
			}
			r.buf, r.bufOff, r.fed, r.cont, r.skip, r.tail, r.dirty = r.buf[:0], 0, 0, false, nil, nil, true
			r.committed = 0
			if id, _, err := identify(r.f); err == nil {
				r.id = id
			}
		}
	}
	eof := false
	for {
		if !r.cut(ctx, final && eof) {
			return false
		}
		if eof {
			return true
		}
		r.buf = slices.Grow(r.buf, readChunk)
		end := r.bufOff + int64(len(r.buf))
		n, err := r.f.ReadAt(r.buf[len(r.buf):len(r.buf)+readChunk], end)
		r.buf = r.buf[:len(r.buf)+n]
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			r.fail(fmt.Errorf("audit: read %s at offset %d: %w", r.name, end, err), StateReading)
			return true
		case n == 0:
			eof = true
		}
	}
}

// cut feeds the complete lines of buf to the grouper, emitting batches
// as they fill. atEOF takes a last line without its newline too.
func (r *run) cut(ctx context.Context, atEOF bool) bool {
	maxLine := r.rd.cfg.MaxLineBytes
	now := time.Now()
	p := 0
	defer func() { r.consume(p) }()
	for p < len(r.buf) {
		rest := r.buf[p:]
		var line []byte
		next, piece := 0, r.cont
		switch i := bytes.IndexByte(rest, '\n'); {
		case i >= 0 && i <= maxLine:
			line, next = rest[:i], i+1
			r.cont = false
		case i > maxLine || i < 0 && len(rest) > maxLine:
			line, next, piece = rest[:maxLine], maxLine, true
			r.cont = true
		case atEOF:
			line, next = rest, len(rest)
			r.cont = false
		default:
			return true
		}
		r.feed(line, r.bufOff+int64(p), piece, now)
		p += next
		r.fed = r.bufOff + int64(p)
		// Bound what a checkpoint lists in Skip: an event that began
		// this far back is not going to see more records.
		for o, ok := r.g.OldestOffset(); ok && r.fed-o > maxWindowBytes; o, ok = r.g.OldestOffset() {
			r.g.CloseOldest()
		}
		if !r.drain(ctx) {
			return false
		}
	}
	return true
}

// consume drops buf[:n], which was fed.
func (r *run) consume(n int) {
	r.buf = r.buf[:copy(r.buf, r.buf[n:])]
	r.bufOff += int64(n)
}

// feed parses one line and hands it to the grouper.
func (r *run) feed(line []byte, off int64, piece bool, now time.Time) {
	if r.skip[off] {
		delete(r.skip, off) // its event was emitted before the checkpoint
		return
	}
	if len(line) == 0 && !piece {
		return
	}
	s := string(line)
	var rec Record
	if piece {
		rec = Record{Line: s, Err: errLineTooLong}
	} else {
		var err error
		if rec, err = ParseLine(s); err != nil {
			rec.Err = err
		}
	}
	rec.Offset = off
	if rec.Err != nil {
		msg := fmt.Sprintf("audit: %s offset %d: %v", r.name, off, rec.Err)
		r.rd.log.Debug("malformed line; emitted as it is, flagged parse_error", "err", msg)
		r.rd.update(func(s *Status) { s.ParseErrors++; s.LastParseError = msg })
	}
	r.rd.update(func(s *Status) { s.Records++ })
	r.g.Add(rec, now)
}

// drain builds the records of the completed events and emits each batch
// that is full. false means ctx is done.
func (r *run) drain(ctx context.Context) bool {
	r.ready = append(r.ready, r.g.Take()...)
	for len(r.ready) > 0 {
		grp := r.ready[0]
		r.ready[0] = Group{}
		r.ready = r.ready[1:]
		ev := r.b.event(grp)
		r.batch = append(r.batch, ev)
		for i := range grp.Records {
			r.batchLines = append(r.batchLines, grp.Records[i].Offset)
		}
		r.batchBytes += eventBytes(&ev)
		if len(r.batch) >= r.rd.batchEvents || r.batchBytes >= maxBatchBytes {
			if !r.emit(ctx) {
				return false
			}
		}
	}
	r.ready = r.ready[:0]
	return true
}

// eventBytes estimates what a record adds to a spool append.
func eventBytes(ev *event.Event) int {
	n := 64 + len(ev.Message) + len(ev.Source)
	for i := range ev.Fields {
		n += 4 + len(ev.Fields[i].Key) + len(ev.Fields[i].Value.Str) + 10
	}
	return n
}

// emit hands the batch to the sink with the position it leaves, retrying
// until the sink takes it or ctx is done (false). Nothing read after the
// batch is lost meanwhile: reading waits.
func (r *run) emit(ctx context.Context) bool {
	off, cont := r.fed, r.cont
	if o, ok := r.g.OldestOffset(); ok && o < off {
		off, cont = o, false
	}
	for _, grp := range r.ready { // complete, not yet in a batch
		for i := range grp.Records {
			if o := grp.Records[i].Offset; o < off {
				off, cont = o, false
			}
		}
	}
	var skip []int64
	for _, l := range r.tail {
		if l > off {
			skip = append(skip, l)
		}
	}
	for _, l := range r.batchLines {
		if l > off {
			skip = append(skip, l)
		}
	}
	slices.Sort(skip)
	rel := make([]int64, len(skip))
	for i, s := range skip {
		rel[i] = s - off
	}
	r.refreshHead()
	cp := spool.Checkpoint{Source: r.rd.key, Position: position{
		Dev: r.id.dev, Ino: r.id.ino, HeadLen: r.id.headLen, HeadSum: r.id.headSum,
		Off: off, Cont: cont, Skip: rel,
	}.marshal()}
	for failures := 1; ; failures++ {
		err := r.sink.Emit(ctx, r.batch, []spool.Checkpoint{cp})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		r.fail(fmt.Errorf("audit: emit %d events of %s at offset %d: %w", len(r.batch), r.name, r.committed, err), StateReading)
		if !sleep(ctx, retryWait(r.rd.cfg.PollInterval, failures)) {
			return false
		}
	}
	n := len(r.batch)
	clear(r.batch) // let the records go; the array is reused
	r.batch, r.batchLines, r.batchBytes = r.batch[:0], r.batchLines[:0], 0
	r.committed, r.tail, r.dirty = off, skip, false
	r.rd.update(func(s *Status) {
		s.Events += uint64(n)
		s.Offset = off
	})
	return true
}

// refreshHead hashes more of the file's start while it is shorter than
// headBytes, so the identity grows with the file.
func (r *run) refreshHead() {
	if r.id.headLen >= headBytes || r.f == nil {
		return
	}
	if n, sum, err := head(r.f, headBytes); err == nil && n > r.id.headLen {
		r.id.headLen, r.id.headSum = n, sum
	}
}

// fail shows err in Status and, unless it repeats the last one (a
// missing log is retried every poll), logs and counts it.
func (r *run) fail(err error, state string) {
	msg := err.Error()
	repeat := msg == r.lastErr
	r.lastErr = msg
	r.rd.update(func(s *Status) {
		s.State, s.LastError = state, msg
		if !repeat {
			s.Errors++
		}
	})
	if !repeat {
		r.rd.log.Warn("audit log input", "err", msg)
	}
}

func (r *run) publish() {
	r.rd.update(func(s *Status) {
		s.Size, s.Pending = r.size, r.g.Pending()
		if r.f != nil {
			s.State = StateReading
		}
	})
}
