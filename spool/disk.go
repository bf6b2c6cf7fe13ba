package spool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Badger writes its tables, write-ahead logs and value log through memory
// maps of files it first extends as sparse files. On a file system with no
// free block left, the first store into such a page is a SIGBUS, which no
// Go code can recover: the process dies, and Badger's next Open replays
// its logs into new tables and dies the same way. So the spool never lets
// the file system get there. It checks the free space (statfs) before
// every group commit, keeps a reserve free for Badger's own growth, and
// holds a ballast file of real blocks that it gives back when something
// else fills the disk, or when it must open on a full one.

// diskSpace reports the space left on the file system holding dir: the
// bytes a new file could still take.
type diskSpace interface {
	Free(dir string) (int64, error)
}

// ballastName is the ballast file in the spool directory. Badger ignores
// files it does not know.
const ballastName = "weir-ballast"

// diskCheckInterval is how often the writer looks at the free space while
// nothing else wakes it: to resume held intake, to release or re-create
// the ballast, and to write acknowledgements kept in memory.
const diskCheckInterval = 100 * time.Millisecond

// diskGuard holds the spool's figures for the free space, all multiples of
// the profile's memtable size (2 MiB small, 64 MiB large). Measured by
// filling a spool at full speed on tmpfs and stopping at random moments,
// the file system's use went on growing after the last commit by at most
// 8.3 MiB (small) and 260 MiB (large): memtables flushed to level 0 and
// the compactions they started, whose output is written before their
// input is deleted, and segment drops, which rewrite the tables they cut
// through. That is about 4 memtables in both profiles; the reserve is
// twice that.
type diskGuard struct {
	// reserve is kept free for Badger's own growth: no record is admitted
	// that would leave less, and Badger is not opened with less. 8
	// memtables: 16 MiB small, 512 MiB large.
	reserve int64
	// slice is the room above the reserve kept for critical records:
	// normal records wait when less than reserve+slice would be left,
	// bulk records at reserve+2*slice. 2 memtables: 4 MiB, 128 MiB.
	slice int64
	// ballast is the size of the ballast file: the reserve and a full set
	// of write-ahead logs to replay (2 memtables small, 5 large), so that
	// a spool whose disk was filled by something else can still open once
	// it is released. 20 MiB small, 832 MiB large.
	ballast int64
}

func newDiskGuard(c Config) diskGuard {
	m, n := int64(largeMemtable), int64(5) // Badger's defaults: the large profile
	if c.Profile != ProfileLarge {
		m, n = smallMemtable, smallMemtables
	}
	return diskGuard{reserve: 8 * m, slice: 2 * m, ballast: 8*m + n*m}
}

// writeFloor is the free space below which the spool writes nothing at
// all, not even an acknowledgement, and releases the ballast: half the
// reserve. Above it, what an acknowledgement or a segment drop starts fits
// in what is left and the ballast.
func (g diskGuard) writeFloor() int64 { return g.reserve / 2 }

// need is the free space that must be left after admitting a record of
// class c. While intake is held for the disk, bulk and normal records need
// one slice more to resume, so that intake does not flap at the line.
func (g diskGuard) need(c Class, held bool) int64 {
	n := g.reserve
	switch c {
	case ClassNormal:
		n += g.slice
	case ClassBulk:
		n += 2 * g.slice
	}
	if held && c != ClassCritical {
		n += g.slice
	}
	return n
}

// cost is what admitting size bytes of backlog may take on disk before
// the next check: the write-ahead log and the level-0 table the memtable
// becomes.
func diskCost(size int64) int64 { return 2 * size }

// DiskStats say how the spool stands with its file system.
type DiskStats struct {
	Free    int64 `json:"free"`    // bytes free on the spool's file system; -1 if unknown (no guard)
	Reserve int64 `json:"reserve"` // kept free for Badger's own growth
	Slice   int64 `json:"slice"`   // kept above the reserve for critical records
	Ballast int64 `json:"ballast"` // bytes the ballast file holds; 0 while released
	// Budget is the backlog the spool can hold: max_bytes, or less when
	// the file system holds less (an estimate: the disk takes up to about
	// twice the backlog).
	Budget int64 `json:"budget"`
	// Held says why bulk and normal intake waits for disk space, "" while
	// it does not; HeldSince is when it started.
	Held      string    `json:"held,omitempty"`
	HeldSince time.Time `json:"held_since,omitzero"`
	// AcksInMemory: acknowledgements are kept in memory because the disk
	// is too full to write them; they are written once it is not.
	AcksInMemory bool `json:"acks_in_memory,omitempty"`
}

// freeSpace is the free space on the spool's file system, or MaxInt64 when
// it cannot be told (the guard is then off).
func (s *Spool) freeSpace() int64 {
	free, err := s.disk.Free(s.dir)
	if err != nil {
		return math.MaxInt64
	}
	s.mu.Lock()
	s.lastFree = free
	s.mu.Unlock()
	return free
}

