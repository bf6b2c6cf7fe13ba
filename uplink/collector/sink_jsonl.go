package collector

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
)

// Entry is one record for a sink: a decoded event, or the raw bytes of a
// record that would not decode (kept, never dropped, so a SOC can see it).
type Entry struct {
	Seq       uint64
	Event     *event.Event
	Raw       []byte
	DecodeErr error
	// Record is the record's bytes as the gateway spooled them and Leaf
	// their leaf hash in its Merkle log; sinks store both beside the
	// record (sinkproof.go). Record may alias the batch: valid until
	// Write returns.
	Record []byte
	Leaf   merkle.Hash
	// StreamSeq is where a JetStream sink stored the record (0 elsewhere,
	// and for a record it held already): the live check's state is saved
	// with the position in the stream after which the rest of the log is.
	StreamSeq uint64
}

// JSONL is a sink that appends one JSON object per line to a file and
// fsyncs before Write returns. It also remembers which sequences it holds
// per gateway (a floor and ranges above it), which is the collector's
// dedupe state: the state file beside it is a hint that bounds the scan at
// open, and the sink file itself is the truth, so a crash between the two
// never duplicates a record. Several Servers may share one JSONL (a TLS
// and a DTLS listener, or the two endpoints of uplink.mode balance): Write
// checks and records what it holds under one lock.
type JSONL struct {
	path      string
	statePath string
	log       *slog.Logger
	maxRanges int

	mu        sync.Mutex
	f         *os.File
	w         *bufio.Writer
	off       int64
	sets      map[string]*seqSet
	lastState time.Time
	line      []byte
	observe   WriteObserver
}

// WriteObserver is told of the entries a JSONL sink has just written and
// fsynced (not those it held already) and the sink's size after them. It
// runs under the sink's lock, so it sees batches in the order of the
// file's lines; it must be quick and must not call the sink.
type WriteObserver func(gateway string, entries []Entry, end int64)

// Observe sets the observer of every write (the fleet page's store) and
// returns the sink's size then: the observer sees every write after it,
// none before.
func (s *JSONL) Observe(o WriteObserver) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observe = o
	return s.off
}

// Size returns the sink's size in bytes: everything before it is written
// and fsynced.
func (s *JSONL) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.off
}

// Path returns the sink file's path.
func (s *JSONL) Path() string { return s.path }

type jsonlState struct {
	Offset   int64              `json:"offset"`
	Gateways map[string]*seqSet `json:"gateways,omitempty"`
	Highest  map[string]uint64  `json:"highest,omitempty"` // written before the range sets; read as floors
}

// DefaultMaxRanges caps the ranges of one gateway's dedupe state. A real
// gateway leaves a hole only while a batch of another session is in
// flight (balance mode) or where its spool lost records; thousands of
// holes are a gateway writing sequences all over the space.
const DefaultMaxRanges = 4096

// CollectorStream is the gateway field of the collector's own records
// (a refused resume floor): no gateway id can start with '@'.
const CollectorStream = "@collector"

// OpenJSONL opens (creating) the sink file at path and recovers its dedupe
// state.
func OpenJSONL(path string, log *slog.Logger) (*JSONL, error) {
	return OpenJSONLRanges(path, log, DefaultMaxRanges)
}

// OpenJSONLRanges is OpenJSONL with another cap on each gateway's dedupe
// ranges.
func OpenJSONLRanges(path string, log *slog.Logger, maxRanges int) (*JSONL, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("collector: sink %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("collector: open sink %s: %w", path, err)
	}
	s := &JSONL{path: path, statePath: path + ".state", log: log, maxRanges: maxRanges, f: f, sets: map[string]*seqSet{}}
	if err := s.recover(); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(s.off, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("collector: sink %s: %w", path, err)
	}
	s.w = bufio.NewWriterSize(f, 256<<10)
	return s, nil
}

