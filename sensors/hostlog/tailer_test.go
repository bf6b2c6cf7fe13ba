package hostlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/spool"
)

func TestAppendedLinesArriveOnceInOrder(t *testing.T) {
	p := tempLog(t, "app.log")
	write(t, p, "one\n")
	s := newFakeSpool()
	start(t, testConfig(p), s)
	s.waitMsgs(t, "one")
	write(t, p, "two\r\n")
	s.waitMsgs(t, "one", "two")
	write(t, p, "\nthree\nfour\n")
	s.waitMsgs(t, "one", "two", "", "three", "four")

	got := s.got()
	offsets := make([]uint64, len(got))
	for i, l := range got {
		offsets[i] = l.Offset
		require.Equal(t, p, l.Path)
		require.False(t, l.Truncated)
	}
	require.Equal(t, []uint64{0, 4, 9, 10, 16}, offsets)
	cp := s.checkpoint(t, p)
	require.Equal(t, int64(21), cp.Off)
	require.False(t, cp.Cont)
}

func TestPartialLineWaitsForItsNewline(t *testing.T) {
	p := tempLog(t, "app.log")
	write(t, p, "hel")
	s := newFakeSpool()
	tl, _ := start(t, testConfig(p), s)
	s.waitMsgs(t)
	write(t, p, "lo\nwor")
	s.waitMsgs(t, "hello")
	require.Equal(t, int64(6), s.checkpoint(t, p).Off, "the partial line is not committed")
	write(t, p, "ld\n")
	s.waitMsgs(t, "hello", "world")
	require.Equal(t, int64(12), s.checkpoint(t, p).Off)
	require.Equal(t, uint64(2), tl.Status().Lines)
}

func TestRenameRotation(t *testing.T) {
	for _, glob := range []string{"app.log", "app.log*"} {
		t.Run(glob, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "app.log")
			write(t, p, "a1\na2\n")
			s := newFakeSpool()
			start(t, testConfig(filepath.Join(dir, glob)), s)
			s.waitMsgs(t, "a1", "a2")

			// a3 lands just before the rename: it is read from the old
			// descriptor, before anything of the new file.
			write(t, p, "a3\n")
			require.NoError(t, os.Rename(p, p+".1"))
			write(t, p, "b1\n")
			write(t, p, "b2\n")
			s.waitMsgs(t, "a1", "a2", "a3", "b1", "b2")
			write(t, p, "b3\n")
			s.waitMsgs(t, "a1", "a2", "a3", "b1", "b2", "b3")
			got := s.got()
			require.Equal(t, uint64(0), got[3].Offset, "the new file is read from its start")
			require.Equal(t, p, got[3].Path)

			// The new file's checkpoint names the new inode.
			fi, err := os.Stat(p)
			require.NoError(t, err)
			id := idOf(fi)
			fp, err := takeFingerprint(strings.NewReader("b1\nb2\nb3\n"), 9)
			require.NoError(t, err)
			require.Equal(t, position{Dev: id.dev, Ino: id.ino, Off: 9, FpLen: 9, Fp: fp.sum}, s.checkpoint(t, p))
		})
	}
}

func TestRotatedFileWithinGlobKeepsBeingFollowed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	write(t, p, "a1\n")
	s := newFakeSpool()
	start(t, testConfig(filepath.Join(dir, "app.log*")), s)
	s.waitMsgs(t, "a1")
	require.NoError(t, os.Rename(p, p+".1"))
	s.waitMsgs(t, "a1")
	// A writer that has not reopened yet still appends to the old file.
	write(t, p+".1", "a2\n")
	s.waitMsgs(t, "a1", "a2")
	require.Equal(t, p+".1", s.got()[1].Path)
	require.Equal(t, int64(6), s.checkpoint(t, p+".1").Off)
}

