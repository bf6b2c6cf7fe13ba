package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// ErrClosed is returned by calls on a closed spool.
var ErrClosed = errors.New("spool: closed")

// Options configure Open.
type Options struct {
	Dir    string       // badger directory; created 0700 if missing
	Config Config       // zero value: DefaultConfig()
	Logger *slog.Logger // nil = slog.Default(); Badger's own messages are passed on at warning and error level only
	// Now is the clock for stamps and expiry; nil = time.Now (tests).
	Now func() time.Time
	// segmentBytes overrides the segment size (tests).
	segmentBytes int64
}

// Entry is one record to append.
type Entry struct {
	Class Class
	Data  []byte
}

// Checkpoint is a source's read position, committed with the records it
// produced. With Delete set it removes the source's checkpoint instead, in
// the same transaction (Position is ignored): Checkpoint then returns nil
// and Checkpoints skips it, as if none had ever been committed. Deleting
// one that does not exist is harmless. When an Append names a source more
// than once, the last of its checkpoints wins.
type Checkpoint struct {
	Source   string // e.g. "file:/var/log/app.log"
	Position []byte // opaque to the spool
	Delete   bool   // remove the source's checkpoint
}

// Record is one spooled record.
type Record struct {
	Seq      uint64
	Class    Class
	Appended time.Time // when Append stored it
	Data     []byte    // the caller may keep it; it does not alias Badger's memory
}

// ClassStats are one class's figures.
type ClassStats struct {
	Records int64 `json:"records"` // held, unacknowledged
	Bytes   int64 `json:"bytes"`
	Evicted int64 `json:"evicted"` // removed unacknowledged to make room for critical records
	Expired int64 `json:"expired"` // removed unacknowledged for exceeding max_age
	Refused int64 `json:"refused"` // records whose Append had to wait for room
}

// Stats are the spool's size and age figures.
type Stats struct {
	NextSeq   uint64                 `json:"next_seq"`    // the sequence the next appended record will get
	AckedUpTo uint64                 `json:"acked_up_to"` // highest acknowledged sequence (0 if none)
	Records   int64                  `json:"records"`     // unacknowledged records held
	Bytes     int64                  `json:"bytes"`       // bytes of unacknowledged record data held
	Used      int64                  `json:"used"`        // what counts against MaxBytes
	MaxBytes  int64                  `json:"max_bytes"`
	Oldest    time.Time              `json:"oldest,omitzero"` // Appended time of the oldest unacknowledged record
	Classes   [numClasses]ClassStats `json:"classes"`         // indexed by Class
	Appended  uint64                 `json:"appended"`        // records appended since Open
	Commits   uint64                 `json:"commits"`         // fsynced transactions since Open
	Segments  int                    `json:"segments"`        // segments on disk, acknowledged or not
	Drops     uint64                 `json:"drops"`           // acknowledged segments dropped since Open
	DiskBytes int64                  `json:"disk_bytes"`      // Badger's files on disk
	Recovered string                 `json:"recovered,omitempty"`
}

// Spool is a durable, bounded queue of opaque records. Its methods are safe
// for concurrent use. One goroutine, the writer, makes every change, so
// sequence numbers, counts and bounds need no further coordination and
// concurrent Appends share one fsync (group commit).
type Spool struct {
	db  *badger.DB
	dir string
	cfg Config
	log *slog.Logger
	now func() time.Time
	// recovered says why a corrupt spool was moved aside at Open, if it was.
	recovered string

	// closeMu is held shared by readers of db and exclusively by Close.
	closeMu sync.RWMutex
	closed  bool

	appendCh chan *appendReq
	ackCh    chan *ackReq
	quit     chan struct{}
	done     chan struct{}

	mu       sync.Mutex // guards the fields below; the writer alone changes them
	next     uint64
	acked    uint64
	counts   counts
	oldest   time.Time
	evicted  [numClasses]int64
	expired  [numClasses]int64
	refused  [numClasses]int64
	appended uint64
	commits  uint64
	drops    uint64
	segs     []segment     // ascending; the last may be open
	wake     chan struct{} // closed and replaced on each append of records

	// The writer's own state.
	lastSeg  uint32 // highest segment id in use
	segOpen  bool   // the last segment takes more records
	segBytes int64  // record data in the open segment

	segBytesMax int64 // a segment closes when it holds this much data
}

