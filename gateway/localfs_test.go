package gateway

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runGateway runs the gateway of file until it stops by itself (returning
// its error) or until it answers on its admin socket (then it is stopped
// and nil is returned).
func runGateway(t *testing.T, file string) error {
	t.Helper()
	g := newTestGateway(t, file)
	sock := SocketPath(g.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case err := <-done:
			return err
		case <-deadline:
			t.Fatal("the gateway neither failed nor answered within 20s")
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := FetchStatus(ctx, sock); err == nil {
			cancel()
			require.NoError(t, <-done)
			return nil
		}
	}
}

func needRoot(t *testing.T, why string) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}

// nobody is a uid other than ours, for files another user owns.
const nobody = 65534

// A data directory, or one above it, that another user could write or
// owns is refused with the path and what is wrong; so is a data directory
// that is a symbolic link.
func TestDataDirChecked(t *testing.T) {
	cases := []struct {
		name  string
		root  bool
		setup func(t *testing.T, data string) string // returns the data_dir to configure
		want  string
	}{
		{"ours, 0750", false, func(t *testing.T, data string) string { return data }, ""},
		{"world-writable", false, func(t *testing.T, data string) string {
			require.NoError(t, os.Chmod(data, 0o777))
			return data
		}, "is writable by group or others (mode 0777)"},
		{"group-writable", false, func(t *testing.T, data string) string {
			require.NoError(t, os.Chmod(data, 0o770))
			return data
		}, "is writable by group or others (mode 0770)"},
		{"parent world-writable, not sticky", false, func(t *testing.T, data string) string {
			require.NoError(t, os.Chmod(filepath.Dir(data), 0o777))
			return data
		}, "is writable by group or others (mode 0777), so they could replace what is below it"},
		{"parent world-writable and sticky, owned by root", true, func(t *testing.T, data string) string {
			require.NoError(t, os.Chmod(filepath.Dir(data), 0o777|os.ModeSticky))
			return data
		}, ""},
		{"a symbolic link", false, func(t *testing.T, data string) string {
			link := filepath.Join(filepath.Dir(data), "link")
			require.NoError(t, os.Symlink(data, link))
			return link
		}, "is a symbolic link"},
		{"owned by another user", true, func(t *testing.T, data string) string {
			require.NoError(t, os.Chown(data, nobody, nobody))
			return data
		}, "is owned by "},
		{"parent owned by another user", true, func(t *testing.T, data string) string {
			require.NoError(t, os.Chown(filepath.Dir(data), nobody, nobody))
			return data
		}, "neither root nor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root {
				needRoot(t, "files of another user, or a sticky directory owned by root")
			}
			parent := filepath.Join(t.TempDir(), "var")
			require.NoError(t, os.Mkdir(parent, 0o755))
			data := filepath.Join(parent, "weir")
			require.NoError(t, os.Mkdir(data, 0o750))
			dir := c.setup(t, data)
			err := runGateway(t, gatewayConfig(t, dir, ""))
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), "data_dir "+dir)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