func TestTruncationRestartsAtZero(t *testing.T) {
	p := tempLog(t, "app.log")
	write(t, p, "a long first line\nanother one\n")
	s := newFakeSpool()
	start(t, testConfig(p), s)
	s.waitMsgs(t, "a long first line", "another one")
	require.NoError(t, os.Truncate(p, 0))
	write(t, p, "new\n")
	s.waitMsgs(t, "a long first line", "another one", "new")
	require.Equal(t, uint64(0), s.got()[2].Offset)
	require.Equal(t, int64(4), s.checkpoint(t, p).Off)
}

func TestDeletedFileIsFinishedThenDropped(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	write(t, p, "a1\n")
	s := newFakeSpool()
	tl, _ := start(t, testConfig(filepath.Join(dir, "*.log")), s)
	s.waitMsgs(t, "a1")
	write(t, p, "a2\nno newline")
	require.NoError(t, os.Remove(p))
	s.waitMsgs(t, "a1", "a2", "no newline")
	require.Eventually(t, func() bool { return len(tl.Status().Files) == 0 }, 5*time.Second, 5*time.Millisecond)
}

func TestRestartNeitherRepeatsNorLoses(t *testing.T) {
	for _, startAt := range []string{StartAtBeginning, StartAtEnd} {
		t.Run(startAt, func(t *testing.T) {
			p := tempLog(t, "app.log")
			write(t, p, "before\n")
			s := newFakeSpool()
			cfg := testConfig(p)
			cfg.StartAt = startAt
			var want []string
			if startAt == StartAtBeginning {
				want = append(want, "before")
			}

			tl, stop := start(t, cfg, s)
			waitFollowing(t, tl, 1)
			write(t, p, "one\ntw")
			want = append(want, "one")
			s.waitMsgs(t, want...)
			stop()

			// Written while the gateway is down, the partial line included.
			write(t, p, "o\nthree\n")
			want = append(want, "two", "three")
			start(t, cfg, s)
			s.waitMsgs(t, want...)
			require.Equal(t, int64(len("before\none\ntwo\nthree\n")), s.checkpoint(t, p).Off)
		})
	}
}

func TestRestartWhileDownRotationReadsNewFileFromStart(t *testing.T) {
	p := tempLog(t, "app.log")
	write(t, p, "old1\n")
	s := newFakeSpool()
	_, stop := start(t, testConfig(p), s)
	s.waitMsgs(t, "old1")
	stop()
	require.NoError(t, os.Rename(p, p+".1"))
	write(t, p, "new1\nnew2\n")
	start(t, testConfig(p), s)
	s.waitMsgs(t, "old1", "new1", "new2")
}

func TestStartAt(t *testing.T) {
	tests := []struct {
		startAt string
		want    []string
	}{
		{StartAtBeginning, []string{"old", "new"}},
		{StartAtEnd, []string{"new"}},
		{"", []string{"new"}}, // default: end
	}
	for _, tt := range tests {
		t.Run(tt.startAt, func(t *testing.T) {
			p := tempLog(t, "app.log")
			write(t, p, "old\n")
			cfg := testConfig(p)
			cfg.StartAt = tt.startAt
			s := newFakeSpool()
			tl, _ := start(t, cfg, s)
			waitFollowing(t, tl, 1)
			write(t, p, "new\n")
			s.waitMsgs(t, tt.want...)
		})
	}
}

func TestFileCreatedLaterIsReadFromBeginning(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(filepath.Join(dir, "*.log"))
	cfg.StartAt = StartAtEnd
	s := newFakeSpool()
	tl, _ := start(t, cfg, s)
	// Let a few scans pass without the file.
	require.Eventually(t, tl.running.Load, 5*time.Second, time.Millisecond)
	time.Sleep(3 * testPoll)
	write(t, filepath.Join(dir, "late.log"), "first\nsecond\n")
	s.waitMsgs(t, "first", "second")
}