// clockFloorUnix (2025-01-01T00:00:00Z) is a time before which the wall
// clock is taken to be unset.
const clockFloorUnix = 1735689600

// Open opens the spool in opts.Dir, creating it if need be. A spool Badger
// cannot open is moved aside to <dir>.corrupt-<time> and a fresh one is
// started, so a gateway never refuses to boot; Stats().Recovered says so,
// and the gateway turns that into a critical record.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: open: no directory given")
	}
	if opts.Config == (Config{}) {
		opts.Config = DefaultConfig()
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	opts.Config = opts.Config.resolved()
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	if err := removeEmptyLogs(opts.Dir, log); err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	bopts := badgerOptions(opts.Dir, opts.Config).WithLogger(badgerLogger{log})
	s := &Spool{dir: opts.Dir, cfg: opts.Config, log: log, now: now, wake: make(chan struct{}), segBytesMax: opts.segmentBytes}
	if s.segBytesMax <= 0 {
		s.segBytesMax = segmentSize(opts.Config)
	}
	db, err := badger.Open(bopts)
	if err != nil && movable(err) {
		aside := fmt.Sprintf("%s.corrupt-%s", strings.TrimRight(opts.Dir, "/"), now().UTC().Format("20060102T150405Z"))
		if rerr := os.Rename(opts.Dir, aside); rerr != nil {
			return nil, fmt.Errorf("spool: open %s: %w; moving it aside failed: %w", opts.Dir, err, rerr)
		}
		s.recovered = fmt.Sprintf("spool %s could not be opened (%v); moved aside to %s and started empty", opts.Dir, err, aside)
		log.Error("spool: corrupt spool moved aside; starting a fresh one", "dir", opts.Dir, "moved_to", aside, "err", err)
		if err = os.MkdirAll(opts.Dir, 0o700); err == nil {
			db, err = badger.Open(bopts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	s.db = db
	err = s.load(now())
	if err == nil {
		err = s.dropAcked()
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	s.appendCh = make(chan *appendReq)
	s.ackCh = make(chan *ackReq)
	s.quit = make(chan struct{})
	s.done = make(chan struct{})
	go s.writer()
	records, bytes := s.counts.total()
	log.Info("spool opened", "dir", s.dir, "profile", s.cfg.Profile, "max_bytes", s.cfg.MaxBytes,
		"next_seq", s.next, "acked_up_to", s.acked, "records", records, "bytes", bytes)
	return s, nil
}

// removeEmptyLogs deletes zero-length memtable and value-log files. Badger
// creates such a file and then sizes it; killed in between, it leaves an
// empty file that its next Open refuses (dgraph-io/badger#2207). An empty
// file never held a write, so removing it loses nothing, where moving the
// whole spool aside would.
func removeEmptyLogs(dir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.Type().IsRegular() || (ext != ".mem" && ext != ".vlog") {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.Size() != 0 {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove empty %s left by a crash: %w", path, err)
		}
		log.Warn("spool: removed an empty log file left by a crash", "file", path)
	}
	return nil
}

// movable tells a damaged spool from a problem that moving it aside would
// not cure or would make worse: another process holding it, or no access.
func movable(err error) bool {
	if errors.Is(err, os.ErrPermission) {
		return false
	}
	msg := err.Error()
	return !strings.Contains(msg, "Cannot acquire directory lock") && !strings.Contains(msg, "resource temporarily unavailable")
}

// load reads the marks and counts; a brand-new spool gets its first
// sequence from now.
func (s *Spool) load(now time.Time) error {
	var haveNext bool
	err := s.db.View(func(txn *badger.Txn) error {
		haveFormat, f, err := getUint64(txn, keyFormat)
		if err != nil {
			return err
		}
		if haveFormat && f != format {
			return fmt.Errorf("spool layout version %d is not the %d this build reads (written by another firmware version?)", f, format)
		}
		if haveNext, s.next, err = getUint64(txn, keyNext); err != nil {
			return err
		}
		if s.segs, err = loadSegments(txn); err != nil {
			return err
		}
		if len(s.segs) > 0 {
			s.lastSeg = s.segs[len(s.segs)-1].id
		}
		if _, s.acked, err = getUint64(txn, keyAcked); err != nil {
			return err
		}
		item, err := txn.Get([]byte(keyCounts))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			if err := item.Value(s.counts.decode); err != nil {
				return err
			}
		}
		s.oldest, err = firstStamp(txn, recordSeekKey(s.segmentOf(s.acked+1), s.acked+1))
		return err
	})
	if err != nil {
		return err
	}
	s.next = max(s.next, s.acked+1)
	if haveNext {
		return nil
	}
	// A new spool starts at the clock in microseconds, not at 1: the
	// collector dedupes by (gateway, seq) and still knows the numbers of any
	// spool this one replaces. No spool assigns more than a million records
	// a second on average, so none ran ahead of the clock in microseconds,
	// and a spool seeded later starts above all of them, as long as the
	// clock is not behind where it was then.
	if now.Unix() < clockFloorUnix {
		s.log.Warn("system clock looks unset: a new spool seeded from it may reuse sequence numbers of an earlier spool, and the collector would drop those records as duplicates",
			"clock", now, "dir", s.dir)
	}
	s.next = max(s.next, uint64(max(now.UnixMicro(), 1)))
	return s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set([]byte(keyFormat), encodeUint64(format)); err != nil {
			return err
		}
		return txn.Set([]byte(keyNext), encodeUint64(s.next))
	})
}

// firstStamp is the appended time of the first record at or after seek.
func firstStamp(txn *badger.Txn, seek []byte) (time.Time, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix)})
	defer it.Close()
	it.Seek(seek)
	if !it.Valid() {
		return time.Time{}, nil
	}
	return stampOf(it.Item())
}