// The spool's directory is made 0700 whatever it was.
func TestSpoolDirForced0700(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.MkdirAll(filepath.Join(data, "spool"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(data, "spool"), 0o755))
	require.NoError(t, runGateway(t, gatewayConfig(t, data, "")))
	fi, err := os.Stat(filepath.Join(data, "spool"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

// listenUnix makes a socket at path that nobody answers on (closed
// without unlinking), or that answers while the test runs.
func listenUnix(t *testing.T, path string, answer bool) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if !answer {
		require.NoError(t, ln.Close())
		return
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// What is at the admin socket's path decides: a stale socket of ours is
// replaced, a live one of ours means another weir runs; another user's
// socket (live or not) and anything that is not a socket are refused with
// an error that says whose or what it is, never removed or taken for a
// running gateway.
func TestAdminSocketAtStart(t *testing.T) {
	cases := []struct {
		name  string
		root  bool
		setup func(t *testing.T, sock string)
		want  string
	}{
		{"none", false, func(*testing.T, string) {}, ""},
		{"our stale socket", false, func(t *testing.T, sock string) { listenUnix(t, sock, false) }, ""},
		{"our live socket", false, func(t *testing.T, sock string) { listenUnix(t, sock, true) }, "another weir is running"},
		{"a regular file", false, func(t *testing.T, sock string) {
			require.NoError(t, os.WriteFile(sock, nil, 0o600))
		}, "something else is there"},
		{"a symbolic link", false, func(t *testing.T, sock string) {
			require.NoError(t, os.Symlink("/run/other.sock", sock))
		}, "something else is there"},
		{"another user's live socket", true, func(t *testing.T, sock string) {
			listenUnix(t, sock, true)
			require.NoError(t, os.Lchown(sock, nobody, nobody))
		}, "belongs to "},
		{"another user's stale socket", true, func(t *testing.T, sock string) {
			listenUnix(t, sock, false)
			require.NoError(t, os.Lchown(sock, nobody, nobody))
		}, "belongs to "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root {
				needRoot(t, "a socket owned by another user")
			}
			data := filepath.Join(t.TempDir(), "data")
			require.NoError(t, os.Mkdir(data, 0o750))
			sock := filepath.Join(data, "weir.sock")
			c.setup(t, sock)
			err := runGateway(t, gatewayConfig(t, data, ""))
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "admin socket "+sock)
			require.ErrorContains(t, err, c.want)
			_, statErr := os.Lstat(sock)
			require.NoError(t, statErr, "left where it was")
		})
	}
}

// admin.group sets the socket's group; an admin.socket elsewhere needs a
// directory nobody else can write.
func TestAdminGroupAndSocketDir(t *testing.T) {
	t.Run("group", func(t *testing.T) {
		needRoot(t, "chown to a group the process is not in")
		data := filepath.Join(t.TempDir(), "data")
		sock := filepath.Join(data, "weir.sock")
		file := gatewayConfig(t, data, "")
		appendConfig(t, file, "admin:\n  group: \"4242\"\n")
		g := newTestGateway(t, file)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		require.Eventually(t, func() bool { _, err := FetchStatus(ctx, sock); return err == nil }, 20*time.Second, 20*time.Millisecond)
		fi, err := os.Stat(sock)
		require.NoError(t, err)
		require.Equal(t, uint32(4242), fi.Sys().(*syscall.Stat_t).Gid)
		require.Equal(t, os.FileMode(0o660), fi.Mode().Perm())
		cancel()
		require.NoError(t, <-done)
	})
	t.Run("unknown group", func(t *testing.T) {
		file := gatewayConfig(t, filepath.Join(t.TempDir(), "data"), "")
		appendConfig(t, file, "admin:\n  group: no-such-group-weir\n")
		require.ErrorContains(t, runGateway(t, file), `admin.group "no-such-group-weir"`)
	})
	t.Run("socket in a world-writable directory", func(t *testing.T) {
		open := filepath.Join(t.TempDir(), "open")
		require.NoError(t, os.Mkdir(open, 0o755))
		require.NoError(t, os.Chmod(open, 0o777|os.ModeSticky))
		file := gatewayConfig(t, filepath.Join(t.TempDir(), "data"), "")
		appendConfig(t, file, "admin:\n  socket: "+filepath.Join(open, "weir.sock")+"\n")
		require.ErrorContains(t, runGateway(t, file), "is writable by group or others (mode 0777); another user could take the socket's name there")
	})
}

func appendConfig(t *testing.T, file, yaml string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(yaml)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// The CLI finds the admin socket where the configuration says, or at
// /var/lib/weir; a weir-data/weir.sock under the working directory (which
// anyone who can write there could plant) is never dialled.
func TestSocketPathIgnoresWorkingDirectory(t *testing.T) {
	cwd := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(cwd, "weir-data"), 0o755))
	listenUnix(t, filepath.Join(cwd, "weir-data", "weir.sock"), true)
	t.Chdir(cwd)
	require.Equal(t, "/var/lib/weir/weir.sock", SocketPath(Config{}))
	require.Equal(t, "/srv/weir/weir.sock", SocketPath(Config{DataDir: "/srv/weir"}))
	require.Equal(t, "/run/weir/admin.sock", SocketPath(Config{DataDir: "/srv/weir", Admin: AdminConfig{Socket: "/run/weir/admin.sock"}}))
}