func TestOverlongLinesAreSplitAndFlagged(t *testing.T) {
	p := tempLog(t, "app.log")
	cfg := testConfig(p)
	cfg.MaxLineBytes = 8
	write(t, p, "0123456789abcdefghij\nshort\n01234567\r\n")
	s := newFakeSpool()
	start(t, cfg, s)
	s.waitMsgs(t, "01234567", "89abcdef", "ghij", "short", "01234567")
	got := s.got()
	for i := range got {
		got[i].Fingerprint = ""
	}
	require.Equal(t, []line{
		{Msg: "01234567", Path: p, Offset: 0, Truncated: true, Part: 0},
		{Msg: "89abcdef", Path: p, Offset: 8, Truncated: true, Part: 1},
		{Msg: "ghij", Path: p, Offset: 16, Truncated: true, Part: 2},
		{Msg: "short", Path: p, Offset: 21},
		{Msg: "01234567", Path: p, Offset: 27},
	}, got)

	// An overlong line still being written goes out piece by piece; the
	// piece after a restart is flagged too.
	write(t, p, "ABCDEFGHIJ")
	s.waitMsgs(t, "01234567", "89abcdef", "ghij", "short", "01234567", "ABCDEFGH")
	require.True(t, s.checkpoint(t, p).Cont)
}

func TestOverlongPieceFlagSurvivesRestart(t *testing.T) {
	p := tempLog(t, "app.log")
	cfg := testConfig(p)
	cfg.MaxLineBytes = 4
	write(t, p, "abcdefg")
	s := newFakeSpool()
	_, stop := start(t, cfg, s)
	s.waitMsgs(t, "abcd")
	stop()
	write(t, p, "\nx\n")
	start(t, cfg, s)
	s.waitMsgs(t, "abcd", "efg", "x")
	require.Equal(t, []bool{true, true, false}, []bool{s.got()[0].Truncated, s.got()[1].Truncated, s.got()[2].Truncated})
}

func TestInvalidUTF8IsKeptByteForByte(t *testing.T) {
	p := tempLog(t, "app.log")
	raw := "\xff\xfe bad \xc3\x28 \xe2\x82 end\x00"
	write(t, p, raw+"\n")
	s := newFakeSpool()
	start(t, testConfig(p), s)
	s.waitMsgs(t, raw)
	require.Equal(t, []byte(raw), []byte(s.got()[0].Msg))
}

func TestEmitFailureRetriesSameLines(t *testing.T) {
	p := tempLog(t, "app.log")
	write(t, p, "one\ntwo\n")
	s := newFakeSpool()
	s.failNext = 1
	tl, _ := start(t, testConfig(p), s)
	s.waitMsgs(t, "one", "two")
	write(t, p, "three\n")
	s.waitMsgs(t, "one", "two", "three")
	st := tl.Status()
	require.Equal(t, uint64(1), st.Errors)
	require.Contains(t, st.LastError, "spool full")
	require.Contains(t, st.LastError, p)
	require.Equal(t, uint64(3), st.Lines)
}

