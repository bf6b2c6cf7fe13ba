package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/gateway/console"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/uplink/sender"
)

// These tests hold a session in-process over pipes, with a fake gateway
// and a real guard; console_e2e_test.go drives the built binary over a
// pty against a running gateway.

const testPassword = "correct horse battery"

type fakeAdmin struct {
	status   *gateway.Status
	sections map[string]json.RawMessage
	sensors  *gateway.Sensors
	link     *gateway.Link
	ptp      *ptp.Status
	logs     *gateway.Logs
	err      error
}

func (f *fakeAdmin) Status(context.Context) (*gateway.Status, error) { return f.status, f.err }
func (f *fakeAdmin) StatusSections(context.Context) (map[string]json.RawMessage, error) {
	return f.sections, f.err
}
func (f *fakeAdmin) Sensors(context.Context) (*gateway.Sensors, error) { return f.sensors, f.err }
func (f *fakeAdmin) Link(context.Context) (*gateway.Link, error)       { return f.link, f.err }
func (f *fakeAdmin) PTP(context.Context) (*ptp.Status, error)          { return f.ptp, f.err }
func (f *fakeAdmin) Logs(_ context.Context, n int) (*gateway.Logs, error) {
	if f.logs == nil {
		return nil, f.err
	}
	l := *f.logs
	l.Lines = l.Lines[max(0, len(l.Lines)-n):]
	return &l, f.err
}

type recordedAudit struct {
	mu   sync.Mutex
	recs []console.Record
}

func (a *recordedAudit) Audit(_ context.Context, r console.Record) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := r.Check(); err != nil {
		panic("the console made a record the gateway refuses: " + err.Error())
	}
	a.recs = append(a.recs, r)
	return true
}

func (a *recordedAudit) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.recs {
		s := string(r.Action)
		if r.Command != "" {
			s += " " + r.Command
		}
		out = append(out, s)
	}
	return out
}

func (a *recordedAudit) last() console.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.recs[len(a.recs)-1]
}

// harness is one session on pipes: type writes what a technician types,
// expect waits for output.
type harness struct {
	t     *testing.T
	in    io.Writer
	mu    sync.Mutex
	out   []byte
	mark  int
	done  chan string
	audit *recordedAudit
}

func testConsoleConfig(t *testing.T) console.Config {
	h, err := console.HashArgon2id([]byte(testPassword), console.Argon2Params{Memory: 64, Time: 1, Threads: 1})
	require.NoError(t, err)
	c := console.DefaultConfig()
	c.PasswordHash, c.MaxFailures, c.Lockout, c.FailureDelay, c.IdleTimeout = h, 3, time.Second, 50*time.Millisecond, 5*time.Second
	return c
}

func startSession(t *testing.T, cfg console.Config, admin consoleAdmin, dir string) *harness {
	t.Helper()
	hash, err := console.ParseHash(cfg.PasswordHash)
	require.NoError(t, err)
	guard, err := console.OpenGuard(dir, cfg)
	require.NoError(t, err)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h := newScreen(t, inW, outR)
	h.done, h.audit = make(chan string, 1), &recordedAudit{}
	s := &session{cfg: cfg, hash: hash, guard: guard, audit: h.audit, admin: admin,
		config: func() (string, map[string]any) {
			return "/etc/weir/weir.yaml", (&gateway.Config{Console: cfg}).Redacted().Map()
		},
		gateway: "gw-test", tty: "/dev/ttyS0", now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		h.done <- s.run(ctx, struct {
			io.Reader
			io.Writer
		}{inR, outW})
		outW.Close()
	}()
	t.Cleanup(func() { cancel(); inW.Close() })
	return h
}

// newScreen collects what out shows; in takes what is typed.
func newScreen(t *testing.T, in io.Writer, out io.Reader) *harness {
	h := &harness{t: t, in: in}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := out.Read(buf)
			h.mu.Lock()
			h.out = append(h.out, buf[:n]...)
			h.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return h
}

