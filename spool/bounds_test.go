package spool

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func openWith(t *testing.T, dir string, cfg Config, now func() time.Time) *Spool {
	t.Helper()
	s, err := Open(Options{Dir: dir, Config: cfg, Logger: slog.New(slog.DiscardHandler), Now: now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func tinyConfig() Config {
	c := DefaultConfig()
	c.MaxBytes = 1 << 20
	return c
}

// fill appends n entries of class c, each size bytes, in as many appends
// as the per-append limits need.
func fill(t *testing.T, s *Spool, c Class, n, size int) {
	t.Helper()
	for n > 0 {
		k := min(n, MaxAppendRecords/2)
		_, err := s.Append(context.Background(), batch(c, k, size), nil)
		require.NoError(t, err)
		n -= k
	}
}

// batch returns n entries of class c, each size bytes.
func batch(c Class, n, size int) []Entry {
	out := make([]Entry, n)
	for i := range out {
		out[i] = Entry{Class: c, Data: make([]byte, size)}
	}
	return out
}

func TestFullSpoolNeverBlocksCritical(t *testing.T) {
	s := openWith(t, t.TempDir(), tinyConfig(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Four sources flood bulk records; they soon wait for room.
	var bulkStored atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := s.Append(ctx, batch(ClassBulk, 50, 200), nil); err == nil {
					bulkStored.Add(50)
				}
			}
		}()
	}
	require.Eventually(t, func() bool { return s.Stats().Classes[ClassBulk].Refused > 0 }, 10*time.Second, time.Millisecond)

	// Critical records go in at once, every time, by evicting bulk ones.
	const critical = 1000 // more than the 10 % that bulk leaves free
	for i := range critical / 20 {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := s.Append(actx, batch(ClassCritical, 20, 200), nil)
		acancel()
		require.NoError(t, err, "critical batch %d", i)
	}
	cancel()
	wg.Wait()

	st := s.Stats()
	require.Equal(t, int64(critical), st.Classes[ClassCritical].Records)
	require.LessOrEqual(t, st.Used, st.MaxBytes)
	require.Positive(t, st.Classes[ClassBulk].Evicted)
	require.Zero(t, st.Classes[ClassCritical].Evicted)

	// The eviction counter accounts exactly for what is missing.
	recs, err := s.Read(0, 1<<20, 0)
	require.NoError(t, err)
	var bulkHeld int64
	for _, r := range recs {
		if r.Class == ClassBulk {
			bulkHeld++
		}
	}
	require.Equal(t, bulkStored.Load()-st.Classes[ClassBulk].Evicted, bulkHeld)
	require.Equal(t, bulkHeld, st.Classes[ClassBulk].Records)
}

func TestRefusalOrder(t *testing.T) {
	s := openWith(t, t.TempDir(), tinyConfig(), nil)
	ctx := context.Background()
	// Fill to just under 90 %: 264 bytes a record with the overhead.
	per := int64(200 + recordOverhead)
	fill(t, s, ClassNormal, int(int64(s.cfg.MaxBytes)*9/10/per), 200)

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := s.Append(short, batch(ClassBulk, 10, 200), nil)
	require.ErrorIs(t, err, context.DeadlineExceeded, "bulk waits from 90 %")
	require.Equal(t, int64(10), s.Stats().Classes[ClassBulk].Refused)

	_, err = s.Append(ctx, batch(ClassNormal, 10, 200), nil)
	require.NoError(t, err, "normal still fits below 100 %")

	// Normal waits at 100 % until an Ack makes room.
	rest := int((int64(s.cfg.MaxBytes) - s.Stats().Used) / per)
	fill(t, s, ClassNormal, rest, 200)
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, batch(ClassNormal, 5, 200), nil)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a normal append into a full spool returned at once: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	st := s.Stats()
	require.Equal(t, int64(5), st.Classes[ClassNormal].Refused)
	require.NoError(t, s.Ack(st.NextSeq-1-uint64(rest)))
	require.NoError(t, <-done, "room made by an ack lets the waiting append in")
	require.Zero(t, s.Stats().Classes[ClassNormal].Evicted, "normal records are never evicted for normal ones")
}

func TestCancelledWaitStoresNothing(t *testing.T) {
	s := openWith(t, t.TempDir(), tinyConfig(), nil)
	ctx := context.Background()
	per := int64(200 + recordOverhead)
	fill(t, s, ClassNormal, int(int64(s.cfg.MaxBytes)/per), 200)
	before := s.Stats()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := s.Append(short, batch(ClassNormal, 3, 200), []Checkpoint{{Source: "src", Position: []byte("moved")}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, s.Ack(before.NextSeq-1))
	// The cancelled request must not be committed later, when room appears.
	time.Sleep(50 * time.Millisecond)
	_, err = s.Append(ctx, batch(ClassNormal, 1, 10), nil)
	require.NoError(t, err)
	require.Equal(t, before.NextSeq+1, s.Stats().NextSeq)
	pos, err := s.Checkpoint("src")
	require.NoError(t, err)
	require.Nil(t, pos)
}

func TestAppendLimits(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	_, err := s.Append(ctx, batch(ClassNormal, 1, MaxAppendBytes+1), nil)
	require.ErrorContains(t, err, "more than the 212992 bytes one append may carry")
	_, err = s.Append(ctx, batch(ClassNormal, MaxAppendRecords, 1), []Checkpoint{{Source: "s", Position: []byte("p")}})
	require.ErrorContains(t, err, "more than the 1024 one append may carry")
	require.Zero(t, s.Stats().Records)

	// The largest append allowed fits one transaction: one big record, and
	// the most records with their share of the bytes.
	_, err = s.Append(ctx, batch(ClassNormal, 1, MaxAppendBytes), nil)
	require.NoError(t, err)
	_, err = s.Append(ctx, batch(ClassNormal, MaxAppendRecords-1, MaxAppendBytes/MaxAppendRecords), []Checkpoint{{Source: "s", Position: []byte("p")}})
	require.NoError(t, err)
	require.Equal(t, int64(MaxAppendRecords), s.Stats().Records)
}

func TestMaxAge(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	cfg := DefaultConfig()
	cfg.MaxAge = 100 * time.Millisecond // the ticker runs every 10ms
	s := openWith(t, t.TempDir(), cfg, clock)
	ctx := context.Background()
	for _, c := range []Class{ClassBulk, ClassNormal, ClassCritical} {
		_, err := s.Append(ctx, batch(c, 3, 10), nil)
		require.NoError(t, err)
	}
	now.Add(int64(time.Hour))
	_, err := s.Append(ctx, batch(ClassNormal, 2, 10), nil) // young
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st := s.Stats()
		return st.Classes[ClassBulk].Expired == 3 && st.Classes[ClassNormal].Expired == 3
	}, 5*time.Second, 5*time.Millisecond)
	st := s.Stats()
	require.Zero(t, st.Classes[ClassCritical].Expired, "critical records leave only when acked")
	require.Equal(t, int64(3), st.Classes[ClassCritical].Records)
	require.Equal(t, int64(2), st.Classes[ClassNormal].Records)
	require.Equal(t, int64(5), st.Records)
}

func TestCountsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := openWith(t, dir, tinyConfig(), nil)
	ctx := context.Background()
	_, err := s.Append(ctx, batch(ClassBulk, 7, 100), nil)
	require.NoError(t, err)
	_, err = s.Append(ctx, batch(ClassCritical, 2, 50), nil)
	require.NoError(t, err)
	first, err := s.Append(ctx, batch(ClassNormal, 4, 10), nil)
	require.NoError(t, err)
	require.NoError(t, s.Ack(first-2)) // all but one critical and the normals
	want := s.Stats()
	require.NoError(t, s.Close())
	got := openWith(t, dir, tinyConfig(), nil).Stats()
	require.Equal(t, want.Records, got.Records)
	require.Equal(t, want.Bytes, got.Bytes)
	for c := range want.Classes {
		require.Equal(t, want.Classes[c].Records, got.Classes[c].Records, Class(c).String())
		require.Equal(t, want.Classes[c].Bytes, got.Classes[c].Bytes, Class(c).String())
	}
	require.Equal(t, int64(1), got.Classes[ClassCritical].Records)
}

func TestGroupCommit(t *testing.T) {
	s := openTemp(t)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := s.Append(context.Background(), batch(ClassNormal, 1, 200), nil)
				require.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	require.Equal(t, uint64(writers*each), st.Appended)
	require.Less(t, st.Commits, uint64(writers*each), "concurrent appends share commits")
}

