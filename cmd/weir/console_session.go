package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/gateway/console"
	"github.com/weirgw/weir/ptp"
)

// consoleAdmin is what a console session asks the running gateway.
type consoleAdmin interface {
	Status(ctx context.Context) (*gateway.Status, error)
	StatusSections(ctx context.Context) (map[string]json.RawMessage, error)
	Sensors(ctx context.Context) (*gateway.Sensors, error)
	Link(ctx context.Context) (*gateway.Link, error)
	PTP(ctx context.Context) (*ptp.Status, error)
	Logs(ctx context.Context, n int) (*gateway.Logs, error)
}

// loginGuard counts failed logins (console.Guard).
type loginGuard interface {
	Check(now time.Time) (console.Verdict, error)
	Failed(now time.Time) (console.Verdict, error)
	Succeeded(now time.Time) error
}

// auditSink takes the session's audit records; delivered says whether
// the gateway took it now (false: kept to be sent later, or lost).
type auditSink interface {
	Audit(ctx context.Context, r console.Record) (delivered bool)
}

// session is one technician's session on one terminal: the login, then
// the shell, until exit, an idle timeout or a hang-up.
type session struct {
	cfg     console.Config
	hash    *console.Hash
	guard   loginGuard
	audit   auditSink
	admin   consoleAdmin
	config  func() (string, map[string]any) // source and redacted effective configuration
	gateway string                          // the gateway's id, for the banner and prompt
	tty     string
	now     func() time.Time

	t    *term.Terminal
	out  *foldWriter
	end  *foldWriter // past the terminal, once reading has ended
	user string
	// warned: the technician was told the gateway is not taking audit
	// records (they are kept on the board meanwhile).
	warned bool
}

// Why a session ended, as its logout record says.
const (
	endExit       = "exit"
	endIdle       = "idle"
	endEOF        = "eof"
	endHangup     = "hangup"
	endTerminated = "terminated"
)

// adminTimeout bounds each question to the gateway.
const adminTimeout = 5 * time.Second

// run holds the session on rw until it ends and says why.
func (s *session) run(ctx context.Context, rw io.ReadWriter) string {
	in := newIdleReader(ctx, rw, s.cfg.IdleTimeout)
	defer in.stop()
	s.t = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, rw}, "")
	s.out = newFoldWriter(s.t, consoleWidth)
	s.end = newFoldWriter(crlfWriter{rw}, consoleWidth)
	printf(s.out, "\nWeir gateway %s: serial console (weir %s)\n", s.gateway, version)
	printf(s.out, "Authorized technicians only. Every login and command is recorded.\n\n")
	if !s.login(ctx) {
		return s.ended(ctx, in.err(), false)
	}
	return s.shell(ctx, in)
}

// ended names why reading stopped, tells the technician and, for a
// session logged in, records the logout.
func (s *session) ended(ctx context.Context, err error, loggedIn bool) string {
	why := endHangup
	s.out = s.end
	switch {
	case errors.Is(err, errIdle):
		why = endIdle
		printf(s.out, "\nsession closed: no key pressed for %s\n", s.cfg.IdleTimeout)
	case ctx.Err() != nil:
		why = endTerminated
		printf(s.out, "\nsession closed: the console is stopping\n")
	case errors.Is(err, io.EOF):
		why = endEOF
	case err == nil:
		why = endExit
	}
	if loggedIn {
		r := console.NewRecord(s.now(), console.ActionLogout, s.tty, s.user)
		r.Outcome = why
		s.send(ctx, r)
		printf(s.out, "logged out\n")
	}
	return why
}

// send hands r to the audit sink, telling the technician once per
// session when the gateway is not taking records.
func (s *session) send(ctx context.Context, r console.Record) {
	// A record is sent even as the console stops: the session's end is
	// part of the trail.
	if !s.audit.Audit(context.WithoutCancel(ctx), r) && !s.warned {
		s.warned = true
		printf(s.out, "note: the gateway is not taking audit records; they are kept on the board until it does\n")
	}
}