// tendDisk runs in the writer: it releases the ballast when the free space
// falls below the write floor, re-creates it when there is room for it and
// the reserve and the slices, and writes acknowledgements kept in memory.
func (s *Spool) tendDisk() {
	free := s.freeSpace()
	if free == math.MaxInt64 {
		return
	}
	if free < s.guard.writeFloor() {
		if n := s.releaseBallast("the free space fell below the write floor"); n > 0 {
			free += n
		}
	} else if free >= s.guard.reserve+3*s.guard.slice+s.guard.ballast {
		s.makeBallast()
	}
	if free >= s.guard.writeFloor() {
		s.writeAcksInMemory()
		s.flushPositions()
	}
}

// ballastPath is the ballast file.
func (s *Spool) ballastPath() string { return filepath.Join(s.dir, ballastName) }

// makeBallast creates the ballast file if it is missing.
func (s *Spool) makeBallast() {
	s.mu.Lock()
	have := s.ballastHeld
	s.mu.Unlock()
	if have > 0 {
		return
	}
	path := s.ballastPath()
	if fi, err := os.Stat(path); err == nil && fi.Size() == s.guard.ballast && allocated(fi) >= s.guard.ballast {
		s.setBallast(s.guard.ballast)
		return
	}
	_ = os.Remove(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		err = preallocate(f, s.guard.ballast)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		_ = os.Remove(path)
		s.log.Warn("spool: creating the ballast file failed", "file", path, "bytes", s.guard.ballast, "err", err)
		return
	}
	s.setBallast(s.guard.ballast)
	s.log.Info("spool: ballast file in place", "file", path, "bytes", s.guard.ballast)
}

// releaseBallast removes the ballast file and returns the bytes it held.
func (s *Spool) releaseBallast(why string) int64 {
	path := s.ballastPath()
	fi, err := os.Stat(path)
	if err != nil {
		s.setBallast(0)
		return 0
	}
	if err := os.Remove(path); err != nil {
		s.log.Error("spool: releasing the ballast file failed", "file", path, "err", err)
		return 0
	}
	s.setBallast(0)
	n := allocated(fi)
	s.log.Warn("spool: ballast released to give Badger room", "file", path, "bytes", n, "why", why)
	return n
}

func (s *Spool) setBallast(n int64) {
	s.mu.Lock()
	s.ballastHeld = n
	s.mu.Unlock()
}

// walBytes is the space Badger's write-ahead logs hold in dir: at Open it
// replays them into memtables and writes those out as tables.
func walBytes(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".mem" || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil {
			n += allocated(fi)
		}
	}
	return n
}

// errDiskFull says the spool could not be opened for want of disk space.
var errDiskFull = errors.New("disk too full to open the spool safely")

// makeRoomToOpen makes sure Badger can open: it replays its write-ahead
// logs into tables, starts a new log and resumes the compactions that were
// due, which takes the logs' size and the reserve. When there is less
// free, it releases the ballast; when even that is not enough (something
// else took the ballast's space too), it waits for space, saying so every
// minute, until ctx is done. Opening anyway would crash with a SIGBUS, and
// so would every restart after it.
func (s *Spool) makeRoomToOpen(ctx context.Context) error {
	need := s.guard.reserve + walBytes(s.dir)
	var warned time.Time
	for {
		free, err := s.disk.Free(s.dir)
		if err != nil || free >= need {
			return nil
		}
		if n := s.releaseBallast("opening on a nearly full disk"); n > 0 {
			continue
		}
		if time.Since(warned) >= time.Minute {
			warned = time.Now()
			s.log.Error("spool: the disk is too full to open the spool without risking a crash; waiting for space",
				"dir", s.dir, "free", free, "need", need)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %d bytes free, %d needed: %w", errDiskFull, free, need, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

// diskStats fills in the disk figures; the caller holds s.mu.
func (s *Spool) diskStats(used int64) DiskStats {
	d := DiskStats{Free: s.lastFree, Reserve: s.guard.reserve, Slice: s.guard.slice, Ballast: s.ballastHeld,
		Held: s.diskHeld, HeldSince: s.heldSince, AcksInMemory: s.acksInMemory, Budget: int64(s.cfg.MaxBytes)}
	if s.lastFree == math.MaxInt64 || s.lastFree < 0 {
		d.Free = -1
		return d
	}
	d.Budget = min(d.Budget, used+max(0, s.lastFree-s.guard.reserve-s.guard.slice)/2)
	return d
}

// writeZeros fills f with n zero bytes, for file systems without
// fallocate.
func writeZeros(f *os.File, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// mib writes a byte count in MiB for messages.
func mib(n int64) string { return fmt.Sprintf("%.1fMiB", float64(max(n, 0))/(1<<20)) }