func (h *harness) typeLine(s string) {
	h.t.Helper()
	_, err := io.WriteString(h.in, s+"\r")
	require.NoError(h.t, err)
}

// expect waits for want in the output after what earlier expects took,
// and returns the output up to and including it.
func (h *harness) expect(want string) string {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		out := string(h.out[h.mark:])
		if i := strings.Index(out, want); i >= 0 {
			h.mark += i + len(want)
			h.mu.Unlock()
			return strings.ReplaceAll(out[:i+len(want)], "\r\n", "\n")
		}
		h.mu.Unlock()
		if time.Now().After(deadline) {
			h.t.Fatalf("no %q in the output within 10s; after the last match:\n%s", want, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) ended() string {
	h.t.Helper()
	select {
	case why := <-h.done:
		return why
	case <-time.After(10 * time.Second):
		h.t.Fatal("the session did not end")
	}
	return ""
}

func (h *harness) login() {
	h.t.Helper()
	h.expect("login: ")
	h.typeLine("technician")
	h.expect("password: ")
	h.typeLine(testPassword)
	h.expect("gw-test> ")
}

func TestConsoleSession(t *testing.T) {
	cfg := testConsoleConfig(t)
	admin := &fakeAdmin{
		status:  &gateway.Status{Gateway: "gw-test", Version: "dev", Uplink: senderDisabled()},
		sensors: &gateway.Sensors{},
		sections: map[string]json.RawMessage{
			"board": json.RawMessage(`{"profile":"sim","leds":{"power":"on","link":"slow-blink"},"tamper":{"open":false,"openings":2},"watchdog":{"device":"/dev/watchdog","kicking":true,"timeout_seconds":15}}`),
		},
		logs: &gateway.Logs{Lines: []string{"level=INFO msg=one", "level=WARN msg=two", "level=INFO msg=three"}, Total: 3},
	}
	h := startSession(t, cfg, admin, t.TempDir())
	h.expect("Every login and command is recorded.")
	h.expect("login: ")
	h.typeLine("admin")
	h.expect("password: ")
	h.typeLine(testPassword)
	h.expect("Login incorrect.")
	h.typeLine("technician")
	h.expect("password: ")
	h.typeLine(testPassword)
	h.expect("Logged in as technician.")
	h.expect("gw-test> ")
	require.Equal(t, []string{"login_failed", "login"}, h.audit.actions())
	require.Equal(t, console.Unknown, h.audit.recs[0].User, "a wrong name is not recorded as typed")

	h.typeLine("status")
	require.Contains(t, h.expect("gw-test> "), "gateway  gw-test  (weir dev")
	h.typeLine("board")
	board := h.expect("gw-test> ")
	require.Contains(t, board, "profile   sim\nleds\n  power  on\n  link   slow-blink\ntamper\n  open      false\n  openings  2\nwatchdog\n")
	require.Contains(t, board, "  kicking          true\n")
	h.typeLine("config show")
	cs := h.expect("gw-test> ")
	require.Contains(t, cs, "password_hash: <redacted>")
	require.NotContains(t, cs, cfg.PasswordHash[30:])
	h.typeLine("logs 2")
	require.Contains(t, h.expect("gw-test> "), "level=WARN msg=two\nlevel=INFO msg=three\n")
	h.typeLine("sh -c id")
	require.Contains(t, h.expect("gw-test> "), `unknown command "sh"; type help for the list`)
	h.typeLine("config")
	require.Contains(t, h.expect("gw-test> "), "config: did you mean config show?")
	admin.sections = map[string]json.RawMessage{"gateway": json.RawMessage(`"gw-test"`)}
	h.typeLine("board")
	require.Contains(t, h.expect("gw-test> "), "no board configured")
	admin.err = errors.New("gateway: admin socket /var/lib/weir/weir.sock: no socket there")
	h.typeLine("sensors")
	require.Contains(t, h.expect("gw-test> "), "sensors: gateway: admin socket /var/lib/weir/weir.sock: no socket there")
	h.typeLine("exit")
	h.expect("logged out")
	require.Equal(t, endExit, h.ended())

	require.Equal(t, []string{"login_failed", "login", "command status", "command board", "command config show",
		"command logs 2", "command sh -c id", "command config", "command board", "command sensors", "command exit", "logout"},
		h.audit.actions())
	for _, r := range h.audit.recs[2:] {
		require.Equal(t, "technician", r.User)
		require.Equal(t, "/dev/ttyS0", r.TTY)
	}
	require.Equal(t, `refused: unknown command "sh"; type help for the list`, h.audit.recs[6].Outcome)
	require.Equal(t, "exit", h.audit.last().Outcome)
}

func senderDisabled() (s sender.Status) { s.State = "disabled"; return s }

func TestConsoleLockout(t *testing.T) {
	cfg := testConsoleConfig(t)
	dir := t.TempDir()
	h := startSession(t, cfg, &fakeAdmin{}, dir)
	var delays []time.Duration
	for i := range 3 {
		h.expect("login: ")
		h.typeLine("technician")
		h.expect("password: ")
		start := time.Now()
		h.typeLine("wrong " + string(rune('a'+i)))
		if i < 2 {
			h.expect("Login incorrect.")
			delays = append(delays, time.Since(start))
		}
	}
	h.expect("3 failed logins: the console is locked for 1s.")
	// The delay doubles: at least failure_delay, then at least twice it.
	require.GreaterOrEqual(t, delays[0], cfg.FailureDelay)
	require.GreaterOrEqual(t, delays[1], 2*cfg.FailureDelay)
	require.Equal(t, []string{"login_failed", "login_failed", "login_failed", "lockout"}, h.audit.actions())
	require.Equal(t, 3, h.audit.last().Count)

	// Locked: the password is not even asked for.
	h.expect("login: ")
	h.typeLine("technician")
	out := h.expect("login: ")
	require.Contains(t, out, "The console is locked after 3 failed logins; try again in 1s")
	require.NotContains(t, out, "password:")
	require.Equal(t, "login_refused", h.audit.actions()[4])

	// A new session (the console restarted) is locked too, until the
	// lockout ends.
	h2 := startSession(t, cfg, &fakeAdmin{}, dir)
	h2.expect("login: ")
	h2.typeLine("technician")
	h2.expect("The console is locked")
	time.Sleep(cfg.Lockout)
	h2.login()
	require.Equal(t, []string{"login_refused", "login"}, h2.audit.actions())
}

func TestConsoleIdleTimeout(t *testing.T) {
	cfg := testConsoleConfig(t)
	cfg.IdleTimeout = time.Second
	h := startSession(t, cfg, &fakeAdmin{}, t.TempDir())
	h.login()
	h.expect("session closed: no key pressed for 1s")
	require.Equal(t, endIdle, h.ended())
	require.Equal(t, []string{"login", "logout"}, h.audit.actions())
	require.Equal(t, "idle", h.audit.last().Outcome)

	// At the login prompt too.
	h = startSession(t, cfg, &fakeAdmin{}, t.TempDir())
	h.expect("login: ")
	h.expect("session closed: no key pressed for 1s")
	require.Equal(t, endIdle, h.ended())
	require.Empty(t, h.audit.actions(), "nobody logged in, nobody logs out")
}

// TestConsoleOutputFits: every command's output, from views whose every
// string is hostile, fits 80 columns and holds nothing a terminal acts on.
func TestConsoleOutputFits(t *testing.T) {
	now := time.Now()
	status := poisoned[gateway.Status]()
	status.Uplink.State = "connected"
	status.Started = now.Add(-time.Hour)
	ptpSt := poisoned[ptp.Status]()
	ptpSt.Mode = ptp.ModeBuiltin
	board, err := json.Marshal(map[string]any{hostile: map[string]any{hostile: []any{hostile, 1, map[string]any{hostile: hostile}}}})
	require.NoError(t, err)
	admin := &fakeAdmin{status: status, sensors: poisoned[gateway.Sensors](), link: poisoned[gateway.Link](), ptp: ptpSt,
		sections: map[string]json.RawMessage{"board": board},
		logs:     &gateway.Logs{Lines: []string{hostile, strings.Repeat("long line without a space ", 20)}}}
	h := startSession(t, testConsoleConfig(t), admin, t.TempDir())
	h.login()
	for _, c := range []string{"status", "sensors", "spool", "link", "ptp", "board", "config show", "logs", "alerts", "help"} {
		h.typeLine(c)
		out := h.expect("gw-test> ")
		out = strings.TrimSuffix(out, "gw-test> ")
		requireTerminalSafeConsole(t, c, out)
		for _, line := range strings.Split(out, "\n") {
			require.LessOrEqual(t, utf8.RuneCountInString(line), consoleWidth, "%s: %q", c, line)
		}
	}
}

// requireTerminalSafeConsole is requireTerminalSafe for output that the
// terminal's own line editing also wrote to (CR LF already made LF).
func requireTerminalSafeConsole(t *testing.T, what, out string) {
	t.Helper()
	require.True(t, utf8.ValidString(out), what)
	for i, r := range out {
		if r != '\n' && r != ' ' && !(r >= 0x20 && r != 0x7f && !(r >= 0x80 && r < 0xa0)) {
			t.Fatalf("%s: %U at byte %d of its output:\n%s", what, r, i, out)
		}
	}
	require.NotContains(t, out, "\x1b", what)
	require.NotContains(t, out, "\u202e", what)
}

func TestFold(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"short", "short\n"},
		{strings.Repeat("a", 80), strings.Repeat("a", 80) + "\n"},
		{strings.Repeat("word ", 20), strings.Repeat("word ", 15) + "word\n  word word word word\n"},
		{"  " + strings.Repeat("x", 100), "  " + strings.Repeat("x", 78) + "\n    " + strings.Repeat("x", 22) + "\n"},
		{"a\tb", "a       b\n"},
	} {
		require.Equal(t, c.want, fold(c.in, 80), "%q", c.in)
	}
	var b bytes.Buffer
	f := newFoldWriter(&b, 10)
	printf(f, "one two three four")
	printf(f, " five\nsix")
	require.NoError(t, f.Flush())
	require.Equal(t, "one two\n  three\n  four\n  five\nsix\n", b.String())
}

func TestParseCommand(t *testing.T) {
	for _, c := range []struct{ line, name, err string }{
		{"status", "status", ""},
		{"  status  ", "status", ""},
		{"logout", "exit", ""},
		{"logs 30", "logs", ""},
		{"logs 30 40", "logs", "logs takes at most one argument"},
		{"status now", "status", "status takes no arguments"},
		{"config show", "config", ""},
		{"config edit", "config", "did you mean config show?"},
		{"bash", "", `unknown command "bash"`},
		{"../../bin/sh", "", `unknown command "../../bin/sh"`},
	} {
		cmd, _, err := parseCommand(c.line)
		if c.err != "" {
			require.ErrorContains(t, err, c.err, c.line)
			continue
		}
		require.NoError(t, err, c.line)
		require.Equal(t, c.name, cmd.name)
	}
	line, pos, ok := complete("sta", 3, '\t')
	require.True(t, ok)
	require.Equal(t, "status ", line)
	require.Equal(t, 7, pos)
	line, _, ok = complete("con", 3, '\t')
	require.True(t, ok)
	require.Equal(t, "config show ", line)
	_, _, ok = complete("s", 1, '\t')
	require.False(t, ok, "status, sensors, spool: no one completion")
}
