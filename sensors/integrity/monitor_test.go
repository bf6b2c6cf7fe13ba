package integrity

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

func TestBaselineIsOneSummary(t *testing.T) {
	h := newHarness(t)
	for i := range 5 {
		h.write(fmt.Sprintf("d%d/f%d", i%2, i), "x")
	}
	require.NoError(t, os.Symlink("d0", h.path("link")))
	h.start(h.testConfig())

	got := h.settled()
	require.Len(t, got, 1, "one summary, no record per file")
	e := got[0]
	require.Equal(t, event.KindIntegrity, e.Kind)
	require.Equal(t, event.PriorityCritical, e.Priority)
	// tree, d0, d1, 5 files, link
	require.Equal(t, "baseline created: 9 files under "+h.tree+" (5 regular, 3 directories, 1 symlinks, 0 other)", e.Message)
	require.Equal(t, int64(9), fields(e)["files"].Int())
	require.Equal(t, int64(9), h.m.Status().Files)
}

// The acceptance test: modifying a watched file produces one integrity
// record naming the path with the old and new hashes.
func TestModifyIsOneRecord(t *testing.T) {
	h := newHarness(t)
	h.write("passwd", "root:x:0:0\n")
	h.start(h.testConfig())
	h.settled()

	h.write("passwd", "root:x:0:0\nmallory:x:0:0\n")
	got := h.awaitRecords(1)
	require.Len(t, got, 1)
	e := got[0]
	f := fields(e)
	require.Equal(t, h.path("passwd"), f["path"].Str)
	require.Equal(t, ChangeModified, f["change"].Str)
	require.Equal(t, sum("root:x:0:0\n"), f["old_sha256"].Str)
	require.Equal(t, sum("root:x:0:0\nmallory:x:0:0\n"), f["new_sha256"].Str)
	require.Equal(t, int64(11), f["old_size"].Int())
	require.Equal(t, int64(25), f["new_size"].Int())
	require.Equal(t, event.KindIntegrity, e.Kind)
	require.Equal(t, event.PriorityCritical, e.Priority)
	require.Equal(t, event.SevWarning, e.Severity)
	require.Equal(t, Source, e.Source)
	want := fmt.Sprintf("modified %s: sha256 %s…→%s…, size 11→25", h.path("passwd"),
		sum("root:x:0:0\n")[:8], sum("root:x:0:0\nmallory:x:0:0\n")[:8])
	require.True(t, strings.HasPrefix(e.Message, want), e.Message)
	require.Equal(t, uint64(1), h.m.Status().Changes)
}

