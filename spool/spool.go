package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/weirgw/weir/merkle"
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
	// segmentBytes fixes the segment size (tests).
	segmentBytes int64
	// disk reports the free space; nil = statfs (tests give a fake disk).
	disk diskSpace
	// closeWait overrides closeTimeout (tests).
	closeWait time.Duration
}

// closeTimeout bounds Badger's Close. Badger flushes its memtable on
// Close and retries a failed flush without end: on a file system
// remounted read-only after errors, a gateway asked to stop would hang
// there until its supervisor killed it.
const closeTimeout = 10 * time.Second

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
	// Quarantined counts records a Read found damaged and set aside since
	// Open (QuarantinedSince lists them).
	Quarantined uint64    `json:"quarantined"`
	Disk        DiskStats `json:"disk"`
}

// Spool is a durable, bounded queue of opaque records. Its methods are safe
// for concurrent use. One goroutine, the writer, makes every change, so
// sequence numbers, counts and bounds need no further coordination and
// concurrent Appends share one fsync (group commit).
type Spool struct {
	closeWait time.Duration // Options.closeWait
	db        *badger.DB
	dir       string
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	// recovered says why a corrupt spool was moved aside at Open, if it was.
	recovered string

	// closeMu is held shared by readers of db and exclusively by Close.
	closeMu sync.RWMutex
	closed  bool

	appendCh chan *appendReq
	ackCh    chan *ackReq
	forgetCh chan *forgetReq
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
	critWake chan struct{} // closed and replaced on each append of critical records
	lastCrit uint64        // the newest critical record's sequence (an upper bound after Open)

	// The Merkle log (tree.go): its frontier as of the last commit, the
	// sequence of its leaf 0, why it began at Open, and the eviction log's
	// next number.
	tree      merkle.Frontier
	treeFirst uint64
	treeBegan string
	evictNext uint64

	// checkedFrom is the first sequence written with a checksum (s/checked);
	// set at Open.
	checkedFrom uint64
	// Quarantine: runs a Read found damaged, skipped by every later Read.
	skip        seqSpans
	quarantined uint64        // records quarantined since Open
	qEvents     uint64        // quarantine events since Open
	qRecent     []Quarantined // the last quarantineKeep events
	qmu         sync.Mutex    // serialises writes to the quarantine file

	// Disk space; see disk.go.
	disk         diskSpace
	guard        diskGuard
	lastFree     int64     // what statfs said last (MaxInt64: unknown)
	ballastHeld  int64     // bytes the ballast file holds
	diskHeld     string    // why intake waits for disk space, "" while it does not
	heldSince    time.Time // when it started
	heldClass    Class     // the most important class that waited
	acksInMemory bool      // the ack mark moved without being written

	fresh      bool       // Open created the spool (no s/next)
	pos        *positions // the writer's, after Open
	unreported []string   // markers of spools moved aside, not yet reported

	// The writer's own state.
	lastSeg  uint32 // highest segment id in use
	segOpen  bool   // the last segment takes more records
	segBytes int64  // record data in the open segment

	segTarget   int64 // the open segment closes when it holds this much data
	segBytesMin int64 // the bounds of segTarget (segmentBounds)
	segBytesMax int64
}

// clockFloorUnix (2025-01-01T00:00:00Z) is a time before which the wall
// clock is taken to be unset.
const clockFloorUnix = 1735689600

// Open opens the spool in opts.Dir, creating it if need be; see
// OpenContext.
func Open(opts Options) (*Spool, error) { return OpenContext(context.Background(), opts) }