// getUint64 reads a meta key; found is false if it is absent.
func getUint64(txn *badger.Txn, key string) (found bool, v uint64, err error) {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("read %s: %w", key, err)
	}
	err = item.Value(func(b []byte) error {
		v, err = decodeUint64(key, b)
		return err
	})
	return true, v, err
}

// Close stops the writer, failing Appends still waiting for room with
// ErrClosed, and closes the database. Closing twice is harmless.
func (s *Spool) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.quit)
	<-s.done
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("spool: close %s: %w", s.dir, err)
	}
	return nil
}

// Appended returns a channel that is closed the next time records are
// appended. Take it before a Read that may come back empty, then wait on
// it, and no append is missed.
func (s *Spool) Appended() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

// Stats returns the spool's figures. The backlog figures are kept in
// memory; DiskBytes lists the directory.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	records, bytes := s.counts.total()
	st := Stats{
		NextSeq: s.next, AckedUpTo: s.acked, Records: records, Bytes: bytes, Used: s.counts.used(),
		MaxBytes: int64(s.cfg.MaxBytes), Oldest: s.oldest, Appended: s.appended, Commits: s.commits,
		Recovered: s.recovered, Segments: len(s.segs), Drops: s.drops,
	}
	for c := range st.Classes {
		st.Classes[c] = ClassStats{Records: s.counts[c].records, Bytes: s.counts[c].bytes,
			Evicted: s.evicted[c], Expired: s.expired[c], Refused: s.refused[c]}
	}
	s.mu.Unlock()
	st.DiskBytes = s.diskBytes()
	return st
}

// diskBytes is the space Badger's files take; 0 if the directory cannot be
// listed.
func (s *Spool) diskBytes() int64 {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		switch filepath.Ext(e.Name()) {
		case ".sst", ".vlog", ".mem":
			if fi, err := e.Info(); err == nil {
				n += allocated(fi)
			}
		}
	}
	return n
}