func TestChanges(t *testing.T) {
	tests := []struct {
		name   string
		root   bool // needs root
		setup  func(h *harness)
		change func(t *testing.T, h *harness)
		want   []string // "change rel-path", in commit order
		check  func(t *testing.T, h *harness, evs []event.Event)
	}{
		{
			name:   "create",
			change: func(t *testing.T, h *harness) { h.write("new", "hello") },
			want:   []string{"created new"},
			check: func(t *testing.T, h *harness, evs []event.Event) {
				f := fields(evs[0])
				require.Equal(t, sum("hello"), f["new_sha256"].Str)
				require.NotContains(t, f, "old_sha256")
			},
		},
		{
			name:   "delete",
			setup:  func(h *harness) { h.write("old", "bye") },
			change: func(t *testing.T, h *harness) { require.NoError(t, os.Remove(h.path("old"))) },
			want:   []string{"deleted old"},
			check: func(t *testing.T, h *harness, evs []event.Event) {
				f := fields(evs[0])
				require.Equal(t, sum("bye"), f["old_sha256"].Str)
				require.NotContains(t, f, "new_sha256")
			},
		},
		{
			name:   "chmod",
			setup:  func(h *harness) { h.write("f", "x") },
			change: func(t *testing.T, h *harness) { require.NoError(t, os.Chmod(h.path("f"), fs.ModeSetuid|0o711)) },
			want:   []string{"mode f"},
			check: func(t *testing.T, h *harness, evs []event.Event) {
				f := fields(evs[0])
				require.Equal(t, "0644", f["old_mode"].Str)
				require.Equal(t, "4711", f["new_mode"].Str)
				require.Equal(t, "mode", f["changes"].Str)
			},
		},
		{
			name:   "chown",
			root:   true,
			setup:  func(h *harness) { h.write("f", "x") },
			change: func(t *testing.T, h *harness) { require.NoError(t, os.Lchown(h.path("f"), 4321, 4322)) },
			want:   []string{"owner f"},
			check: func(t *testing.T, h *harness, evs []event.Event) {
				f := fields(evs[0])
				require.Equal(t, uint64(4321), f["new_uid"].Num)
				require.Equal(t, uint64(4322), f["new_gid"].Num)
				require.Equal(t, uint64(0), f["old_uid"].Num)
				require.Equal(t, "uid,gid", f["changes"].Str)
				require.Equal(t, "root", f["old_user"].Str)
			},
		},
		{
			name:  "rename over, editor style",
			setup: func(h *harness) { h.write("conf", "a=1\n") },
			change: func(t *testing.T, h *harness) {
				// vim's and sed -i's way: write a new file, rename it over.
				h.write(".conf.swp", "swap")
				h.write("conf.tmp", "a=2\n")
				require.NoError(t, os.Rename(h.path("conf.tmp"), h.path("conf")))
				require.NoError(t, os.Remove(h.path(".conf.swp")))
			},
			want: []string{"modified conf"},
			check: func(t *testing.T, h *harness, evs []event.Event) {
				f := fields(evs[0])
				require.Equal(t, sum("a=1\n"), f["old_sha256"].Str)
				require.Equal(t, sum("a=2\n"), f["new_sha256"].Str)
				require.Contains(t, f["changes"].Str, "inode")
			},
		},
		{
			name:  "file becomes symlink",
			setup: func(h *harness) { h.write("f", "x") },
			change: func(t *testing.T, h *harness) {
				require.NoError(t, os.Remove(h.path("f")))
				require.NoError(t, os.Symlink("/etc/shadow", h.path("f")))
			},
			want: []string{"type f"},
			check: func(t *testing.T, h *harness, evs []event.Event) {
				f := fields(evs[0])
				require.Equal(t, "file", f["old_type"].Str)
				require.Equal(t, "symlink", f["new_type"].Str)
				require.Equal(t, "/etc/shadow", f["new_target"].Str)
			},
		},
		{
			name: "symlink retargeted",
			setup: func(h *harness) {
				if err := os.Symlink("a", h.path("l")); err != nil {
					panic(err)
				}
			},
			change: func(t *testing.T, h *harness) {
				// ln -sf: a new link renamed over the old one.
				require.NoError(t, os.Symlink("b", h.path("l.new")))
				require.NoError(t, os.Rename(h.path("l.new"), h.path("l")))
			},
			want: []string{"modified l"},
			check: func(t *testing.T, h *harness, evs []event.Event) {
				f := fields(evs[0])
				require.Equal(t, "a", f["old_target"].Str)
				require.Equal(t, "b", f["new_target"].Str)
				require.Equal(t, "target", f["changes"].Str)
			},
		},
		{
			name: "new directory tree",
			change: func(t *testing.T, h *harness) {
				h.write("d/e/f", "deep")
			},
			want: []string{"created d", "created d/e", "created d/e/f"},
		},
		{
			name: "directory tree removed",
			setup: func(h *harness) {
				h.write("d/e/f", "deep")
				h.write("d/g", "g")
			},
			change: func(t *testing.T, h *harness) { require.NoError(t, os.RemoveAll(h.path("d"))) },
			want:   []string{"deleted d", "deleted d/e", "deleted d/e/f", "deleted d/g"},
		},
		{
			name:   "chmod directory",
			setup:  func(h *harness) { h.write("d/f", "x") },
			change: func(t *testing.T, h *harness) { require.NoError(t, os.Chmod(h.path("d"), 0o700)) },
			want:   []string{"mode d"},
		},
		{
			name:  "directory becomes file",
			setup: func(h *harness) { h.write("d/f", "x") },
			change: func(t *testing.T, h *harness) {
				require.NoError(t, os.RemoveAll(h.path("d")))
				h.write("d", "now a file")
			},
			want: []string{"type d", "deleted d/f"},
		},
		{
			name:  "directory renamed",
			setup: func(h *harness) { h.write("d/f", "x") },
			change: func(t *testing.T, h *harness) {
				require.NoError(t, os.Rename(h.path("d"), h.path("e")))
			},
			want: []string{"created e", "created e/f", "deleted d", "deleted d/f"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root to change a file's owner")
			}
			h := newHarness(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			h.start(h.testConfig())
			h.settled()
			tt.change(t, h)
			evs := h.awaitRecords(len(tt.want))
			var got []string
			for _, c := range changes(evs) {
				rel, err := filepath.Rel(h.tree, c.Path)
				require.NoError(t, err)
				got = append(got, c.Change+" "+rel)
			}
			require.ElementsMatch(t, tt.want, got)
			if tt.check != nil {
				tt.check(t, h, evs)
			}
		})
	}
}

