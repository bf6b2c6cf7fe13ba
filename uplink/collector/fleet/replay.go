package fleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/weirgw/weir/event"
)

// replayChunk is how many lines a rebuild takes under one hold of the
// store's lock, so live batches are not held up behind a whole sink.
const replayChunk = 512

// ReplayJSONL takes again the records of the JSONL sink at path from
// offset from up to end (its size when the store was wired to it: what
// comes after is observed live) into the store. source names the sink in
// the store's position. While it runs, the position the store keeps is
// the replay's, so a crash during a rebuild resumes it. A line that does
// not parse is counted and skipped.
func (s *Store) ReplayJSONL(ctx context.Context, source, path string, from, end int64) error {
	f, err := os.Open(path)
	if err != nil {
		return s.replayDone(fmt.Errorf("fleet: rebuild from %s: %w", path, err))
	}
	defer f.Close()
	if from > end || from < 0 || !atLineStart(f, from) {
		from = 0
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return s.replayDone(fmt.Errorf("fleet: rebuild from %s: %w", path, err))
	}
	s.mu.Lock()
	// Once done, the store holds the sink up to end at least; live writes
	// move the position on from there.
	if s.pos.Source != source {
		s.pos = Position{Source: source, Offset: end}
	} else if s.pos.Offset < end {
		s.pos.Offset = end
	}
	at := from
	s.replayAt = &at
	s.replay = Replay{Running: true, Done: from, Size: end}
	s.mu.Unlock()
	s.log.Info("fleet store: taking records from the sink", "path", path, "from", from, "to", end)

	r := bufio.NewReaderSize(f, 1<<20)
	off := from
	var (
		bad   uint64
		batch []*event.Event
		gwOf  []string
		lines int
	)
	apply := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i := 0; i < len(batch); {
			j := i + 1
			for j < len(batch) && gwOf[j] == gwOf[i] {
				j++
			}
			s.observeParsed(gwOf[i], batch[i:j])
			i = j
		}
		s.replay.Records += uint64(len(batch))
		s.replay.Done = off
		*s.replayAt = off
		batch, gwOf = batch[:0], gwOf[:0]
	}
	for off < end {
		if err := ctx.Err(); err != nil {
			apply()
			return s.replayDone(err)
		}
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: read it whole up to MaxLine.
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) && len(long) <= MaxLine {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			break // EOF: a torn line the sink cuts at its next open
		}
		off += int64(len(line))
		if off > end {
			break
		}
		gateway, ev, perr := ParseRecord(line)
		if perr != nil {
			bad++
			continue
		}
		batch, gwOf = append(batch, &ev), append(gwOf, gateway)
		if lines++; lines%replayChunk == 0 {
			apply()
		}
	}
	apply()
	if bad > 0 {
		s.log.Warn("fleet store: sink lines that do not parse were skipped", "path", path, "lines", bad)
	}
	s.log.Info("fleet store: rebuilt from the sink", "path", path, "records", s.Stats().Replay.Records)
	return s.replayDone(nil)
}

func (s *Store) replayDone(err error) error {
	s.mu.Lock()
	s.replayAt = nil
	s.replay.Running = false
	if err != nil {
		s.replay.Err = err.Error()
	}
	// States written during the rebuild say so; write them all again.
	for _, g := range s.gws {
		g.dirty = true
	}
	s.mu.Unlock()
	if err == nil {
		err = s.Flush()
	}
	return err
}

// atLineStart reports whether off starts a line of f.
func atLineStart(f *os.File, off int64) bool {
	if off == 0 {
		return true
	}
	var b [1]byte
	_, err := f.ReadAt(b[:], off-1)
	return err == nil && b[0] == '\n'
}