func TestSeveralFilesViaGlob(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	write(t, a, "a1\n")
	write(t, b, "b1\n")
	write(t, filepath.Join(dir, "c.log.gz"), "compressed\n")
	write(t, filepath.Join(dir, "d.txt"), "not matched\n")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "dir.log"), 0o755))
	s := newFakeSpool()
	tl, _ := start(t, testConfig(filepath.Join(dir, "*.log"), filepath.Join(dir, "*.log*")), s)
	s.waitMsgs(t, "a1", "b1")
	write(t, b, "b2\n")
	write(t, a, "a2\n")
	require.Eventually(t, func() bool { return len(s.got()) == 4 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(5 * testPoll)

	perFile := map[string][]string{}
	for _, l := range s.got() {
		perFile[l.Path] = append(perFile[l.Path], l.Msg)
	}
	require.Equal(t, map[string][]string{a: {"a1", "a2"}, b: {"b1", "b2"}}, perFile)
	require.Equal(t, int64(6), s.checkpoint(t, a).Off)
	require.Equal(t, int64(6), s.checkpoint(t, b).Off)

	require.Eventually(t, func() bool {
		st := tl.Status()
		return len(st.Files) == 2 && st.Files[0].Offset == 6 && st.Files[1].Offset == 6
	}, 5*time.Second, 5*time.Millisecond)
	st := tl.Status()
	require.Equal(t, FileStatus{Path: a, Offset: 6, Size: 6, Lines: 2, Open: true}, st.Files[0])
	require.Equal(t, FileStatus{Path: b, Offset: 6, Size: 6, Lines: 2, Open: true}, st.Files[1])
	require.Equal(t, uint64(4), st.Lines)
}

func TestBatchesAreBounded(t *testing.T) {
	p := tempLog(t, "app.log")
	var sb strings.Builder
	var want []string
	for i := range 2500 {
		fmt.Fprintf(&sb, "line %d\n", i)
		want = append(want, fmt.Sprintf("line %d", i))
	}
	write(t, p, sb.String())
	s := newFakeSpool()
	start(t, testConfig(p), s)
	s.waitMsgs(t, want...)
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for _, n := range s.batches {
		require.LessOrEqual(t, n, maxBatchLines)
		total += n
	}
	require.Equal(t, 2500, total)
	require.Greater(t, len(s.batches), 2500/maxBatchLines, "batches are cut by lines or bytes")
	require.LessOrEqual(t, slices.Max(s.encoded), spool.MaxAppendBytes)
}

// TestBatchesFitOneSpoolAppend: a batch is one spool append, which holds at
// most spool.MaxAppendBytes; the worst case is a long path, a batch nearly
// full of short lines, and a longest line last.
func TestBatchesFitOneSpoolAppend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 200), strings.Repeat("e", 200))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	p := filepath.Join(dir, "app.log")
	var sb strings.Builder
	var want []string
	add := func(l string) {
		sb.WriteString(l + "\n")
		want = append(want, l)
	}
	for i := range 3 {
		for j := range 200 {
			add(fmt.Sprintf("%d-%d %s", i, j, strings.Repeat("x", 600)))
		}
		add(strings.Repeat(string(rune('A'+i)), MaxMaxLineBytes))
	}
	write(t, p, sb.String())
	cfg := testConfig(p)
	cfg.MaxLineBytes = MaxMaxLineBytes
	s := newFakeSpool()
	start(t, cfg, s)
	s.waitMsgs(t, want...)
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Greater(t, slices.Max(s.encoded), spool.MaxAppendBytes/2, "the test must come near the limit")
	require.LessOrEqual(t, slices.Max(s.encoded), spool.MaxAppendBytes)
}

// stampedSpool is a spool behind a sink that says what its stamp adds
// (StampSizer), and encodes with that stamp.
type stampedSpool struct{ *fakeSpool }

func (s stampedSpool) StampBytes() int { return len(s.id) + len(s.host) }

