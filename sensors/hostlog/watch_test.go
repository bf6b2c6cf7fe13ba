package hostlog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGlobDirs(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a", "b", "c.d"} {
		require.NoError(t, os.Mkdir(filepath.Join(root, d), 0o755))
	}
	got := globDirs([]string{
		filepath.Join(root, "a", "*.log"),
		filepath.Join(root, "a", "x.log"), // same directory once
		filepath.Join(root, "*", "app.log"),
		"/absent/dir/*.log",
	})
	require.Equal(t, []string{
		filepath.Join(root, "a"),
		filepath.Join(root, "b"), filepath.Join(root, "c.d"),
		"/absent/dir",
	}, got)
}

func TestWatcherRelevant(t *testing.T) {
	w := &watcher{globs: []string{"/var/log/*.log", "/srv/*/app.log"}}
	tests := []struct {
		name      string
		file, dir bool
	}{
		{"/var/log/syslog.log", true, false},
		{"/var/log/syslog", false, false},
		{"/var/log", false, true},
		{"/srv/one/app.log", true, false},
		{"/srv/one", false, true},
		{"/srv/one/other.log", false, false},
	}
	for _, tt := range tests {
		file, dir := w.relevant(tt.name)
		require.Equal(t, tt.file, file, tt.name)
		require.Equal(t, tt.dir, dir, tt.name)
	}
}

func TestWatcherTake(t *testing.T) {
	w := &watcher{nudge: make(chan struct{}, 1), written: map[string]bool{}}
	w.note("/a.log")
	w.note("/b.log")
	written, full := w.take()
	require.Equal(t, map[string]bool{"/a.log": true, "/b.log": true}, written)
	require.False(t, full)
	require.Len(t, w.nudge, 1, "one nudge for both")
	w.note("")
	_, full = w.take()
	require.True(t, full)
	written, full = w.take()
	require.Empty(t, written)
	require.False(t, full)
}