// OpenContext opens the spool in opts.Dir, creating it if need be. A spool
// Badger cannot open or this build cannot read is moved aside to
// <dir>.corrupt-<time> and a fresh one is started from the positions file
// (PositionsPath), so a gateway never refuses to boot; Stats().Recovered
// says so, and the gateway turns that into a critical record. On a disk
// too full to open Badger safely it first releases the ballast, then waits
// for space until ctx is done (see makeRoomToOpen).
func OpenContext(ctx context.Context, opts Options) (*Spool, error) {
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
	disk := opts.disk
	if disk == nil {
		disk = statfsSpace{}
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	if err := removeEmptyLogs(opts.Dir, log); err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	s := &Spool{dir: opts.Dir, cfg: opts.Config, log: log, now: now, wake: make(chan struct{}), critWake: make(chan struct{}),
		disk: disk, guard: newDiskGuard(opts.Config), pos: newPositions(PositionsPath(opts.Dir)), lastFree: math.MaxInt64,
		closeWait: opts.closeWait}
	s.segBytesMin, s.segBytesMax = opts.segmentBytes, opts.segmentBytes
	if opts.segmentBytes <= 0 {
		s.segBytesMin, s.segBytesMax = segmentBounds(opts.Config)
	}
	s.segTarget = s.segBytesMin
	if err := s.makeRoomToOpen(ctx); err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	bopts := badgerOptions(opts.Dir, opts.Config).WithLogger(badgerLogger{log})
	err := s.openDB(bopts)
	if err != nil && strings.Contains(err.Error(), "vlog.open") && s.setValueLogAside(err) {
		err = s.openDB(bopts)
	}
	if err != nil && movable(err) {
		if aerr := s.moveAside(err); aerr != nil {
			return nil, fmt.Errorf("spool: open %s: %w; moving it aside failed: %w", opts.Dir, err, aerr)
		}
		if err = os.MkdirAll(opts.Dir, 0o700); err == nil {
			err = s.openDB(bopts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	s.findUnreported()
	if err := s.startPositions(); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	if s.freeSpace() >= s.guard.writeFloor() {
		if err := s.dropAcked(); err != nil {
			log.Error("spool: reclaiming acknowledged records failed; trying again at the next ack", "dir", s.dir, "err", err)
		}
	}
	s.tendDisk()
	records, bytes := s.counts.total()
	log.Info("spool opened", "dir", s.dir, "profile", s.cfg.Profile, "max_bytes", s.cfg.MaxBytes,
		"next_seq", s.next, "acked_up_to", s.acked, "records", records, "bytes", bytes,
		"disk_free", s.lastFree, "disk_reserve", s.guard.reserve)
	s.appendCh = make(chan *appendReq)
	s.ackCh = make(chan *ackReq)
	s.forgetCh = make(chan *forgetReq)
	s.quit = make(chan struct{})
	s.done = make(chan struct{})
	go s.writer() // from here on, the writer alone changes the fields above
	return s, nil
}

// openDB opens Badger and reads the spool's marks. Badger may panic on a
// damaged file rather than return an error; that is a spool that cannot be
// opened like any other.
func (s *Spool) openDB(bopts badger.Options) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("badger panicked: %v", r)
		}
	}()
	s.resetState()
	damaged, err := scrubTables(bopts)
	if err != nil {
		return err
	}
	if len(damaged) > 0 {
		if err := s.salvageTables(bopts, damaged); err != nil {
			return err
		}
	}
	db, err := badger.Open(bopts)
	if err != nil {
		return err
	}
	s.db = db
	if err := s.load(s.now()); err != nil {
		_ = db.Close()
		s.db = nil
		return fmt.Errorf("read the spool's marks: %w", err)
	}
	return nil
}

// salvageTables opens Badger without compactors, writes the readable keys
// of the damaged tables again, and closes it.
func (s *Spool) salvageTables(bopts badger.Options, damaged []damagedTable) error {
	for _, d := range damaged {
		s.log.Error("spool: table with a damaged block; writing its readable records again before any compaction drops them",
			"dir", s.dir, "table", d.name, "err", d.err)
	}
	db, err := badger.Open(bopts.WithNumCompactors(0))
	if err != nil {
		return err
	}
	n, err := s.salvage(db, damaged)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("salvage damaged tables: %w", err)
	}
	s.log.Warn("spool: readable keys of damaged tables written again; what the damaged blocks held will be quarantined when read",
		"dir", s.dir, "tables", len(damaged), "keys", n)
	return nil
}