// login reads logins until one is good; false when reading ends first.
func (s *session) login(ctx context.Context) bool {
	for {
		v, err := s.guard.Check(s.now())
		if err != nil {
			printf(s.out, "console: %v\n", err)
			return false
		}
		if v.Damaged {
			printf(s.out, "The login state could not be read: the console counts as locked.\n")
		}
		if !sleepUntil(ctx, v.NotBefore) {
			return false
		}
		s.t.SetPrompt("login: ")
		name, err := s.t.ReadLine()
		if err != nil && !errors.Is(err, term.ErrPasteIndicator) {
			return false
		}
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		user := console.Unknown
		known := subtle.ConstantTimeCompare([]byte(name), []byte(s.cfg.User)) == 1
		if known {
			user = s.cfg.User
		}
		if v, err = s.guard.Check(s.now()); err != nil {
			printf(s.out, "console: %v\n", err)
			return false
		}
		if v.Locked {
			// Not even asked for: a password typed now is never checked.
			r := console.NewRecord(s.now(), console.ActionLoginRefused, s.tty, user)
			r.Count = v.Failures
			s.send(ctx, r)
			printf(s.out, "The console is locked after %d failed logins; try again in %s (at %s).\n",
				v.Failures, roundUp(v.LockedUntil.Sub(s.now())), v.LockedUntil.UTC().Format("15:04:05 UTC"))
			if !sleepFor(ctx, s.cfg.FailureDelay) {
				return false
			}
			continue
		}
		pw, err := s.t.ReadPassword("password: ")
		if err != nil && !errors.Is(err, term.ErrPasteIndicator) {
			return false
		}
		// The password is checked whatever the name, so that a wrong
		// name takes as long as a wrong password.
		good := s.hash.Verify([]byte(pw)) && known
		// argon2id's memory (64 MiB by default) goes back to the board
		// now, not at the collector's leisure.
		debug.FreeOSMemory()
		if good {
			if err := s.guard.Succeeded(s.now()); err != nil {
				printf(s.out, "console: %v\n", err)
				return false
			}
			s.user = user
			s.send(ctx, console.NewRecord(s.now(), console.ActionLogin, s.tty, user))
			return true
		}
		if v, err = s.guard.Failed(s.now()); err != nil {
			printf(s.out, "console: %v\n", err)
			return false
		}
		r := console.NewRecord(s.now(), console.ActionLoginFailed, s.tty, user)
		r.Count = v.Failures
		s.send(ctx, r)
		if v.Locked {
			l := console.NewRecord(s.now(), console.ActionLockout, s.tty, user)
			l.Count, l.Outcome = v.Failures, "locked for "+s.cfg.Lockout.String()
			s.send(ctx, l)
			printf(s.out, "Login incorrect. %d failed logins: the console is locked for %s.\n", v.Failures, s.cfg.Lockout)
			continue
		}
		if !sleepUntil(ctx, v.NotBefore) {
			return false
		}
		printf(s.out, "Login incorrect.\n")
	}
}

// consoleCommand is one thing a technician may type. There is no other:
// no shell, no file access, nothing that changes the gateway.
type consoleCommand struct {
	name, args, help string
	run              func(s *session, ctx context.Context, args []string) error
}

var errExit = errors.New("exit")

func consoleCommands() []consoleCommand {
	return []consoleCommand{
		{"status", "", "sources, spool backlog and uplink", func(s *session, ctx context.Context, _ []string) error {
			st, err := s.admin.Status(ctx)
			if err == nil {
				printStatus(s.out, st, s.now())
			}
			return err
		}},
		{"sensors", "", "Modbus buses and devices, line sensors", func(s *session, ctx context.Context, _ []string) error {
			st, err := s.admin.Sensors(ctx)
			if err == nil {
				printSensors(s.out, st)
			}
			return err
		}},
		{"spool", "", "backlog, bound, evictions, disk use", func(s *session, ctx context.Context, _ []string) error {
			st, err := s.admin.Status(ctx)
			if err == nil {
				printSpool(s.out, st.Spool, s.now())
			}
			return err
		}},
		{"link", "", "the uplink per endpoint: RTT, loss, handshakes", func(s *session, ctx context.Context, _ []string) error {
			l, err := s.admin.Link(ctx)
			if err == nil {
				printLink(s.out, l)
			}
			return err
		}},
		{"alerts", "", "the edge rules: state, counts, last alert", func(s *session, ctx context.Context, _ []string) error {
			st, err := s.admin.Status(ctx)
			if err == nil {
				printAlerts(s.out, &st.Alerts, s.now())
			}
			return err
		}},
		{"ptp", "", "the clock: mode, state, offset, error bound", func(s *session, ctx context.Context, _ []string) error {
			st, err := s.admin.PTP(ctx)
			if err == nil {
				printPTP(s.out, st, s.now())
			}
			return err
		}},
		{"board", "", "LEDs, tamper switch, watchdog", func(s *session, ctx context.Context, _ []string) error {
			secs, err := s.admin.StatusSections(ctx)
			if err != nil {
				return err
			}
			b, ok := secs["board"]
			if !ok || string(b) == "null" {
				printf(s.out, "no board configured\n")
				return nil
			}
			return printSection(s.out, b)
		}},
		{"config", "show", "the configuration in force, secrets redacted", func(s *session, _ context.Context, _ []string) error {
			src, m := s.config()
			b, err := yaml.Marshal(m)
			if err != nil {
				return err
			}
			printf(s.out, "# %s (secrets redacted)\n", src)
			return writeText(s.out, string(b))
		}},
		{"logs", "[N]", "the gateway's newest log lines (20; at most 500)", func(s *session, ctx context.Context, args []string) error {
			n := 20
			if len(args) == 1 {
				var err error
				if n, err = strconv.Atoi(args[0]); err != nil || n < 1 || n > 500 {
					return fmt.Errorf("%q: want a number from 1 to 500", args[0])
				}
			}
			l, err := s.admin.Logs(ctx, n)
			if err != nil {
				return err
			}
			for _, line := range l.Lines {
				printf(s.out, "%s\n", line)
			}
			if len(l.Lines) == 0 {
				printf(s.out, "no log lines yet\n")
			}
			return nil
		}},
		{"help", "", "this list", func(s *session, _ context.Context, _ []string) error {
			for _, c := range consoleCommands() {
				printf(s.out, "  %-14s %s\n", strings.TrimSpace(c.name+" "+c.args), c.help)
			}
			printf(s.out, "Up and down arrows recall earlier lines; Tab completes a command.\n")
			return nil
		}},
		{"exit", "", "end the session (also logout, Ctrl-D)", func(*session, context.Context, []string) error { return errExit }},
	}
}

