package spool

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// appendLines appends n records from source, each with its checkpoint,
// the way a tailer does: the position is the number of lines read.
func appendLines(t *testing.T, s *Spool, source string, from, n int) (first uint64) {
	t.Helper()
	for i := from; i < from+n; i += 10 {
		entries := make([]Entry, 10)
		for j := range entries {
			entries[j] = Entry{Class: ClassNormal, Data: fmt.Appendf(nil, "%s:%d", source, i+j+1)}
		}
		f, err := s.Append(context.Background(), entries, []Checkpoint{{Source: source, Position: strconv.AppendInt(nil, int64(i+10), 10)}})
		require.NoError(t, err)
		if first == 0 {
			first = f
		}
	}
	return first
}

// TestPositionsSurviveMoveAside is the field fault: a spool that cannot be
// opened is moved aside, and the old spool took every source's position
// with it, so each tailed file was read again from the start and the
// collector got duplicates. Now the fresh spool starts each source where
// the collector's acknowledgements left it: nothing acknowledged is read
// twice, nothing spooled but unacknowledged is lost.
func TestPositionsSurviveMoveAside(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "spool")
	s := openAt(t, dir)
	first := appendLines(t, s, "file:/var/log/a", 0, 100)
	appendLines(t, s, "file:/var/log/b", 0, 50)
	// The collector acknowledges a's first 60 lines and none of b's...
	require.NoError(t, s.Ack(first+59))
	// ...and b's checkpoint is deleted (its file went away) after a's
	// records, acknowledged below.
	_, err := s.Append(context.Background(), nil, []Checkpoint{{Source: "file:/var/log/gone", Position: []byte("7")}})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "MANIFEST"), []byte("damaged"), 0o600))

	s = openAt(t, dir)
	st := s.Stats()
	require.Contains(t, st.Recovered, "moved aside")
	require.Contains(t, st.Recovered, "positions of 2 sources restored")
	pos, err := s.Checkpoint("file:/var/log/a")
	require.NoError(t, err)
	require.Equal(t, "60", string(pos), "a resumes after its last acknowledged line")
	pos, err = s.Checkpoint("file:/var/log/b")
	require.NoError(t, err)
	require.Nil(t, pos, "b had nothing acknowledged: it is read again from its start")
	pos, err = s.Checkpoint("file:/var/log/gone")
	require.NoError(t, err)
	require.Equal(t, "7", string(pos), "a position committed without records is held at once")
}

// TestPositionsFollowAcks checks the positions file against the
// acknowledgements as they move, across a restart (which makes every
// checkpoint pending again until the backlog of the time is acknowledged).
func TestPositionsFollowAcks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s := openAt(t, dir)
	held := func() map[string]string {
		m, err := loadPositions(PositionsPath(dir))
		require.NoError(t, err)
		out := map[string]string{}
		for k, v := range m {
			out[k] = string(v)
		}
		return out
	}
	first := appendLines(t, s, "src", 0, 30)
	require.Empty(t, held())
	require.NoError(t, s.Ack(first+14)) // mid-batch: the batch ending at 10 is held
	require.Equal(t, map[string]string{"src": "10"}, held())
	require.NoError(t, s.Ack(first+29))
	require.Equal(t, map[string]string{"src": "30"}, held())
	appendLines(t, s, "src", 30, 10)
	require.NoError(t, s.Close())

	s = openAt(t, dir)
	require.Equal(t, map[string]string{"src": "30"}, held(), "pending across a restart")
	next := s.Stats().NextSeq
	_, err := s.Append(context.Background(), nil, []Checkpoint{{Source: "src", Delete: true}})
	require.NoError(t, err)
	require.NoError(t, s.Ack(next-1))
	require.Empty(t, held(), "the delete is held once the records before it are")
}

func TestPositionsFileTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p")
	p := newPositions(path)
	p.committed([]Checkpoint{{Source: "a", Position: []byte("1")}, {Source: "b", Position: []byte("2")}}, 0, 0)
	require.NoError(t, p.flush())
	p.committed([]Checkpoint{{Source: "a", Position: []byte("3")}}, 0, 0)
	require.NoError(t, p.flush())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	// A torn last entry, then a damaged one.
	for _, tail := range [][]byte{{0x10, 1, 2}, append(appendPosEntry(nil, posSet, "a", []byte("9"))[:5], 0xff)} {
		require.NoError(t, os.WriteFile(path, append(b, tail...), 0o600))
		held, err := loadPositions(path)
		require.NoError(t, err)
		require.Equal(t, map[string][]byte{"a": []byte("3"), "b": []byte("2")}, held)
	}
	require.NoError(t, os.WriteFile(path, []byte("something else"), 0o600))
	_, err = loadPositions(path)
	require.ErrorContains(t, err, "not a positions file")
}

func TestPositionsPendingIsBounded(t *testing.T) {
	p := newPositions(filepath.Join(t.TempDir(), "p"))
	for i := range uint64(10 * maxPending) {
		p.committed([]Checkpoint{{Source: "a", Position: strconv.AppendUint(nil, i+1, 10)}}, 100+i, 0)
	}
	require.LessOrEqual(t, len(p.pending["a"]), maxPending)
	p.acked(100 + 10*maxPending - 1)
	require.Equal(t, strconv.Itoa(10*maxPending), string(p.held["a"]), "the newest is always kept")
	require.Empty(t, p.pending)
}

// TestMoveAsideReportedUntilAcknowledged: a crash after the spool was
// moved aside but before the gateway spooled its record of it must not
// lose the report; and once reported, it is not reported again.
func TestMoveAsideReportedUntilAcknowledged(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "spool")
	s := openAt(t, dir)
	require.NoError(t, s.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "MANIFEST"), nil, 0o600))
	s = openAt(t, dir)
	require.Contains(t, s.Stats().Recovered, "moved aside")
	require.NoError(t, s.Close()) // killed before reporting

	s = openAt(t, dir)
	require.Contains(t, s.Stats().Recovered, "moved aside", "reported again at the next start")
	s.RecoveryReported()
	require.NoError(t, s.Close())
	s = openAt(t, dir)
	require.Empty(t, s.Stats().Recovered)
	matches, _ := filepath.Glob(dir + ".corrupt-*/" + asideMarker + ".reported")
	require.Len(t, matches, 1, "the reason stays with the old spool")
}

// FuzzPositions: the positions file is read back after crashes and power
// cuts; whatever it holds must not crash the spool's Open, and what reads
// back must write and read again the same.
func FuzzPositions(f *testing.F) {
	f.Add([]byte(positionsMagic))
	valid := []byte(positionsMagic)
	valid = appendPosEntry(valid, posSet, "file:/var/log/app.log", []byte{1, 2, 3})
	valid = appendPosEntry(valid, posSet, "audit", nil)
	valid = appendPosEntry(valid, posDelete, "file:/var/log/app.log", nil)
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Fuzz(func(t *testing.T, in []byte) {
		held, err := readPositions(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			return
		}
		p := &positions{held: held}
		out := []byte(positionsMagic)
		for _, src := range sortedKeys(p.held) {
			out = appendPosEntry(out, posSet, src, p.held[src])
		}
		again, err := readPositions(bufio.NewReader(bytes.NewReader(out)))
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if len(again) != len(held) {
			t.Fatalf("re-read %d positions, wrote %d", len(again), len(held))
		}
		for k, v := range held {
			if !bytes.Equal(again[k], v) {
				t.Fatalf("%q: re-read %x, wrote %x", k, again[k], v)
			}
		}
	})
}
