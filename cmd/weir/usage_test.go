package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A command line weir cannot run as written exits 2 with a message naming
// what is wrong; cobra left to itself printed a group's help and exited 0
// for `weir config show`.
func TestCommandLineErrors(t *testing.T) {
	t.Setenv("WEIR_CONFIG", "")
	for _, c := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"config", "shwo"}, 2, `unknown command "shwo" for "weir config"; did you mean "show"? (see weir config --help)`},
		{[]string{"spool", "bogus"}, 2, `unknown command "bogus" for "weir spool"; its commands are inspect`},
		{[]string{"sensors", "bogus"}, 2, `unknown command "bogus" for "weir sensors"; its commands are read`},
		{[]string{"test", "conifg"}, 2, `unknown command "conifg" for "weir test"`},
		{[]string{"bogus"}, 2, `unknown command "bogus" for "weir"`},
		{[]string{"stauts"}, 2, `unknown command "stauts" for "weir"; did you mean "status"?`},
		{[]string{"completion", "tcsh"}, 2, `unknown command "tcsh" for "weir completion"`},
		{[]string{"help", "bogus"}, 2, `unknown command "bogus" for "weir"`},
		{[]string{"help", "config", "shwo"}, 2, `unknown command "shwo" for "weir config"`},
		{[]string{"version", "extra"}, 2, `unknown command "extra" for "weir version"`},
		{[]string{"status", "--bogus"}, 2, "unknown flag: --bogus (see weir status --help)"},
		{[]string{"--bogus"}, 2, "unknown flag: --bogus (see weir --help)"},
		{[]string{"status", "--watch", "often"}, 2, `invalid argument "often" for "--watch"`},
		{[]string{"-c"}, 2, "flag needs an argument"},
		{[]string{"sensors", "read"}, 2, "DEVICE is missing (see weir sensors read --help)"},
		{[]string{"sensors", "read", "a", "b"}, 2, "one DEVICE, not 2 arguments (a b)"},
		{[]string{"spool", "inspect", "--n", "0"}, 2, "--n 0: want 1 to 10000 (see weir spool inspect --help)"},
		{[]string{"config", "example", "bogus"}, 2, `invalid argument "bogus" for "weir config example"`},
		{[]string{"config", "example", "modbus", "syslog"}, 2, "accepts at most 1 arg(s)"},
		// Not usage errors: a configuration named but absent fails (1).
		{[]string{"status", "-c", "/nonexistent/weir.yaml"}, 1, "/nonexistent/weir.yaml"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := execute(c.args, &out, &errb)
			require.Equal(t, c.code, code, "stderr: %s", errb.String())
			require.Contains(t, errb.String(), c.want)
			require.True(t, strings.HasPrefix(errb.String(), "weir: "), errb.String())
		})
	}
}

// Help and a group without its subcommand are not errors.
func TestHelpIsNotAnError(t *testing.T) {
	for _, args := range [][]string{{}, {"--help"}, {"config"}, {"test"}, {"help"}, {"help", "config", "example"}, {"sensors", "read", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			require.Equal(t, 0, execute(args, &out, &errb), "stderr: %s", errb.String())
			require.Contains(t, out.String(), "Usage:")
			require.Empty(t, errb.String())
		})
	}
}

// `weir --version`, `weir version` and `weir-collector --version` print
// the same line, the version the build stamped.
func TestVersionAgrees(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries; skipped with -short")
	}
	dir := t.TempDir()
	const v = "v1.2.3-test"
	for _, b := range []struct{ pkg, name string }{{".", "weir"}, {"../weir-collector", "weir-collector"}} {
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+v, "-o", filepath.Join(dir, b.name), b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		msg, err := cmd.CombinedOutput()
		require.NoError(t, err, "build %s: %s", b.name, msg)
	}
	run := func(bin string, args ...string) string {
		out, err := exec.Command(filepath.Join(dir, bin), args...).CombinedOutput()
		require.NoError(t, err, "%s %v: %s", bin, args, out)
		return string(out)
	}
	tail := " " + v + " " + runtime.GOOS + "/" + runtime.GOARCH + " " + runtime.Version() + "\n"
	require.Equal(t, "weir"+tail, run("weir", "--version"))
	require.Equal(t, "weir"+tail, run("weir", "version"))
	require.Equal(t, "weir-collector"+tail, run("weir-collector", "--version"))
}
