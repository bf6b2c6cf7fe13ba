package hostlog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The acceptance cases: in each, every line reaches the sink
// exactly once.

func numbered(prefix string, from, n int) (text string, msgs []string) {
	var sb strings.Builder
	for i := from; i < from+n; i++ {
		m := fmt.Sprintf("%s %06d", prefix, i)
		sb.WriteString(m + "\n")
		msgs = append(msgs, m)
	}
	return sb.String(), msgs
}

func TestRenameRotationExactlyOnce(t *testing.T) {
	forWatch(t, func(t *testing.T, watch string) {
		dir := t.TempDir()
		p := filepath.Join(dir, "app.log")
		cfg := testConfig(p) // the rotated name is outside the glob
		cfg.Watch = watch
		s := newFakeSpool()
		start(t, cfg, s)
		var want []string
		for gen := range 5 {
			text, msgs := numbered(fmt.Sprintf("gen%d", gen), 0, 300)
			write(t, p, text)
			want = append(want, msgs...)
			// No wait for the tailer: the rotated file is finished from
			// the descriptor it holds (or, if it was not opened yet, its
			// lines are outside the glob and lost, so wait for the open).
			require.Eventually(t, func() bool { return len(s.got()) > len(want)-300 }, 5*time.Second, time.Millisecond)
			require.NoError(t, os.Rename(p, fmt.Sprintf("%s.%d", p, gen)))
		}
		s.waitMsgs(t, want...)
	})
}

// copytruncate: the writer copies the file and truncates it in place;
// the tailer starts the same inode over from 0. Lines written between the
// copy and the truncation are lost by copytruncate itself; here the writer
// writes none, and the tailer had read up to the copy.
func TestCopyTruncate(t *testing.T) {
	forWatch(t, func(t *testing.T, watch string) {
		p := tempLog(t, "app.log")
		cfg := testConfig(p)
		cfg.Watch = watch
		s := newFakeSpool()
		start(t, cfg, s)
		var want []string
		for gen := range 4 {
			text, msgs := numbered(fmt.Sprintf("gen%d", gen), 0, 50+gen*40)
			write(t, p, text)
			want = append(want, msgs...)
			s.waitMsgs(t, want...)
			copyFile(t, p, fmt.Sprintf("%s.%d", p, gen))
			require.NoError(t, os.Truncate(p, 0))
		}
		text, msgs := numbered("last", 0, 3)
		write(t, p, text)
		s.waitMsgs(t, append(want, msgs...)...)
	})
}

// copytruncate while the gateway is down, and the new content grows past
// the old offset before it is back: the size alone cannot tell, the
// fingerprint does.
func TestCopyTruncateWhileDownRefilledPastOffset(t *testing.T) {
	p := tempLog(t, "app.log")
	s := newFakeSpool()
	_, stop := start(t, testConfig(p), s)
	write(t, p, "old 1\nold 2\n")
	s.waitMsgs(t, "old 1", "old 2")
	stop()
	copyFile(t, p, p+".1")
	require.NoError(t, os.Truncate(p, 0))
	text, msgs := numbered("new", 0, 10)
	write(t, p, text)
	start(t, testConfig(p), s)
	s.waitMsgs(t, append([]string{"old 1", "old 2"}, msgs...)...)
}

// A file replaced at the same path (removed and created again, often
// with the inode of the old one) is read from its start, whether the
// gateway ran or not.
func TestReplacedAtSamePath(t *testing.T) {
	t.Run("running", func(t *testing.T) {
		forWatch(t, func(t *testing.T, watch string) {
			p := tempLog(t, "app.log")
			cfg := testConfig(p)
			cfg.Watch = watch
			s := newFakeSpool()
			start(t, cfg, s)
			write(t, p, "first file\n")
			s.waitMsgs(t, "first file")
			require.NoError(t, os.Remove(p))
			write(t, p, "second file, longer than the first\n")
			s.waitMsgs(t, "first file", "second file, longer than the first")
		})
	})
	t.Run("while down", func(t *testing.T) {
		p := tempLog(t, "app.log")
		s := newFakeSpool()
		_, stop := start(t, testConfig(p), s)
		write(t, p, "first file\n")
		s.waitMsgs(t, "first file")
		stop()
		before := inode(t, p)
		require.NoError(t, os.Remove(p))
		write(t, p, "second file, longer than the first\n")
		t.Logf("inode reused: %v", inode(t, p) == before)
		start(t, testConfig(p), s)
		s.waitMsgs(t, "first file", "second file, longer than the first")
	})
}

// An inode reused at the same path while the gateway is down: only the
// fingerprint tells the files apart. Made to happen rather than hoped for
// (tmpfs never reuses an inode): the checkpoint names the new file's own
// device and inode with the fingerprint of the old file's first bytes, as
// it would after a reuse.
func TestInodeReusedWhileDown(t *testing.T) {
	p := tempLog(t, "app.log")
	write(t, p, "a new file whose first line is long\n")
	id := inode(t, p)
	old, err := takeFingerprint(strings.NewReader("old\n"), 4)
	require.NoError(t, err)
	s := newFakeSpool()
	s.cps[checkpointPrefix+p] = position{Dev: id.dev, Ino: id.ino, Off: 4, FpLen: old.n, Fp: old.sum}.marshal()
	start(t, testConfig(p), s)
	s.waitMsgs(t, "a new file whose first line is long")
}

