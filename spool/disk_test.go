package spool

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeDisk is a small file system laid over the test's real one: its free
// space is its size less what the spool directory takes on the real disk
// and what "another process" took (taken). Badger still writes to the real
// disk, so nothing crashes when the fake one overflows; the tests check
// that it never does (peak), which on a real disk of that size is the
// difference between running and a SIGBUS.
type fakeDisk struct {
	dir   string
	size  atomic.Int64
	taken atomic.Int64
	peak  atomic.Int64 // the most the spool directory ever took, as sampled
}

func newFakeDisk(dir string, size int64) *fakeDisk {
	d := &fakeDisk{dir: dir}
	d.size.Store(size)
	return d
}

func (d *fakeDisk) used() int64 {
	var n int64
	_ = filepath.WalkDir(d.dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if fi, err := e.Info(); err == nil {
			n += allocated(fi)
		}
		return nil
	})
	for {
		p := d.peak.Load()
		if n <= p || d.peak.CompareAndSwap(p, n) {
			return n
		}
	}
}

func (d *fakeDisk) Free(string) (int64, error) {
	return d.size.Load() - d.used() - d.taken.Load(), nil
}

// sample keeps measuring the peak until stop is closed.
func (d *fakeDisk) sample(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(2 * time.Millisecond):
			d.used()
		}
	}
}

func openOnDisk(t *testing.T, dir string, disk diskSpace, cfg Config) *Spool {
	t.Helper()
	s, err := Open(Options{Dir: dir, Config: cfg, Logger: slog.New(slog.DiscardHandler), disk: disk})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestFullDiskHoldsIntake is the full-disk fault in process: max_bytes is
// four times a 64 MiB disk. The spool must stop taking bulk and
// normal records while the reserve and the critical slice are still free,
// say so, keep taking critical records, never let its files outgrow the
// disk, and resume by itself when space comes back.
func TestFullDiskHoldsIntake(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	disk := newFakeDisk(dir, 64<<20)
	stop := make(chan struct{})
	go disk.sample(stop)
	defer close(stop)
	cfg := DefaultConfig()
	cfg.MaxBytes = 256 << 20
	s := openOnDisk(t, dir, disk, cfg)
	require.Equal(t, s.guard.ballast, s.Stats().Disk.Ballast, "the ballast is in place")

	// Sources append until the disk holds them back.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stored [numClasses]atomic.Int64
	var wg sync.WaitGroup
	for _, c := range []Class{ClassNormal, ClassBulk} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := s.Append(ctx, batch(c, 256, 200), nil); err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("append %s: %v", c, err)
					}
					return
				}
				stored[c].Add(256)
			}
		}()
	}
	require.Eventually(t, func() bool { return s.Stats().Disk.Held != "" }, 60*time.Second, 10*time.Millisecond, "intake never held")
	st := s.Stats()
	t.Logf("held: %s (backlog %.1f MiB, budget %.1f MiB)", st.Disk.Held, float64(st.Used)/(1<<20), float64(st.Disk.Budget)/(1<<20))
	require.Contains(t, st.Disk.Held, "disk full")
	require.Less(t, st.Used, int64(cfg.MaxBytes)/4, "the disk, not max_bytes, must bound the backlog")
	require.Less(t, st.Disk.Budget, int64(cfg.MaxBytes))
	// Held, intake goes on only as Badger's compactions give space back,
	// bulk last: the backlog stays where the disk puts it.
	st0 := st
	time.Sleep(2 * time.Second)
	st = s.Stats()
	require.Less(t, st.Used, int64(cfg.MaxBytes)/4)
	require.Positive(t, st.Classes[ClassNormal].Refused)
	require.Positive(t, st.Classes[ClassBulk].Refused)
	// The counts are the spool's own (nothing is acknowledged here), so
	// no batch is counted late. While space comes back in a step above
	// both classes' lines, both go in a batch a group; bulk can still be
	// a batch ahead at either end of the window, when its request was in
	// a group that normal's, on its way back from the last one, missed.
	normal := st.Classes[ClassNormal].Records - st0.Classes[ClassNormal].Records
	bulk := st.Classes[ClassBulk].Records - st0.Classes[ClassBulk].Records
	t.Logf("in the 2 s held: %d normal, %d bulk records", normal, bulk)
	require.LessOrEqual(t, bulk, normal+2*256, "bulk is held back first (bulk %d, normal %d records in)", bulk, normal)

	// Critical records still go in, from the slice kept for them.
	for range 8 {
		_, err := s.Append(context.Background(), batch(ClassCritical, 64, 200), nil)
		require.NoError(t, err)
	}

	// Space comes back (the uplink drains the backlog): intake resumes.
	// The drain stops at the backlog held when it began: the sources
	// take the space back as segments drop, and a drain that chased them
	// would end only when it overtook them.
	var cursor uint64
	end := s.Stats().NextSeq
	for cursor < end {
		recs, err := s.Read(cursor, 4096, 0)
		require.NoError(t, err)
		if len(recs) == 0 {
			break
		}
		cursor = recs[len(recs)-1].Seq + 1
		require.NoError(t, s.Ack(cursor-1))
	}
	require.Eventually(t, func() bool { return s.Stats().Disk.Held == "" }, 60*time.Second, 10*time.Millisecond, "intake never resumed")
	resumed := stored[ClassNormal].Load()
	require.Eventually(t, func() bool { return stored[ClassNormal].Load() > resumed }, 30*time.Second, 10*time.Millisecond)
	cancel()
	wg.Wait()
	require.Zero(t, s.Stats().Quarantined, "markers and acks must not look like damage")
	t.Logf("peak %.1f MiB of the 64 MiB disk", float64(disk.peak.Load())/(1<<20))
	require.LessOrEqual(t, disk.peak.Load(), disk.size.Load()-s.guard.reserve/2, "the spool's files must never eat into the reserve's last half")
}