// resetState forgets what a failed open read.
func (s *Spool) resetState() {
	s.next, s.acked, s.counts, s.oldest, s.segs, s.lastSeg, s.checkedFrom, s.skip, s.fresh = 0, 0, counts{}, time.Time{}, nil, 0, 0, nil, false
	s.lastCrit = 0
	s.tree, s.treeFirst, s.treeBegan, s.evictNext = merkle.Frontier{}, 0, "", 0
}

// setValueLogAside renames damaged value-log files out of Badger's way.
// The spool keeps every record in the LSM tree (valueThreshold), so its
// value log holds nothing but a header, and losing it loses nothing; the
// whole spool need not be moved aside for it.
func (s *Spool) setValueLogAside(cause error) bool {
	vlogs, _ := filepath.Glob(filepath.Join(s.dir, "*.vlog"))
	for _, v := range vlogs {
		if err := os.Rename(v, v+".damaged"); err != nil {
			return false
		}
	}
	s.log.Error("spool: value log unreadable; set aside (the spool keeps no records in it)", "dir", s.dir, "files", len(vlogs), "err", cause)
	return len(vlogs) > 0
}

// asideMarker is the file a spool moved aside holds until the gateway has
// reported it: the reason, so that a crash between moving it and
// reporting it is reported at the next start instead of never.
const asideMarker = "weir-moved-aside"

// moveAside renames the spool directory to <dir>.corrupt-<time>, leaving
// the reason in it. The ballast is removed first: the old spool should not
// hold space the new one needs.
func (s *Spool) moveAside(cause error) error {
	aside := fmt.Sprintf("%s.corrupt-%s", filepath.Clean(s.dir), s.now().UTC().Format("20060102T150405.000Z"))
	_ = os.Remove(s.ballastPath())
	s.setBallast(0)
	why := fmt.Sprintf("spool %s could not be opened (%v); moved aside to %s and started empty", s.dir, cause, aside)
	if err := writeFileAtomic(filepath.Join(s.dir, asideMarker), []byte(why+"\n")); err != nil {
		s.log.Warn("spool: could not leave the reason in the spool being moved aside", "dir", s.dir, "err", err)
		s.recovered = why // reported at least this once
	}
	if err := os.Rename(s.dir, aside); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(filepath.Clean(s.dir))); err == nil {
		_ = d.Sync()
		d.Close()
	}
	s.log.Error("spool: corrupt spool moved aside; starting a fresh one", "dir", s.dir, "moved_to", aside, "err", cause)
	return nil
}

// findUnreported collects the spools moved aside whose move the gateway
// has not reported yet (RecoveryReported), this start or an earlier one.
func (s *Spool) findUnreported() {
	markers, _ := filepath.Glob(filepath.Clean(s.dir) + ".corrupt-*/" + asideMarker)
	var why []string
	if s.recovered != "" {
		why = append(why, s.recovered)
	}
	for _, m := range markers {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		s.unreported = append(s.unreported, m)
		why = append(why, strings.TrimSpace(string(b)))
	}
	s.recovered = strings.Join(why, "; ")
}

// RecoveryReported tells the spool that the gateway has spooled its record
// of Stats().Recovered: the spools moved aside are not reported again at
// the next start.
func (s *Spool) RecoveryReported() {
	for _, m := range s.unreported {
		if err := os.Rename(m, m+".reported"); err != nil {
			s.log.Warn("spool: could not mark a spool moved aside as reported", "file", m, "err", err)
		}
	}
	s.unreported = nil
}