// recover loads the state hint, then scans the sink from the hinted offset
// to its end, and cuts off a torn last line (a write the crash interrupted:
// it was never acked, so the gateway will send it again).
func (s *JSONL) recover() error {
	var st jsonlState
	if b, err := os.ReadFile(s.statePath); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			s.log.Warn("sink state unreadable; rescanning the whole sink", "path", s.statePath, "err", err)
			st = jsonlState{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("collector: read sink state %s: %w", s.statePath, err)
	}
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("collector: sink %s: %w", s.path, err)
	}
	if st.Offset > fi.Size() || st.Offset < 0 {
		s.log.Warn("sink is shorter than its state says; rescanning the whole sink", "path", s.path)
		st = jsonlState{}
	}
	if st.Offset > 0 {
		// The scan resumes at the offset, and a torn line after it is cut
		// off: an offset inside a line would cut a line in two.
		var b [1]byte
		if _, err := s.f.ReadAt(b[:], st.Offset-1); err != nil || b[0] != '\n' {
			s.log.Warn("sink state's offset is not at a line boundary; rescanning the whole sink", "path", s.statePath, "offset", st.Offset)
			st = jsonlState{}
		}
	}
	for gw, set := range st.Gateways {
		if set == nil {
			continue
		}
		if err := set.check(); err != nil {
			s.log.Warn("sink state breaks its invariants; rescanning the whole sink", "path", s.statePath, "gateway", gw, "err", err)
			st = jsonlState{}
			break
		}
	}
	for gw, seq := range st.Highest {
		s.set(gw).raise(seq)
	}
	for gw, set := range st.Gateways {
		if set != nil {
			s.sets[gw] = set
		}
	}
	if _, err := s.f.Seek(st.Offset, io.SeekStart); err != nil {
		return fmt.Errorf("collector: sink %s: %w", s.path, err)
	}
	r := bufio.NewReaderSize(s.f, 1<<20)
	off := st.Offset
	var lineNo int
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			if len(line) > 0 {
				s.log.Warn("sink ends in a torn line; cutting it off", "path", s.path, "offset", off, "bytes", len(line))
				if err := s.f.Truncate(off); err != nil {
					return fmt.Errorf("collector: cut torn line in %s: %w", s.path, err)
				}
			}
			break
		}
		if err != nil {
			return fmt.Errorf("collector: scan sink %s: %w", s.path, err)
		}
		lineNo++
		var k struct {
			Seq     uint64 `json:"seq"`
			Gateway string `json:"gateway"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(line), &k); err != nil {
			return fmt.Errorf("collector: sink %s: line at offset %d: %w", s.path, off, err)
		}
		s.set(k.Gateway).add(k.Seq, s.maxRanges)
		off += int64(len(line))
	}
	s.off = off
	return nil
}

func (s *JSONL) set(gateway string) *seqSet {
	set := s.sets[gateway]
	if set == nil {
		set = &seqSet{}
		s.sets[gateway] = set
	}
	return set
}

// Highest returns the resume mark of gateway: every sequence up to it is
// held (0: none).
func (s *JSONL) Highest(gateway string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set(gateway).highest()
}

// Holds reports whether the sink holds seq of gateway.
func (s *JSONL) Holds(gateway string, seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set(gateway).holds(seq)
}

// Resume takes the floor a gateway declared in its Hello as far as the
// sink can check it (seqSet.claim) and returns the resume mark.
func (s *JSONL) Resume(gateway string, floor uint64) Resumed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set(gateway).claim(floor)
}

// Alert appends one of the collector's own records under CollectorStream,
// numbered after the last, and returns once it is on disk.
func (s *JSONL) Alert(ev *event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.set(CollectorStream)
	e := *ev
	e.Seq, e.Gateway = set.top()+1, CollectorStream
	_, err := s.writeLocked(CollectorStream, []Entry{{Seq: e.Seq, Event: &e}})
	return err
}

// Write appends the entries of gateway that it does not hold yet and
// returns once they are on disk.
func (s *JSONL) Write(gateway string, entries []Entry) (WriteResult, error) {
	if len(entries) == 0 {
		return WriteResult{}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(gateway, entries)
}

func (s *JSONL) writeLocked(gateway string, entries []Entry) (WriteResult, error) {
	var n int64
	set := s.set(gateway)
	var written []uint64
	var kept []Entry // for the observer
	for i := range entries {
		e := &entries[i]
		if set.holds(e.Seq) {
			continue // written by another session meanwhile
		}
		if e.Event != nil {
			s.line = e.Event.AppendJSON(s.line[:0])
		} else {
			var err error
			s.line, err = json.Marshal(undecodable{Seq: e.Seq, Gateway: gateway, Error: e.DecodeErr.Error(), Raw: e.Raw})
			if err != nil {
				return WriteResult{}, s.fail(fmt.Errorf("encode record %d of %s: %w", e.Seq, gateway, err))
			}
		}
		s.line = appendProof(s.line, e)
		s.line = append(s.line, '\n')
		if _, err := s.w.Write(s.line); err != nil {
			return WriteResult{}, s.fail(err)
		}
		n += int64(len(s.line))
		written = append(written, e.Seq)
		if s.observe != nil {
			kept = append(kept, *e)
		}
	}
	if len(written) == 0 {
		return WriteResult{}, nil
	}
	if err := s.w.Flush(); err != nil {
		return WriteResult{}, s.fail(err)
	}
	if err := s.f.Sync(); err != nil {
		return WriteResult{}, s.fail(err)
	}
	s.off += n
	res := WriteResult{Written: len(written)}
	for _, seq := range written {
		if set.add(seq, s.maxRanges) {
			res.Forgotten++
		}
	}
	if time.Since(s.lastState) > time.Second {
		s.saveState()
	}
	if s.observe != nil {
		s.observe(gateway, kept, s.off)
	}
	return res, nil
}

// fail rewinds the file to the last durable offset so a half-written batch
// leaves no partial line behind; the gateway resends it.
func (s *JSONL) fail(err error) error {
	s.w.Reset(s.f)
	if terr := s.f.Truncate(s.off); terr == nil {
		_, _ = s.f.Seek(s.off, io.SeekStart)
	}
	return fmt.Errorf("collector: write sink %s: %w", s.path, err)
}

func (s *JSONL) saveState() {
	s.lastState = time.Now()
	b, _ := json.Marshal(jsonlState{Offset: s.off, Gateways: s.sets})
	tmp := s.statePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		s.log.Warn("save sink state", "path", tmp, "err", err)
		return
	}
	if err := os.Rename(tmp, s.statePath); err != nil {
		s.log.Warn("save sink state", "path", s.statePath, "err", err)
	}
}

// Close saves the state hint and closes the file.
func (s *JSONL) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saveState()
	return s.f.Close()
}

type undecodable struct {
	Seq     uint64 `json:"seq"`
	Gateway string `json:"gateway"`
	Error   string `json:"decode_error"`
	Raw     []byte `json:"raw_base64"`
}
