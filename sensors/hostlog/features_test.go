package hostlog

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/spool"
)

func multilineConfig(p string) FileConfig {
	cfg := testConfig(p)
	cfg.Multiline.StartPattern = `^\d{4}-`
	cfg.Multiline.Timeout = time.Hour // the tests that want it set it
	return cfg
}

func TestMultilineJoinsStackTraces(t *testing.T) {
	p := tempLog(t, "app.log")
	s := newFakeSpool()
	start(t, multilineConfig(p), s)
	write(t, p, "2026-11-23 error\njava.lang.Oops\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)\n2026-11-23 ok\n")
	s.waitMsgs(t, "2026-11-23 error\njava.lang.Oops\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)")
	require.Equal(t, uint64(4), s.got()[0].Lines)
	require.Equal(t, uint64(0), s.got()[0].Offset)
	// The open event is not committed: the checkpoint stays at its start.
	require.Equal(t, int64(len("2026-11-23 error\njava.lang.Oops\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)\n")), s.checkpoint(t, p).Off)
	write(t, p, "2026-11-23 next\n")
	s.waitMsgs(t, "2026-11-23 error\njava.lang.Oops\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)", "2026-11-23 ok")
}

// A restart in the middle of an event reads the event again from its
// first byte: nothing of it is lost or repeated.
func TestMultilineRestartMidEvent(t *testing.T) {
	p := tempLog(t, "app.log")
	s := newFakeSpool()
	cfg := multilineConfig(p)
	_, stop := start(t, cfg, s)
	write(t, p, "2026-01 one\n2026-02 two\n  two more\n")
	s.waitMsgs(t, "2026-01 one")
	require.Equal(t, int64(12), s.checkpoint(t, p).Off)
	stop()
	write(t, p, "  two last\n2026-03 three\n")
	start(t, cfg, s)
	s.waitMsgs(t, "2026-01 one", "2026-02 two\n  two more\n  two last")
}

func TestMultilineTimeoutFlushes(t *testing.T) {
	forWatch(t, func(t *testing.T, watch string) {
		p := tempLog(t, "app.log")
		cfg := multilineConfig(p)
		cfg.Watch = watch
		cfg.Multiline.Timeout = 100 * time.Millisecond
		cfg.RescanInterval = time.Hour // only the timeout can wake the tailer
		s := newFakeSpool()
		start(t, cfg, s)
		write(t, p, "2026-01 last event\n  its detail\n")
		s.waitMsgs(t, "2026-01 last event\n  its detail")
		require.Equal(t, int64(len("2026-01 last event\n  its detail\n")), s.checkpoint(t, p).Off)
	})
}

func TestMultilineLimitsCutAndFlag(t *testing.T) {
	p := tempLog(t, "app.log")
	cfg := multilineConfig(p)
	cfg.Multiline.MaxLines = 3
	s := newFakeSpool()
	start(t, cfg, s)
	write(t, p, "2026-01 a\n1\n2\n3\n4\n2026-02 b\n")
	s.waitMsgs(t, "2026-01 a\n1\n2", "3\n4")
	got := s.got()
	require.False(t, got[0].Continued)
	require.True(t, got[1].Continued)
	require.Equal(t, uint64(len("2026-01 a\n1\n2\n")), got[1].Offset)
}

func TestMultilineDeletedFileFlushesOpenEvent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	s := newFakeSpool()
	start(t, multilineConfig(filepath.Join(dir, "*.log")), s)
	write(t, p, "2026-01 a\n  detail\n")
	require.Eventually(t, func() bool { b, _ := s.Checkpoint(checkpointPrefix + p); return b != nil }, 5*time.Second, time.Millisecond)
	require.NoError(t, os.Remove(p))
	s.waitMsgs(t, "2026-01 a\n  detail")
}

// close_inactive releases an idle file's descriptor; it is opened again,
// and recognised, when it grows.
func TestCloseInactive(t *testing.T) {
	forWatch(t, func(t *testing.T, watch string) {
		p := tempLog(t, "app.log")
		cfg := testConfig(p)
		cfg.Watch = watch
		cfg.CloseInactive = 50 * time.Millisecond
		cfg.RescanInterval = 20 * time.Millisecond
		s := newFakeSpool()
		tl, _ := start(t, cfg, s)
		write(t, p, "one\npartial")
		s.waitMsgs(t, "one")
		closed := func() bool { st := tl.Status(); return len(st.Files) == 1 && !st.Files[0].Open }
		require.Eventually(t, closed, 5*time.Second, 5*time.Millisecond)
		write(t, p, " done\ntwo\n")
		s.waitMsgs(t, "one", "partial done", "two")
		require.Eventually(t, closed, 5*time.Second, 5*time.Millisecond)

		// Replaced while closed (same inode, most likely): read from the
		// start because the fingerprint differs.
		require.NoError(t, os.Remove(p))
		write(t, p, "replacement file line\n")
		s.waitMsgs(t, "one", "partial done", "two", "replacement file line")
	})
}