// startPositions loads the positions file. A brand-new spool (a first
// start, or one moved aside) starts from its positions: they are committed
// as the spool's checkpoints. An existing spool's checkpoints are pending
// until the ack mark passes every record spooled now. The file is then
// rewritten compacted.
func (s *Spool) startPositions() error {
	held, err := loadPositions(s.pos.path)
	if err != nil {
		s.log.Warn("spool: positions file unreadable; starting without it", "file", s.pos.path, "err", err)
	}
	s.pos.held = held
	if s.fresh && len(held) > 0 {
		if err := s.seedCheckpoints(held); err != nil {
			return fmt.Errorf("restore positions from %s: %w", s.pos.path, err)
		}
		s.log.Warn("spool: fresh spool starts from the positions the collector holds", "file", s.pos.path, "sources", len(held))
		if s.recovered != "" {
			s.recovered += fmt.Sprintf("; positions of %d sources restored from %s", len(held), s.pos.path)
		}
	} else if !s.fresh {
		current := map[string][]byte{}
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(checkpointPrefix), PrefetchValues: true})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				if v == nil {
					v = []byte{}
				}
				current[string(it.Item().Key()[len(checkpointPrefix):])] = v
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		// Every checkpoint is held once everything spooled now is
		// acknowledged; one gone from the spool was deleted.
		upTo := s.next - 1
		var cps []Checkpoint
		for src, pos := range current {
			cps = append(cps, Checkpoint{Source: src, Position: pos})
		}
		for src := range held {
			if _, ok := current[src]; !ok {
				cps = append(cps, Checkpoint{Source: src, Delete: true})
			}
		}
		s.pos.committed(cps, upTo, s.acked)
	}
	if err := s.pos.rewrite(); err != nil {
		s.log.Warn("spool: writing the positions file failed; trying again at the next acknowledgement", "file", s.pos.path, "err", err)
	}
	return nil
}

