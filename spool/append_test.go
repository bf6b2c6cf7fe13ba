package spool

import (
	"cmp"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckpoints(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)

	pos, err := s.Checkpoint("file:/var/log/app.log")
	require.NoError(t, err)
	require.Nil(t, pos, "no checkpoint yet")

	_, err = s.appendBytes(payloads("l", 3), []Checkpoint{
		{Source: "file:/var/log/app.log", Position: []byte("inode=7 off=100")},
		{Source: "journal", Position: []byte("cursor-a")},
	})
	require.NoError(t, err)
	_, err = s.appendBytes(payloads("l", 2), []Checkpoint{{Source: "file:/var/log/app.log", Position: []byte("inode=7 off=160")}})
	require.NoError(t, err)
	first, err := s.appendBytes(nil, []Checkpoint{{Source: "journal", Position: []byte("cursor-b")}, {Source: "empty", Position: nil}})
	require.NoError(t, err)
	require.Zero(t, first, "checkpoints alone")
	require.Equal(t, int64(5), s.Stats().Records)

	_, err = s.appendBytes(payloads("l", 1), []Checkpoint{{Position: []byte("x")}})
	require.Error(t, err, "a checkpoint without a source")
	require.Equal(t, int64(5), s.Stats().Records, "a refused append stores nothing")

	want := map[string][]byte{
		"file:/var/log/app.log": []byte("inode=7 off=160"),
		"journal":               []byte("cursor-b"),
		"empty":                 {},
		"unknown":               nil,
	}
	check := func(s *Spool) {
		t.Helper()
		for src, w := range want {
			got, err := s.Checkpoint(src)
			require.NoError(t, err)
			require.Equal(t, w, got, src)
		}
	}
	check(s)
	require.NoError(t, s.Close())
	check(openAt(t, dir))
}

func TestConcurrentAppenders(t *testing.T) {
	s := openTemp(t)
	const (
		writers = 8
		calls   = 40
	)
	type batch struct {
		first uint64
		recs  [][]byte
	}
	results := make([][]batch, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for c := range calls {
				n := 1 + (w+c)%7
				recs := make([][]byte, n)
				for i := range recs {
					recs[i] = binary.BigEndian.AppendUint32(nil, uint32(w<<24|c<<8|i))
				}
				first, err := s.appendBytes(recs, nil)
				if err != nil {
					t.Error(err)
					return
				}
				results[w] = append(results[w], batch{first, recs})
			}
		})
	}
	wg.Wait()
	require.False(t, t.Failed())

	want := map[uint64][]byte{}
	var all []batch
	for _, r := range results {
		all = append(all, r...)
	}
	slices.SortFunc(all, func(a, b batch) int { return cmp.Compare(a.first, b.first) })
	for i, b := range all {
		if i > 0 {
			prev := all[i-1]
			require.Equal(t, prev.first+uint64(len(prev.recs)), b.first, "batches must tile the sequence space")
		}
		for j, r := range b.recs {
			want[b.first+uint64(j)] = r
		}
	}

	var got []Record
	for cursor := all[0].first; ; {
		recs, err := s.Read(cursor, 50, 0)
		require.NoError(t, err)
		if len(recs) == 0 {
			break
		}
		got = append(got, recs...)
		cursor = recs[len(recs)-1].Seq + 1
	}
	require.Len(t, got, len(want))
	for i, r := range got {
		require.Equal(t, all[0].first+uint64(i), r.Seq)
		require.Equal(t, want[r.Seq], r.Data)
	}
	require.Equal(t, int64(len(want)), s.Stats().Records)
}

func TestAppendedWakesWaiter(t *testing.T) {
	s := openTemp(t)
	ch := s.Appended()

	_, err := s.appendBytes(nil, []Checkpoint{{Source: "s", Position: []byte("p")}})
	require.NoError(t, err)
	select {
	case <-ch:
		t.Fatal("a checkpoint-only append must not wake readers")
	default:
	}

	woke := make(chan []Record, 1)
	go func() {
		<-ch
		recs, _ := s.Read(0, 10, 0)
		woke <- recs
	}()
	time.Sleep(10 * time.Millisecond)
	first, err := s.appendBytes(payloads("w", 2), nil)
	require.NoError(t, err)
	select {
	case recs := <-woke:
		require.Equal(t, seqRange(first, 2), seqs(recs))
	case <-time.After(10 * time.Second):
		t.Fatal("waiter not woken")
	}

	next := s.Appended()
	require.NotEqual(t, ch, next, "a fresh channel after the broadcast")
	select {
	case <-next:
		t.Fatal("the new channel must be open")
	default:
	}
}
