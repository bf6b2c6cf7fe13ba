package hostlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// secretFile writes a root-only (0600) file outside the tailed directory,
// as /etc/shadow or a key would be.
func secretFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shadow")
	require.NoError(t, os.WriteFile(p, []byte("root:$6$secret\n"), 0o600))
	return p
}

// A symlink that matches a tailed glob, planted by whoever can write the
// log directory, must not ship what it points at: here a 0600 file that
// only the gateway (running as root) could read.
func TestSymlinkToRootOnlyFileIsNotShipped(t *testing.T) {
	forWatch(t, func(t *testing.T, watch string) {
		secret := secretFile(t)
		dir := t.TempDir()
		write(t, filepath.Join(dir, "app.log"), "real\n")
		require.NoError(t, os.Symlink(secret, filepath.Join(dir, "evil.log")))
		s := newFakeSpool()
		cfg := testConfig(filepath.Join(dir, "*.log"))
		cfg.Watch = watch
		tl, _ := start(t, cfg, s)
		s.waitMsgs(t, "real")

		// One planted while the tailer runs is skipped too.
		require.NoError(t, os.Symlink(secret, filepath.Join(dir, "late.log")))
		write(t, filepath.Join(dir, "app.log"), "more\n")
		s.waitMsgs(t, "real", "more")
		files := tl.Status().Files
		require.Len(t, files, 1)
		require.Equal(t, filepath.Join(dir, "app.log"), files[0].Path)
	})
}

// A directory symlink that a wildcard in the glob matches leads nowhere
// either: dir/*/app.log must not follow dir/evil -> /root.
func TestSymlinkedDirectoryIsNotShipped(t *testing.T) {
	secretDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(secretDir, "app.log"), []byte("root:$6$secret\n"), 0o600))
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "real"), 0o755))
	write(t, filepath.Join(dir, "real", "app.log"), "real\n")
	require.NoError(t, os.Symlink(secretDir, filepath.Join(dir, "evil")))
	s := newFakeSpool()
	start(t, testConfig(filepath.Join(dir, "*", "app.log")), s)
	s.waitMsgs(t, "real")
}

// With follow_symlinks the link is tailed as the file it points at.
func TestFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	write(t, target, "linked\n")
	require.NoError(t, os.Symlink(target, filepath.Join(dir, "app.log")))
	s := newFakeSpool()
	cfg := testConfig(filepath.Join(dir, "*.log"))
	cfg.FollowSymlinks = true
	start(t, cfg, s)
	s.waitMsgs(t, "linked")
}

// The scan looks with Lstat, but a regular file may be swapped for a
// symlink before it is opened: the open itself refuses to follow one, in
// the last component and in those a wildcard matched.
func TestOpenRefusesSymlinkSwappedIn(t *testing.T) {
	secret := secretFile(t)
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	link := filepath.Join(sub, "app.log")
	require.NoError(t, os.Symlink(secret, link))

	for _, tc := range []struct {
		name, base, path string
	}{
		{"last component", sub, link},
		{"matched directory", dir, filepath.Join(dir, "evil", "shadow")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "matched directory" {
				require.NoError(t, os.Symlink(filepath.Dir(secret), filepath.Join(dir, "evil")))
			}
			f, err := openLog(tc.path, tc.base, false)
			if f != nil {
				f.Close()
			}
			require.Error(t, err)
			require.True(t, errors.Is(err, errSymlink), "got %v", err)

			f, err = openLog(tc.path, tc.base, true)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		})
	}
}

// A followed file replaced by a symlink is finished from its descriptor
// and dropped; the link is not read.
func TestFollowedFileReplacedBySymlink(t *testing.T) {
	secret := secretFile(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	write(t, p, "one\n")
	s := newFakeSpool()
	tl, _ := start(t, testConfig(filepath.Join(dir, "*.log")), s)
	s.waitMsgs(t, "one")
	write(t, p, "two\n")
	require.NoError(t, os.Rename(p, filepath.Join(dir, "old")))
	require.NoError(t, os.Symlink(secret, p))
	s.waitMsgs(t, "one", "two")
	require.Eventually(t, func() bool { return len(tl.Status().Files) == 0 }, 5*time.Second, 5*time.Millisecond)
}

func TestGlobBase(t *testing.T) {
	for _, tc := range []struct{ glob, base string }{
		{"/var/log/*.log", "/var/log"},
		{"/var/log/syslog", "/var/log"},
		{"/var/log/*/app.log", "/var/log"},
		{"/a/*/b/[xy]/c.log", "/a"},
		{"/*.log", "/"},
		{"/srv/app?/logs/*.log", "/srv"},
	} {
		require.Equal(t, tc.base, globBase(tc.glob), tc.glob)
	}
}
