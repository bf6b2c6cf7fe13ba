package spool

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/merkle"
)

func TestTreeFollowsTheRecords(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	h := s.Tree()
	require.Equal(t, "new spool", h.Began)
	require.Zero(t, h.Size)
	require.Equal(t, merkle.EmptyRoot, h.Root)
	require.Equal(t, s.Stats().NextSeq, h.First)

	var leaves []merkle.Hash
	for b := range 5 {
		entries := make([]Entry, 3+b)
		for i := range entries {
			entries[i] = Entry{Class: Class(i % int(numClasses)), Data: fmt.Appendf(nil, "batch %d record %d", b, i)}
		}
		first, err := s.Append(context.Background(), entries, nil)
		require.NoError(t, err)
		for i, e := range entries {
			leaves = append(leaves, merkle.RecordLeaf(first+uint64(i), e.Data))
		}
		h := s.Tree()
		require.Equal(t, uint64(len(leaves)), h.Size)
		require.Equal(t, merkle.Root(leaves), h.Root)
	}
	// Acknowledged records stay leaves.
	require.NoError(t, s.Ack(h.First+4))
	require.NoError(t, s.Close())

	s, err = Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer s.Close()
	h2 := s.Tree()
	require.Empty(t, h2.Began, "the log must continue across a restart")
	require.Equal(t, h.First, h2.First)
	require.Equal(t, merkle.Root(leaves), h2.Root)
	first, err := s.Append(context.Background(), []Entry{{Class: ClassNormal, Data: []byte("after")}}, nil)
	require.NoError(t, err)
	leaves = append(leaves, merkle.RecordLeaf(first, []byte("after")))
	require.Equal(t, merkle.Root(leaves), s.Tree().Root)
	require.Equal(t, h.First+uint64(len(leaves)), s.Stats().NextSeq)
}

// TestTreeContinuesBeforeFirstAppend: a spool that stops (or is killed)
// between its creation and its first commit reopens with its Merkle log
// continuing where it began, not begun again.
func TestTreeContinuesBeforeFirstAppend(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	h := s.Tree()
	require.Equal(t, "new spool", h.Began)
	require.NoError(t, s.Close())

	s, err = Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer s.Close()
	h2 := s.Tree()
	require.Empty(t, h2.Began, "the log of a spool with no record yet must continue")
	require.Equal(t, h.First, h2.First)
	require.Zero(t, h2.Size)
	require.Equal(t, merkle.EmptyRoot, h2.Root)
}

func TestEvictionsAreLogged(t *testing.T) {
	dir := t.TempDir()
	s := openWith(t, dir, tinyConfig(), nil)
	ctx := context.Background()
	// Fill with bulk records until they wait, then a critical batch
	// evicts the oldest of them.
	data := map[uint64][]byte{}
	for {
		entries := make([]Entry, 64)
		for i := range entries {
			entries[i] = Entry{Class: ClassBulk, Data: fmt.Appendf(make([]byte, 0, 1000), "%0900d", len(data)+i)}
		}
		c, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		first, err := s.Append(c, entries, nil)
		cancel()
		if err != nil {
			break
		}
		for i, e := range entries {
			data[first+uint64(i)] = e.Data
		}
	}
	require.Empty(t, mustEvictions(t, s, 0))
	_, err := s.Append(ctx, batch(ClassCritical, 200, 1000), nil)
	require.NoError(t, err)
	ev := mustEvictions(t, s, 0)
	require.NotEmpty(t, ev)
	require.Equal(t, s.Stats().Classes[ClassBulk].Evicted, int64(len(ev)))
	for i, e := range ev {
		require.Equal(t, uint64(i), e.N)
		require.Equal(t, merkle.RecordLeaf(e.Seq, data[e.Seq]), e.Leaf, "eviction %d (seq %d): leaf hash", i, e.Seq)
	}
	require.Equal(t, uint64(len(ev)), s.EvictionsNext())

	// Forgetting what a seal declared keeps the rest, across a restart.
	half := uint64(len(ev) / 2)
	require.NoError(t, s.ForgetEvictions(half))
	require.NoError(t, s.Close())
	s = openWith(t, dir, tinyConfig(), nil)
	rest := mustEvictions(t, s, 0)
	require.Equal(t, ev[half:], rest)
	require.Equal(t, uint64(len(ev)), s.EvictionsNext())
}

func TestExpiryIsLogged(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := func() time.Time { return now }
	cfg := tinyConfig()
	cfg.MaxAge = time.Hour
	s := openWith(t, dir, cfg, clock)
	first, err := s.Append(context.Background(), []Entry{{Class: ClassNormal, Data: []byte("old")}, {Class: ClassCritical, Data: []byte("kept")}}, nil)
	require.NoError(t, err)
	now = now.Add(2 * time.Hour)
	s.expire()
	ev := mustEvictions(t, s, 0)
	require.Len(t, ev, 1)
	require.Equal(t, first, ev[0].Seq)
	require.Equal(t, merkle.RecordLeaf(first, []byte("old")), ev[0].Leaf)
}

func mustEvictions(t *testing.T, s *Spool, from uint64) []Eviction {
	t.Helper()
	ev, err := s.Evictions(from, 1<<20)
	require.NoError(t, err)
	return ev
}

func TestAppendHeadCoversWhatPrecedesIt(t *testing.T) {
	s := openWith(t, t.TempDir(), tinyConfig(), nil)
	ctx := context.Background()
	var leaves []merkle.Hash
	var mu sync.Mutex
	// Appends race with the heads: each head must still cover exactly the
	// records before it.
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				_, err := s.Append(ctx, []Entry{{Class: ClassNormal, Data: fmt.Appendf(nil, "w%d-%d", w, i)}}, nil)
				require.NoError(t, err)
			}
		}()
	}
	type built struct {
		seq  uint64
		head TreeHead
		data []byte
	}
	var heads []built
	for i := range 20 {
		var h TreeHead
		var data []byte
		seq, err := s.AppendHead(ctx, ClassCritical, 100, 0, 0, func(th TreeHead) ([]byte, error) {
			h = th
			data = fmt.Appendf(nil, "head %d size %d root %x", i, th.Size, th.Root[:4])
			return data, nil
		}, []Checkpoint{{Source: "seal", Position: []byte{byte(i)}}})
		require.NoError(t, err)
		require.Equal(t, h.First+h.Size, seq, "head %d does not end just before its own record", i)
		heads = append(heads, built{seq, h, data})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	recs, err := s.Read(0, 1<<20, 0)
	require.NoError(t, err)
	first := s.Tree().First
	for _, r := range recs {
		require.Equal(t, first+uint64(len(leaves)), r.Seq)
		leaves = append(leaves, merkle.RecordLeaf(r.Seq, r.Data))
	}
	for _, b := range heads {
		n := b.seq - first
		require.Equal(t, merkle.Root(leaves[:n]), b.head.Root, "head at %d", b.seq)
		require.Equal(t, merkle.RecordLeaf(b.seq, b.data), leaves[n], "the head's record holds what build returned")
	}
	pos, err := s.Checkpoint("seal")
	require.NoError(t, err)
	require.Equal(t, []byte{19}, pos)
	_, err = s.AppendHead(ctx, ClassCritical, 4, 0, 0, func(TreeHead) ([]byte, error) { return []byte("too long"), nil }, nil)
	require.ErrorContains(t, err, "more than the 4 reserved")
}