// A change made while the gateway was stopped is reported once at start;
// a restart with nothing changed reports nothing.
func TestRestart(t *testing.T) {
	h := newHarness(t)
	h.write("keep", "same")
	h.write("mod", "v1")
	h.write("del", "gone soon")
	h.start(h.testConfig())
	require.Len(t, h.settled(), 1) // the summary

	h.stop()
	h.start(h.testConfig())
	require.Empty(t, h.settled(), "a restart with nothing changed")

	h.stop()
	h.write("mod", "v2")
	require.NoError(t, os.Remove(h.path("del")))
	h.write("add", "new")
	h.start(h.testConfig())
	got := changes(h.settled())
	require.ElementsMatch(t, []change{
		{h.path("mod"), ChangeModified},
		{h.path("del"), ChangeDeleted},
		{h.path("add"), ChangeCreated},
	}, got)

	h.stop()
	h.start(h.testConfig())
	require.Empty(t, h.settled(), "changes reported once only")
	require.Equal(t, int64(4), h.m.Status().Files) // tree, keep, mod, add
}

// A burst of writes to one file makes one record once it settles.
func TestBurstIsOneRecord(t *testing.T) {
	h := newHarness(t)
	h.write("log.conf", "0")
	cfg := h.testConfig()
	// Longer than the scheduler is likely to stall the writing loop.
	cfg.Settle = 500 * time.Millisecond
	h.start(cfg)
	h.settled()

	f, err := os.OpenFile(h.path("log.conf"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	var content strings.Builder
	content.WriteString("0")
	for i := range 100 {
		line := fmt.Sprintf("line %d\n", i)
		_, err := f.WriteString(line)
		require.NoError(t, err)
		content.WriteString(line)
	}
	require.NoError(t, f.Close())

	got := h.awaitRecords(1)
	require.Len(t, got, 1)
	require.Equal(t, sum(content.String()), fields(got[0])["new_sha256"].Str)
}

// A file larger than max_file_bytes is not hashed, but its size and mtime
// are still compared.
func TestHugeFileHashSkipped(t *testing.T) {
	h := newHarness(t)
	h.write("big", strings.Repeat("x", 4096))
	h.write("small", "x")
	cfg := h.testConfig()
	cfg.MaxFileBytes = 1024
	h.start(cfg)
	h.settled()
	require.Equal(t, uint64(1), h.m.Status().HashSkipped)

	// Same size, other content: only the mtime tells.
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(h.path("big"), old, old))
	got := h.awaitRecords(1)
	require.Len(t, got, 1)
	f := fields(got[0])
	require.Equal(t, "mtime", f["changes"].Str)
	require.True(t, f["old_hash_skipped"].Bool())
	require.True(t, f["new_hash_skipped"].Bool())
	require.NotContains(t, f, "new_sha256")

	h.write("big", strings.Repeat("y", 5000))
	got = h.awaitRecords(1)
	require.Len(t, got, 1)
	f = fields(got[0])
	require.Equal(t, int64(4096), f["old_size"].Int())
	require.Equal(t, int64(5000), f["new_size"].Int())
	require.Contains(t, got[0].Message, "size 4096→5000")
}

func TestExclude(t *testing.T) {
	h := newHarness(t)
	h.write("watched", "1")
	h.write("cache/data", "1")
	h.write("notes.swp", "1")
	cfg := h.testConfig()
	cfg.Exclude = []string{h.path("cache"), "*.swp"}
	h.start(cfg)
	require.Contains(t, h.settled()[0].Message, "baseline created: 2 files") // tree, watched

	h.write("cache/data", "2")
	h.write("cache/more", "2")
	h.write("notes.swp", "2")
	h.write("other.swp", "2")
	h.write("watched", "2")
	got := changes(h.awaitRecords(1))
	require.Equal(t, []change{{h.path("watched"), ChangeModified}}, got)
}

// The gateway's own binary and configuration are watched wherever they
// are, and their changes are critical.
func TestOwnFilesAreCritical(t *testing.T) {
	h := newHarness(t)
	h.write("other", "1")
	own := filepath.Join(t.TempDir(), "weir.yaml")
	require.NoError(t, os.WriteFile(own, []byte("a: 1\n"), 0o600))
	h.start(h.testConfig(), own)
	summary := h.settled()
	require.Len(t, summary, 1)
	require.Contains(t, summary[0].Message, "baseline created: 3 files under "+h.tree+", "+own)
	require.Equal(t, []string{h.tree, own}, h.m.Status().Paths)

	require.NoError(t, os.WriteFile(own, []byte("a: 2\n"), 0o600))
	got := h.awaitRecords(1)
	require.Len(t, got, 1)
	require.Equal(t, own, fields(got[0])["path"].Str)
	require.Equal(t, event.SevCritical, got[0].Severity)

	h.write("other", "2")
	got = h.awaitRecords(1)
	require.Equal(t, event.SevWarning, got[0].Severity)

	// Replaced by rename, as a configuration tool writes it.
	tmp := own + ".new"
	require.NoError(t, os.WriteFile(tmp, []byte("a: 3\n"), 0o600))
	require.NoError(t, os.Rename(tmp, own))
	got = h.awaitRecords(1)
	require.Equal(t, []change{{own, ChangeModified}}, changes(got))
}

// A baseline cut short (the sink failed part way) is made again from
// scratch at the next start: still one summary, no record per file.
func TestBaselineCutShort(t *testing.T) {
	h := newHarness(t)
	// Enough entries for several commits.
	for i := range 1200 {
		h.write(fmt.Sprintf("d%02d/f%04d", i%20, i), "x")
	}
	cfg := h.testConfig()
	h.run(cfg)
	h.sink.mu.Lock()
	h.sink.failFrom = 2
	h.sink.mu.Unlock()
	h.waitFor("a failed commit", func() bool { return h.m.Status().Errors > 0 })
	h.halt()
	require.Empty(t, h.read(), "nothing but entries was committed")
	var cps int
	require.NoError(t, h.sp.Checkpoints(sourcePrefix, func(string, []byte) error { cps++; return nil }))
	require.Positive(t, cps, "the first commit went through")
	require.Less(t, cps, 1221)

	h.stop()
	h.start(cfg)
	got := h.settled()
	require.Len(t, got, 1)
	require.Contains(t, got[0].Message, "baseline created: 1221 files") // tree, 20 dirs, 1200 files
	require.Equal(t, int64(1221), h.m.Status().Files)
}

// A new directory is watched as soon as it is seen.
func TestNewDirectoryWatched(t *testing.T) {
	h := newHarness(t)
	h.start(h.testConfig())
	h.settled()
	require.NoError(t, os.Mkdir(h.path("d"), 0o755))
	require.Equal(t, []change{{h.path("d"), ChangeCreated}}, changes(h.awaitRecords(1)))
	h.write("d/f", "x")
	require.Equal(t, []change{{h.path("d/f"), ChangeCreated}}, changes(h.awaitRecords(1)))
}

// More paths changing at once than may wait to settle are left to one
// rescan, which reports each of them once, over several commits.
func TestFloodRescans(t *testing.T) {
	h := newHarness(t)
	require.NoError(t, os.Mkdir(h.path("d"), 0o755))
	cfg := h.testConfig()
	cfg.Settle = 10 * time.Second // nothing settles by itself during the test
	h.start(cfg)
	h.settled()

	const n = maxPending + 100
	for i := range n {
		require.NoError(t, os.WriteFile(h.path(fmt.Sprintf("d/f%05d", i)), nil, 0o644))
	}
	h.waitFor("an overflow", func() bool { return h.m.Status().Overflows > 0 })
	got := changes(h.settled())
	require.Len(t, got, n)
	seen := map[string]bool{}
	for _, c := range got {
		require.Equal(t, ChangeCreated, c.Change)
		require.False(t, seen[c.Path], "reported twice: %s", c.Path)
		seen[c.Path] = true
	}
	require.Equal(t, int64(n+2), h.m.Status().Files)
}

// With follow_symlinks a link is hashed as what it points at, and a link
// back up the tree does not make the walk go round.
func TestFollowSymlinks(t *testing.T) {
	h := newHarness(t)
	h.write("d/f", "1")
	require.NoError(t, os.Symlink("d/f", h.path("lf")))
	require.NoError(t, os.Symlink("..", h.path("d/up")))
	cfg := h.testConfig()
	cfg.FollowSymlinks = true
	h.start(cfg)
	// tree, d, d/f, lf (as a file), d/up (the tree again, not descended)
	require.Contains(t, h.settled()[0].Message, "baseline created: 5 files under "+h.tree+" (2 regular, 3 directories, 0 symlinks")

	h.write("d/f", "2")
	h.m.Rescan() // the link's own directory has no event for it
	got := changes(h.settled())
	require.ElementsMatch(t, []change{{h.path("d/f"), ChangeModified}, {h.path("lf"), ChangeModified}}, got)
}

// A change whose commit failed is neither lost nor reported twice: the
// baseline did not move, so the retry finds it again.
func TestCommitFailureRetried(t *testing.T) {
	h := newHarness(t)
	h.write("f", "1")
	h.start(h.testConfig())
	h.settled()

	h.sink.mu.Lock()
	h.sink.failFrom = h.sink.calls + 1
	h.sink.mu.Unlock()
	h.write("f", "2")
	h.waitFor("a failed commit", func() bool { return h.m.Status().Errors > 0 })
	require.Empty(t, h.read())
	h.sink.mu.Lock()
	h.sink.failFrom = 0
	h.sink.mu.Unlock()

	got := h.awaitRecords(1) // from the retry, not from a rescan asked for
	require.Equal(t, []change{{h.path("f"), ChangeModified}}, changes(got))
	require.Equal(t, sum("2"), fields(got[0])["new_sha256"].Str)
}