// TestDiskFilledByAnotherProcess: something else fills the disk while the
// spool runs. The spool releases its ballast, keeps acknowledgements in
// memory rather than write on a full disk, and when the space comes back
// writes them, and puts the ballast back.
func TestDiskFilledByAnotherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	disk := newFakeDisk(dir, 256<<20)
	s := openOnDisk(t, dir, disk, DefaultConfig())
	first, err := s.appendBytes(payloads("r", 100), nil)
	require.NoError(t, err)

	// Another process leaves less than the write floor.
	free, _ := disk.Free("")
	disk.taken.Store(free - s.guard.writeFloor() + 1<<20)
	require.Eventually(t, func() bool { return s.Stats().Disk.Ballast == 0 }, 10*time.Second, 10*time.Millisecond, "ballast not released")
	_, err = os.Stat(filepath.Join(dir, ballastName))
	require.ErrorIs(t, err, os.ErrNotExist)
	// It takes the ballast's space too.
	free, _ = disk.Free("")
	disk.taken.Add(free - 1<<20)

	require.NoError(t, s.Ack(first+49))
	st := s.Stats()
	require.True(t, st.Disk.AcksInMemory)
	require.Equal(t, first+49, st.AckedUpTo)
	recs, err := s.Read(0, 1000, 0)
	require.NoError(t, err)
	require.Equal(t, first+50, recs[0].Seq, "an ack kept in memory still hides what it acknowledged")
	ctx, cancel := context.WithTimeout(context.Background(), 2*diskCheckInterval)
	_, err = s.Append(ctx, batch(ClassCritical, 1, 10), nil)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "not even a critical record is written on a disk this full")

	// The other process goes away.
	disk.taken.Store(0)
	require.Eventually(t, func() bool {
		st := s.Stats()
		return !st.Disk.AcksInMemory && st.Disk.Ballast == s.guard.ballast && st.Disk.Held == ""
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, s.Close())
	s = openOnDisk(t, dir, disk, DefaultConfig())
	require.Equal(t, first+49, s.Stats().AckedUpTo, "the ack kept in memory was written once there was room")
}

// TestOpenOnFullDisk: a gateway restarted on a full disk releases its
// ballast to open; without a ballast to release it waits for space instead
// of opening Badger into a SIGBUS.
func TestOpenOnFullDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	disk := newFakeDisk(dir, 128<<20)
	s := openOnDisk(t, dir, disk, DefaultConfig())
	first, err := s.appendBytes(payloads("kept", 10), nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	free, _ := disk.Free("")
	disk.taken.Store(free) // full
	s = openOnDisk(t, dir, disk, DefaultConfig())
	st := s.Stats()
	require.Zero(t, st.Disk.Ballast, "the ballast was released to open")
	recs, err := s.Read(0, 100, 0)
	require.NoError(t, err)
	require.Equal(t, seqRange(first, 10), seqs(recs), "the backlog can drain")
	ctx, cancel := context.WithTimeout(context.Background(), 2*diskCheckInterval)
	_, err = s.Append(ctx, batch(ClassNormal, 1, 10), nil)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, s.Stats().Disk.Held, "disk full")
	// The appender gave up; the disk is as full as it was.
	time.Sleep(3 * diskCheckInterval)
	require.Contains(t, s.Stats().Disk.Held, "disk full", "the hold outlasts its waiter")
	require.NoError(t, s.Close())

	// No ballast left and the disk still full.
	free, _ = disk.Free("")
	disk.taken.Add(free)
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = OpenContext(ctx, Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), disk: disk})
	require.ErrorIs(t, err, errDiskFull)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// Space returns while it waits.
	go func() {
		time.Sleep(300 * time.Millisecond)
		disk.taken.Store(0)
	}()
	s = openOnDisk(t, dir, disk, DefaultConfig())
	recs, err = s.Read(0, 100, 0)
	require.NoError(t, err)
	require.Len(t, recs, 10)
}

func TestDiskGuardFigures(t *testing.T) {
	small := newDiskGuard(Config{Profile: ProfileSmall})
	require.Equal(t, diskGuard{reserve: 16 << 20, slice: 4 << 20, ballast: 20 << 20}, small)
	large := newDiskGuard(Config{Profile: ProfileLarge})
	require.Equal(t, diskGuard{reserve: 512 << 20, slice: 128 << 20, ballast: 832 << 20}, large)
	for _, tc := range []struct {
		class Class
		held  bool
		want  int64
	}{
		{ClassCritical, false, 16 << 20},
		{ClassCritical, true, 16 << 20},
		{ClassNormal, false, 20 << 20},
		{ClassNormal, true, 24 << 20},
		{ClassBulk, false, 24 << 20},
		{ClassBulk, true, 28 << 20},
	} {
		require.Equal(t, tc.want, small.need(tc.class, tc.held), "%s held=%v", tc.class, tc.held)
	}
}

// errDisk is a file system that cannot say how full it is: the guard is
// off and the spool works as before.
type errDisk struct{}

func (errDisk) Free(string) (int64, error) { return 0, errors.ErrUnsupported }

func TestUnknownFreeSpaceTurnsTheGuardOff(t *testing.T) {
	s := openOnDisk(t, t.TempDir(), errDisk{}, DefaultConfig())
	_, err := s.appendBytes(payloads("x", 3), nil)
	require.NoError(t, err)
	st := s.Stats()
	require.Equal(t, int64(-1), st.Disk.Free)
	require.Empty(t, st.Disk.Held)
	require.Equal(t, int64(st.MaxBytes), st.Disk.Budget)
}