func TestCorruptSpoolMovedAside(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "spool")
	s := openWith(t, dir, DefaultConfig(), nil)
	first, err := s.appendBytes(payloads("old", 3), nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "MANIFEST"), []byte("this is not a manifest"), 0o600))

	s = openWith(t, dir, DefaultConfig(), nil)
	st := s.Stats()
	require.Contains(t, st.Recovered, "moved aside to "+dir+".corrupt-")
	require.Zero(t, st.Records)
	require.Greater(t, st.NextSeq, first+2, "a fresh spool never reuses numbers")
	matches, err := filepath.Glob(dir + ".corrupt-*")
	require.NoError(t, err)
	require.Len(t, matches, 1)
	_, err = os.Stat(filepath.Join(matches[0], "MANIFEST"))
	require.NoError(t, err, "the damaged spool is kept for inspection")
}

func TestLockedSpoolIsNotMovedAside(t *testing.T) {
	dir := t.TempDir()
	openWith(t, dir, DefaultConfig(), nil)
	_, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.Error(t, err)
	matches, _ := filepath.Glob(dir + ".corrupt-*")
	require.Empty(t, matches, "a spool in use by another process is not corrupt")
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"4GiB": 4 << 30, "512MiB": 512 << 20, "10GB": 10e9, "1000": 1000, " 2 KiB": 2048} {
		var b ByteSize
		require.NoError(t, b.UnmarshalText([]byte(in)), in)
		require.Equal(t, want, b, in)
	}
	for _, bad := range []string{"", "lots", "-1MiB", "1.5GiB", "99999999999TiB"} {
		var b ByteSize
		require.ErrorContains(t, b.UnmarshalText([]byte(bad)), "is not a size", bad)
	}
	require.Equal(t, "4GiB", ByteSize(4<<30).String())
	require.Equal(t, "1000", ByteSize(1000).String())
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	err := Config{MaxBytes: 10, MaxAge: -1, Profile: "huge"}.Validate()
	for _, want := range []string{"max_bytes: 10 is below", "max_age: -1ns is negative", `profile: "huge"`} {
		require.ErrorContains(t, err, want)
	}

	// A 32-bit board maps at most 1GiB of backlog, with the small profile.
	require.NoError(t, Config{MaxBytes: MaxBytes32, Profile: ProfileSmall}.validate(32))
	require.Equal(t, ByteSize(MaxBytes32), defaultMaxBytes(32))
	require.Equal(t, ByteSize(DefaultMaxBytes), defaultMaxBytes(64))
	err = Config{MaxBytes: 4 << 30, Profile: ProfileLarge}.validate(32)
	require.ErrorContains(t, err, "max_bytes: 4GiB is more than a 32-bit board can map; at most 1GiB")
	require.ErrorContains(t, err, `profile: "large" maps more than a 32-bit address space`)
	require.NoError(t, Config{MaxBytes: 4 << 30, Profile: ProfileLarge}.validate(64))
	require.NoError(t, Config{Profile: ProfileSmall}.validate(32), "0 is the platform default")
}

// TestEmptyLogLeftByCrash: a memtable file killed between its creation and
// its sizing is empty, and Badger refuses to open beside it
// (dgraph-io/badger#2207). Open removes it instead of moving the spool
// aside.
func TestEmptyLogLeftByCrash(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	first, err := s.appendBytes(payloads("kept", 3), []Checkpoint{{Source: "f", Position: []byte("9")}})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "00099.mem"), nil, 0o600))

	s = openAt(t, dir)
	st := s.Stats()
	require.Empty(t, st.Recovered)
	recs, err := s.Read(0, 10, 0)
	require.NoError(t, err)
	require.Equal(t, seqRange(first, 3), seqs(recs))
	_, err = os.Stat(filepath.Join(dir, "00099.mem"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