// TestBatchesSizedByTheStamp: a sink that says its stamp is short gets
// fuller batches (each one fsynced commit), and they still fit one spool
// append, in the worst case of TestBatchesFitOneSpoolAppend too.
func TestBatchesSizedByTheStamp(t *testing.T) {
	lines := func(n int) (string, []string) {
		var sb strings.Builder
		var want []string
		for i := range n {
			l := fmt.Sprintf("%06d %s", i, strings.Repeat("x", 192))
			sb.WriteString(l + "\n")
			want = append(want, l)
		}
		return sb.String(), want
	}
	run := func(stamped bool) []int {
		p := tempLog(t, "app.log")
		text, want := lines(3000)
		write(t, p, text)
		s := newFakeSpool()
		var sink Sink = s
		if stamped {
			s.id, s.host = "gw-17", "pumping-station"
			sink = stampedSpool{s}
		}
		tl, err := NewTailer(testConfig(p), s, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tl.Run(ctx, sink) }()
		s.waitMsgs(t, want...)
		cancel()
		require.NoError(t, <-done)
		s.mu.Lock()
		defer s.mu.Unlock()
		require.LessOrEqual(t, slices.Max(s.encoded), spool.MaxAppendBytes)
		return s.batches
	}
	plain, stamped := slices.Max(run(false)), slices.Max(run(true))
	t.Logf("200-byte lines per batch: %d with the longest stamp, %d with a short one", plain, stamped)
	require.Greater(t, stamped, plain*3/2, "a short stamp makes batches half as large again")

	// The worst case: a long path, short lines filling the batch, the
	// longest line last; a stamp one byte short of the longest.
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 200), strings.Repeat("e", 200))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	p := filepath.Join(dir, "app.log")
	var sb strings.Builder
	var want []string
	for i := range 3 {
		for j := range 200 {
			l := fmt.Sprintf("%d-%d %s", i, j, strings.Repeat("x", 600))
			sb.WriteString(l + "\n")
			want = append(want, l)
		}
		l := strings.Repeat(string(rune('A'+i)), MaxMaxLineBytes)
		sb.WriteString(l + "\n")
		want = append(want, l)
	}
	write(t, p, sb.String())
	cfg := testConfig(p)
	cfg.MaxLineBytes = MaxMaxLineBytes
	s := newFakeSpool()
	s.id, s.host = "g", strings.Repeat("h", maxStamp-2)
	tl, err := NewTailer(cfg, s, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = tl.Run(ctx, stampedSpool{s}) }()
	s.waitMsgs(t, want...)
	s.mu.Lock()
	defer s.mu.Unlock()
	require.LessOrEqual(t, slices.Max(s.encoded), spool.MaxAppendBytes)
}

func TestCheckpointStoreFailureIsRetried(t *testing.T) {
	p := tempLog(t, "app.log")
	write(t, p, "one\n")
	s := newFakeSpool()
	s.mu.Lock()
	s.cpErr = fmt.Errorf("badger unavailable")
	s.mu.Unlock()
	tl, _ := start(t, testConfig(p), s)
	require.Eventually(t, func() bool { return tl.Status().Errors == 1 }, 5*time.Second, 5*time.Millisecond)
	s.waitMsgs(t)
	s.mu.Lock()
	s.cpErr = nil
	s.mu.Unlock()
	s.waitMsgs(t, "one")
	require.Equal(t, uint64(1), tl.Status().Errors, "the same failure is counted once")
}

func TestRunTwiceAtOnceIsRefused(t *testing.T) {
	p := tempLog(t, "app.log")
	s := newFakeSpool()
	tl, _ := start(t, testConfig(p), s)
	require.Eventually(t, func() bool { return tl.running.Load() }, 5*time.Second, time.Millisecond)
	require.ErrorContains(t, tl.Run(t.Context(), s), "already running")
}

// With start_at end, the end at the first start is committed before any
// line: what is written while the gateway is down before the first line
// came is not skipped by the next start.
func TestStartPositionIsCommittedBeforeFirstLine(t *testing.T) {
	p := tempLog(t, "app.log")
	write(t, p, "old\n")
	cfg := testConfig(p)
	cfg.StartAt = StartAtEnd
	s := newFakeSpool()
	tl, stop := start(t, cfg, s)
	waitFollowing(t, tl, 1)
	require.Eventually(t, func() bool { b, _ := s.Checkpoint(checkpointPrefix + p); return b != nil },
		5*time.Second, 5*time.Millisecond)
	stop()
	write(t, p, "while down\n")
	start(t, cfg, s)
	s.waitMsgs(t, "while down")
}

func TestUnreadableCheckpointReadsFromBeginning(t *testing.T) {
	p := tempLog(t, "app.log")
	write(t, p, "one\n")
	s := newFakeSpool()
	s.cps[checkpointPrefix+p] = []byte("not json")
	cfg := testConfig(p)
	cfg.StartAt = StartAtEnd
	start(t, cfg, s)
	s.waitMsgs(t, "one")
}