// A file deleted while it is being read is finished from the open
// descriptor: a slow sink keeps the tailer busy with its first batches
// while the file goes.
func TestDeletedMidRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	text, want := numbered("line", 0, 20000)
	write(t, p, text)
	s := newFakeSpool()
	s.delay = 20 * time.Millisecond
	tl, _ := start(t, testConfig(filepath.Join(dir, "*.log")), s)
	require.Eventually(t, func() bool { return len(s.got()) > 0 }, 5*time.Second, time.Millisecond)
	require.NoError(t, os.Remove(p))
	require.Less(t, len(s.got()), len(want), "deleted before it was read")
	require.Eventually(t, func() bool { return len(s.got()) >= len(want) }, 20*time.Second, 10*time.Millisecond)
	s.waitMsgs(t, want...)
	require.Eventually(t, func() bool { return len(tl.Status().Files) == 0 }, 5*time.Second, 5*time.Millisecond)
}

// A 10 MiB line goes out in max_line_bytes pieces, numbered, while it is
// still being written: the tailer never holds the whole line.
func TestTenMiBLine(t *testing.T) {
	p := tempLog(t, "app.log")
	cfg := testConfig(p)
	s := newFakeSpool()
	start(t, cfg, s)
	write(t, p, "before\n")
	half := bytes.Repeat([]byte("0123456789abcdef"), 5<<16) // 5 MiB
	write(t, p, string(half))
	// The first half is emitted before the line ends, less what waits
	// for a possible "\r\n" (at most a piece).
	require.Eventually(t, func() bool { return len(s.got()) >= 1+len(half)/cfg.MaxLineBytes-1 }, 10*time.Second, 5*time.Millisecond)
	write(t, p, strings.ToUpper(string(half))+"\nafter\n")
	whole := string(half) + strings.ToUpper(string(half))
	n := (len(whole) + cfg.MaxLineBytes - 1) / cfg.MaxLineBytes
	require.Eventually(t, func() bool { return len(s.got()) >= n+2 }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(5 * testPoll)
	got := s.got()
	require.Len(t, got, n+2)
	require.Equal(t, "before", got[0].Msg)
	require.Equal(t, "after", got[n+1].Msg)
	var sb strings.Builder
	for i, l := range got[1 : n+1] {
		require.True(t, l.Truncated)
		require.Equal(t, uint64(i), l.Part)
		require.Equal(t, uint64(7+i*cfg.MaxLineBytes), l.Offset)
		sb.WriteString(l.Msg)
	}
	require.Equal(t, whole, sb.String())
	require.Equal(t, cfg.MaxLineBytes, s.maxMsg)
}

func TestThousandFilesAtOnce(t *testing.T) {
	forWatch(t, func(t *testing.T, watch string) {
		dir := t.TempDir()
		var want []string
		for i := range 1000 {
			text, msgs := numbered(fmt.Sprintf("f%04d", i), 0, 3)
			write(t, filepath.Join(dir, fmt.Sprintf("f%04d.log", i)), text)
			want = append(want, msgs...)
		}
		cfg := testConfig(filepath.Join(dir, "*.log"))
		cfg.Watch = watch
		s := newFakeSpool()
		tl, _ := start(t, cfg, s)
		require.Eventually(t, func() bool { return len(s.got()) >= len(want) }, 30*time.Second, 10*time.Millisecond)
		// Then one more line in each.
		for i := range 1000 {
			m := fmt.Sprintf("f%04d more", i)
			write(t, filepath.Join(dir, fmt.Sprintf("f%04d.log", i)), m+"\n")
			want = append(want, m)
		}
		require.Eventually(t, func() bool { return len(s.got()) >= len(want) }, 30*time.Second, 10*time.Millisecond)
		time.Sleep(5 * testPoll)
		got := s.msgs()
		require.ElementsMatch(t, want, got)
		require.Len(t, tl.Status().Files, 1000)
	})
}

func TestInvalidUTF8IsFlagged(t *testing.T) {
	p := tempLog(t, "app.log")
	raw := "\xff\xfe bad \xc3\x28 \xe2\x82 end\x00"
	write(t, p, raw+"\nplain ascii\nnaïve ✓\n")
	s := newFakeSpool()
	start(t, testConfig(p), s)
	s.waitMsgs(t, raw, "plain ascii", "naïve ✓")
	got := s.got()
	require.Equal(t, []byte(raw), []byte(got[0].Msg))
	require.Equal(t, []bool{true, false, false}, []bool{got[0].InvalidUTF8, got[1].InvalidUTF8, got[2].InvalidUTF8})
}

func TestRecordsCarrySourceMetadata(t *testing.T) {
	p := tempLog(t, "app.log")
	write(t, p, "one\ntwo\n")
	s := newFakeSpool()
	start(t, testConfig(p), s)
	s.waitMsgs(t, "one", "two")
	fi, err := os.Stat(p)
	require.NoError(t, err)
	id := idOf(fi)
	fp, err := takeFingerprint(strings.NewReader("one\ntwo\n"), 8)
	require.NoError(t, err)
	want := fmt.Sprintf("%d:%d:%x", id.dev, id.ino, fp.sum)
	for i, l := range s.got() {
		require.Equal(t, p, l.Path)
		require.Equal(t, want, l.Fingerprint)
		require.Equal(t, uint64(4*i), l.Offset)
	}
}

func TestPartialLineCompletedLater(t *testing.T) {
	forWatch(t, func(t *testing.T, watch string) {
		p := tempLog(t, "app.log")
		cfg := testConfig(p)
		cfg.Watch = watch
		s := newFakeSpool()
		start(t, cfg, s)
		write(t, p, "complete\npart")
		s.waitMsgs(t, "complete")
		for _, piece := range []string{"ial ", "line ", "finished"} {
			write(t, p, piece)
			s.waitMsgs(t, "complete")
		}
		write(t, p, "\r\n")
		s.waitMsgs(t, "complete", "partial line finished")
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.Create(to)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

func inode(t *testing.T, p string) fileID {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return idOf(fi)
}