// seedCheckpoints commits positions as checkpoints, as many per
// transaction as Badger allows.
func (s *Spool) seedCheckpoints(held map[string][]byte) error {
	keys := sortedKeys(held)
	for len(keys) > 0 {
		n := min(len(keys), MaxAppendRecords)
		err := s.db.Update(func(txn *badger.Txn) error {
			for _, src := range keys[:n] {
				if err := txn.Set(checkpointKey(src), held[src]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
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
	var haveNext, haveFormat, haveChecked, lastChecked bool
	var f, last uint64
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		haveFormat, f, err = getUint64(txn, keyFormat)
		if err != nil {
			return err
		}
		if haveFormat && f != format && f != formatLegacy {
			return fmt.Errorf("spool layout version %d is not the %d this build reads (written by another firmware version?)", f, format)
		}
		if haveNext, s.next, err = getUint64(txn, keyNext); err != nil {
			return err
		}
		if haveChecked, s.checkedFrom, err = getUint64(txn, keyCheckedFrom); err != nil {
			return err
		}
		// s/next is rewritten by every commit, so a damaged table can hide
		// its newest version and show an older one; the newest record says
		// where numbering really stands.
		last, lastChecked, err = lastRecordSeq(txn)
		if err != nil {
			return err
		}
		if last > 0 && last >= s.next {
			s.log.Warn("spool: s/next is behind the newest record; numbering resumes after the record", "dir", s.dir, "next", s.next, "last_record", last)
			s.next = last + 1
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
		s.oldest = s.firstStamp(txn, recordSeekKey(s.segmentOf(s.acked+1), s.acked+1))
		s.lastCrit = lastCritical(txn, s.segs)
		return s.loadTree(txn)
	})
	if err != nil {
		return err
	}
	s.next = max(s.next, s.acked+1)
	s.loadQuarantine()
	s.fresh = !haveNext
	if haveNext {
		s.settleTree(false)
		if haveFormat && f == format && haveChecked {
			return nil
		}
		switch {
		case haveChecked:
			// Only version 3 writes s/checked, together with s/format:
			// a damaged table hid the version.
			s.log.Warn("spool: layout version unreadable; s/checked says version 3, and the version is written again", "dir", s.dir, "checked_from", s.checkedFrom)
		case (haveFormat && f == format) || (!haveFormat && last > 0 && lastChecked):
			// A version 3 spool whose s/checked a damaged table hid. Taking
			// it for version 2 would hand out every record with its
			// checksum as the first bytes of its data. Every record it
			// holds is checked instead (from its oldest segment on: below
			// it no key is expected): one left from before an upgrade
			// fails and is quarantined, reported, not sent damaged.
			s.checkedFrom = s.next
			if len(s.segs) > 0 {
				s.checkedFrom = s.segs[0].first
			}
			s.log.Error("spool: s/checked unreadable (a damaged table); every record is checked, and any written before checksums (layout version 2) is quarantined", "dir", s.dir)
		default:
			// A version 2 spool: its records so far have no checksum,
			// and evictions left gaps among them; the records from now
			// on have both. Upgrading is one transaction: a crash before
			// it leaves a version 2 spool, after it a version 3 one.
			s.checkedFrom = s.next
			s.log.Info("spool: layout upgraded; records from here on carry a checksum", "dir", s.dir, "from", 2, "to", format, "checked_from", s.checkedFrom)
		}
		return s.db.Update(func(txn *badger.Txn) error {
			if err := txn.Set([]byte(keyFormat), encodeUint64(format)); err != nil {
				return err
			}
			return txn.Set([]byte(keyCheckedFrom), encodeUint64(s.checkedFrom))
		})
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
	s.checkedFrom = s.next
	s.settleTree(true)
	return s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set([]byte(keyFormat), encodeUint64(format)); err != nil {
			return err
		}
		if err := txn.Set([]byte(keyCheckedFrom), encodeUint64(s.checkedFrom)); err != nil {
			return err
		}
		// The empty Merkle log is written with the spool, so that one
		// killed before its first commit reopens with its log continuing,
		// not begun again as "spool without a tree".
		if err := txn.Set([]byte(keyTree), encodeTree(s.treeFirst, &s.tree)); err != nil {
			return err
		}
		return txn.Set([]byte(keyNext), encodeUint64(s.next))
	})
}

// lastRecordSeq is the sequence of the newest record key, 0 if none, and
// whether the newest of the last few values that is not a marker is a
// record with a checksum that matches (a record of version 3; one of
// version 2 matches by chance once in 2^32).
func lastRecordSeq(txn *badger.Txn) (seq uint64, checked bool, err error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix), Reverse: true})
	defer it.Close()
	looked := 0
	for it.Seek([]byte(recordPrefix + strings.Repeat("\xff", recordKeyLen))); it.Valid() && looked < 64; it.Next() {
		item := it.Item()
		_, s, _, err := parseRecordKey(item.Key())
		if err != nil {
			continue
		}
		if seq == 0 {
			seq = s
		}
		looked++
		kind := valueCorrupt
		_ = item.Value(func(v []byte) error {
			_, _, kind = parseRecordValue(item.Key(), v, true)
			return nil
		})
		if kind != valueMarker {
			return seq, kind == valueRecord, nil
		}
	}
	return seq, false, nil
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
	if free := s.freeSpace(); free < s.guard.writeFloor() {
		// Closing flushes the memtable into a table; with the disk this
		// full that may be a SIGBUS. Everything committed is in the
		// write-ahead log, which the next Open replays.
		if free < s.guard.slice {
			s.log.Error("spool: disk too full to close Badger safely; leaving its log for the next open to replay", "dir", s.dir, "free", free)
			return nil
		}
	} else {
		s.writeAcksInMemory()
		s.flushPositions()
	}
	wait := s.closeWait
	if wait <= 0 {
		wait = closeTimeout
	}
	closed := make(chan error, 1)
	go func() { closed <- s.db.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			return fmt.Errorf("spool: close %s: %w", s.dir, err)
		}
		return nil
	case <-time.After(wait):
		// Badger is left retrying; the process is about to end. What was
		// committed is in the write-ahead log, which the next open replays.
		err := fmt.Errorf("spool: close %s: Badger could not flush within %s (is the file system read-only or failing?); "+
			"what was committed is in its write-ahead log, which the next start replays", s.dir, wait)
		s.log.Error(err.Error())
		return err
	}
}

// CriticalAppended returns a channel that is closed the next time a
// critical record is appended: a sender waiting for a batch to fill can
// send a critical record at once.
func (s *Spool) CriticalAppended() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.critWake
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
		Recovered: s.recovered, Segments: len(s.segs), Drops: s.drops, Quarantined: s.quarantined,
	}
	for c := range st.Classes {
		st.Classes[c] = ClassStats{Records: s.counts[c].records, Bytes: s.counts[c].bytes,
			Evicted: s.evicted[c], Expired: s.expired[c], Refused: s.refused[c]}
	}
	s.mu.Unlock()
	s.freeSpace()
	s.mu.Lock()
	st.Disk = s.diskStats(st.Used)
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