// A file renamed while the gateway is down, to a name nothing was
// committed under and with nothing new at its old name, keeps its
// position: the checkpoints are listed at start. A store that cannot list
// reads it from the start (the old behaviour).
func TestRenamedWhileDownToNewName(t *testing.T) {
	for _, lister := range []bool{true, false} {
		t.Run(fmt.Sprintf("lister=%v", lister), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "app.log")
			cfg := testConfig(filepath.Join(dir, "app.log*"))
			s := newFakeSpool()
			var cps Checkpoints = s
			if !lister {
				cps = pathOnly{s}
			}
			_, stop := startWith(t, cfg, s, cps)
			write(t, p, "one\n")
			s.waitMsgs(t, "one")
			stop()
			write(t, p, "two\n")
			require.NoError(t, os.Rename(p, p+"-20261123"))
			startWith(t, cfg, s, cps)
			if lister {
				s.waitMsgs(t, "one", "two")
				require.Equal(t, int64(8), s.checkpoint(t, p+"-20261123").Off)
			} else {
				s.waitMsgs(t, "one", "one", "two")
			}
		})
	}
}

// Rotation chains while the gateway is down: a→a.1 and a new a, twice.
// Each file resumes from the checkpoint that names it.
func TestRotatedTwiceWhileDown(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	cfg := testConfig(filepath.Join(dir, "app*.log"))
	s := newFakeSpool()
	_, stop := start(t, cfg, s)
	write(t, p, "x1\n")
	s.waitMsgs(t, "x1")
	stop()
	write(t, p, "x2\n")
	require.NoError(t, os.Rename(p, filepath.Join(dir, "app-1.log")))
	write(t, p, "y1\n")
	require.NoError(t, os.Rename(p, filepath.Join(dir, "app-2.log")))
	write(t, p, "z1\n")
	start(t, cfg, s)
	s.waitMsgs(t, "x1", "x2", "y1", "z1")
}

// A gateway upgraded in the field finds positions without a fingerprint:
// it resumes at them, and its next commit adds the fingerprint.
func TestOldPositionFormatResumes(t *testing.T) {
	p := tempLog(t, "app.log")
	write(t, p, "already sent\n")
	id := inode(t, p)
	s := newFakeSpool()
	s.cps[checkpointPrefix+p] = fmt.Appendf(nil, `{"dev":%d,"ino":%d,"off":13}`, id.dev, id.ino)
	cfg := testConfig(p)
	start(t, cfg, s)
	write(t, p, "new\n")
	s.waitMsgs(t, "new")
	cp := s.checkpoint(t, p)
	require.Equal(t, int64(17), cp.Off)
	require.Equal(t, 17, cp.FpLen)
}

// A directory the glob names that appears after the start is watched from
// then on; meanwhile it is polled.
func TestDirectoryCreatedLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	cfg := testConfig(filepath.Join(dir, "*.log"))
	s := newFakeSpool()
	tl, _ := start(t, cfg, s)
	require.Eventually(t, tl.running.Load, 5*time.Second, time.Millisecond)
	time.Sleep(3 * testPoll)
	require.NoError(t, os.Mkdir(dir, 0o755))
	write(t, filepath.Join(dir, "a.log"), "hello\n")
	s.waitMsgs(t, "hello")
	require.True(t, tl.Status().Watching)
}

// With inotify the tailer follows appends, new files and rotations from
// the events alone: the safety scan is an hour away.
func TestInotifyAloneFollowsEverything(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	cfg := testConfig(filepath.Join(dir, "*.log"))
	cfg.RescanInterval = time.Hour
	s := newFakeSpool()
	tl, _ := start(t, cfg, s)
	require.Eventually(t, func() bool { return tl.Status().Watching }, 5*time.Second, time.Millisecond)
	write(t, p, "one\n")
	s.waitMsgs(t, "one")
	write(t, p, "two\n")
	s.waitMsgs(t, "one", "two")
	require.NoError(t, os.Rename(p, filepath.Join(dir, "app-1.log")))
	write(t, filepath.Join(dir, "app-1.log"), "late\n")
	s.waitMsgs(t, "one", "two", "late")
	write(t, p, "three\n")
	s.waitMsgs(t, "one", "two", "late", "three")
	require.NoError(t, os.Truncate(p, 0))
	write(t, p, "four\n")
	s.waitMsgs(t, "one", "two", "late", "three", "four")
}

// The commit that moves a renamed file's position to its new key fails
// once: it is retried before the new file at the old path commits there,
// so a restart afterwards repeats nothing.
func TestRenameCommitFailureIsRetriedFirst(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	cfg := testConfig(filepath.Join(dir, "app*.log"))
	s := newFakeSpool()
	_, stop := start(t, cfg, s)
	write(t, p, "x1\n")
	s.waitMsgs(t, "x1")
	s.mu.Lock()
	s.failNext = 1
	s.mu.Unlock()
	require.NoError(t, os.Rename(p, filepath.Join(dir, "app-1.log")))
	write(t, p, "y1\n")
	s.waitMsgs(t, "x1", "y1")
	stop()
	start(t, cfg, s)
	write(t, p, "y2\n")
	s.waitMsgs(t, "x1", "y1", "y2")
	require.Equal(t, int64(3), s.checkpoint(t, filepath.Join(dir, "app-1.log")).Off)
}

// The gateway hands the tailer its spool, which lists checkpoints.
var _ checkpointLister = (*spool.Spool)(nil)
