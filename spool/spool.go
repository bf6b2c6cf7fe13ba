package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// ErrClosed is returned by calls on a closed spool.
var ErrClosed = errors.New("spool: closed")

// Options configure Open.
type Options struct {
	Dir    string       // badger directory; created 0700 if missing
	Logger *slog.Logger // nil = slog.Default(); Badger's own messages are passed on at warning and error level only
}

// Checkpoint is a source's read position, committed with the records it
// produced.
type Checkpoint struct {
	Source   string // e.g. "file:/var/log/app.log"
	Position []byte // opaque to the spool
}

// Record is one spooled record.
type Record struct {
	Seq      uint64
	Appended time.Time // when Append stored it
	Data     []byte    // the caller may keep it; it does not alias Badger's memory
}

// Stats are the spool's size and age figures.
type Stats struct {
	NextSeq   uint64    // the sequence the next appended record will get
	AckedUpTo uint64    // highest acknowledged sequence (0 if none)
	Records   int64     // unacknowledged records held
	Bytes     int64     // bytes of unacknowledged record data held
	Oldest    time.Time // Appended time of the oldest unacknowledged record; zero if empty
	DiskBytes int64     // Badger's files (LSM, value log, write-ahead log) on disk
}

// Spool is a durable queue of opaque records. Its methods are safe for
// concurrent use.
type Spool struct {
	db  *badger.DB
	dir string
	log *slog.Logger

	// closeMu is held shared by every call that touches db and exclusively
	// by Close, so db is never used after it was closed.
	closeMu sync.RWMutex
	closed  bool

	appendMu sync.Mutex // serialises Append: assign, commit, count
	ackMu    sync.Mutex // serialises Ack

	mu       sync.Mutex // guards the fields below
	next     uint64
	acked    uint64
	records  int64
	bytes    int64
	oldest   time.Time
	appended chan struct{} // closed and replaced on each Append of records
}

// clockFloorUnix (2025-01-01T00:00:00Z) is a time before which the wall
// clock is taken to be unset.
const clockFloorUnix = 1735689600

// Open opens the spool in opts.Dir, creating it if need be.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: open: no directory given")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	db, err := badger.Open(badgerOptions(opts.Dir).WithLogger(badgerLogger{log}))
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	s := &Spool{db: db, dir: opts.Dir, log: log, appended: make(chan struct{})}
	if err := s.load(time.Now()); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	log.Info("spool opened", "dir", s.dir, "next_seq", s.next, "acked_up_to", s.acked, "records", s.records, "bytes", s.bytes)
	return s, nil
}

// load reads the marks and rebuilds the backlog figures with a key-only
// scan; a brand-new spool gets its first sequence from now.
func (s *Spool) load(now time.Time) error {
	var haveNext bool
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if haveNext, s.next, err = getUint64(txn, keyNext); err != nil {
			return err
		}
		if _, s.acked, err = getUint64(txn, keyAcked); err != nil {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix)})
		defer it.Close()
		first := true
		for it.Seek(recordKey(s.acked + 1)); it.Valid(); it.Next() {
			item := it.Item()
			seq, err := recordSeq(item.Key())
			if err != nil {
				return err
			}
			if first {
				first = false
				if s.oldest, err = stampOf(item); err != nil {
					return err
				}
			}
			s.records++
			s.bytes += max(item.ValueSize()-stampLen, 0)
			// m/next is committed with the records, so this never moves it;
			// it only guards against reissuing a sequence that is on disk.
			s.next = max(s.next, seq+1)
		}
		return nil
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
		return txn.Set([]byte(keyNext), encodeUint64(s.next))
	})
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

// Close closes the database. Further calls return ErrClosed; closing twice
// is harmless.
func (s *Spool) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
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
	return s.appended
}

// Stats returns the spool's figures. The backlog figures are kept in
// memory; DiskBytes lists the directory.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	st := Stats{
		NextSeq: s.next, AckedUpTo: s.acked,
		Records: s.records, Bytes: s.bytes, Oldest: s.oldest,
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

// RunGC runs Badger's value-log garbage collection every interval
// (non-positive: 5 minutes) until ctx is done.
func (s *Spool) RunGC(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.gc(ctx)
		}
	}
}

// gc rewrites value-log files while at least half of one is garbage.
func (s *Spool) gc(ctx context.Context) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	for !s.closed && ctx.Err() == nil {
		err := s.db.RunValueLogGC(0.5)
		switch {
		case err == nil:
			continue
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
		default:
			s.log.Warn("spool: value log gc failed", "dir", s.dir, "err", err)
		}
		return
	}
}