// parseCommand finds the command a line names and its arguments; an
// error says what is wrong in the technician's words.
func parseCommand(line string) (consoleCommand, []string, error) {
	words := strings.Fields(line)
	if len(words) == 0 {
		return consoleCommand{}, nil, errors.New("empty")
	}
	verb := words[0]
	if verb == "logout" || verb == "quit" {
		verb = "exit"
	}
	for _, c := range consoleCommands() {
		if c.name != verb {
			continue
		}
		args := words[1:]
		switch {
		case c.args == "show":
			if len(args) != 1 || args[0] != "show" {
				return c, nil, fmt.Errorf("%s: did you mean %s show?", verb, verb)
			}
			return c, nil, nil
		case c.args == "" && len(args) > 0:
			return c, nil, fmt.Errorf("%s takes no arguments", verb)
		case c.args != "" && len(args) > 1:
			return c, nil, fmt.Errorf("%s takes at most one argument", verb)
		}
		return c, args, nil
	}
	return consoleCommand{}, nil, fmt.Errorf("unknown command %q; type help for the list", verb)
}

// shell runs commands until the session ends.
func (s *session) shell(ctx context.Context, in *idleReader) string {
	printf(s.out, "Logged in as %s. Type help for the commands; the session ends after %s without a key.\n",
		s.user, s.cfg.IdleTimeout)
	s.t.SetPrompt(s.gateway + "> ")
	s.t.AutoCompleteCallback = complete
	for {
		line, err := s.t.ReadLine()
		if err != nil && !errors.Is(err, term.ErrPasteIndicator) {
			return s.ended(ctx, in.err(), true)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		line = truncate(line, console.MaxCommandLen)
		c, args, perr := parseCommand(line)
		r := console.NewRecord(s.now(), console.ActionCommand, s.tty, s.user)
		r.Command, r.Outcome = line, "run"
		if perr != nil {
			r.Outcome = truncate("refused: "+perr.Error(), console.MaxOutcomeLen)
		}
		// Recorded before it runs: a command that hangs the console is
		// still on the trail.
		s.send(ctx, r)
		if perr != nil {
			printf(s.out, "%v\n", perr)
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, adminTimeout)
		err = c.run(s, qctx, args)
		cancel()
		_ = s.out.Flush()
		if errors.Is(err, errExit) {
			return s.ended(ctx, nil, true)
		}
		if err != nil {
			printf(s.out, "%s: %v\n", c.name, err)
		}
	}
}

// complete is the Tab key: the one command a prefix names.
func complete(line string, pos int, key rune) (string, int, bool) {
	if key != '\t' || pos != len(line) {
		return "", 0, false
	}
	var names []string
	for _, c := range consoleCommands() {
		full := c.name
		if c.args == "show" {
			full += " show"
		}
		if strings.HasPrefix(full, line) {
			names = append(names, full)
		}
	}
	if len(names) != 1 || slices.Contains(names, line) {
		return "", 0, false
	}
	return names[0] + " ", len(names[0]) + 1, true
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// roundUp shows a wait in whole seconds, never as 0s while one remains.
func roundUp(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}

// sleepUntil waits until t (a zero t is now); false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	if t.IsZero() {
		return ctx.Err() == nil
	}
	return sleepFor(ctx, time.Until(t))
}

func sleepFor(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
