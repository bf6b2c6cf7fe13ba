package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"
)

// console is the board's serial console as a technician's terminal sees
// it: the pty QEMU wires the board's first UART to, opened raw. Everything
// the board prints is kept (and logged) so that expect can wait for a
// pattern in what came since the last match.
type console struct {
	f       *os.File
	log     io.Writer
	mu      sync.Mutex
	buf     strings.Builder // what the board printed, \r and escapes removed
	mark    int             // expect looks from here
	changed chan struct{}
	readErr error
}

// ansi matches the terminal control sequences golang.org/x/term writes
// around its prompt.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

func openConsole(path string, log io.Writer) (*console, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("console %s: %w", path, err)
	}
	if _, err := term.MakeRaw(int(f.Fd())); err != nil {
		f.Close()
		return nil, fmt.Errorf("console %s: raw mode: %w", path, err)
	}
	c := &console{f: f, log: log, changed: make(chan struct{}, 1)}
	go c.read()
	return c, nil
}

func (c *console) read() {
	b := make([]byte, 4096)
	var pending string // an escape sequence cut by a read
	for {
		n, err := c.f.Read(b)
		if n > 0 {
			_, _ = c.log.Write(b[:n])
			text := pending + strings.ReplaceAll(string(b[:n]), "\r", "")
			pending = ""
			if i := strings.LastIndexByte(text, 0x1b); i >= 0 && !ansi.MatchString(text[i:]) && len(text)-i < 16 {
				text, pending = text[:i], text[i:]
			}
			c.mu.Lock()
			c.buf.WriteString(ansi.ReplaceAllString(text, ""))
			c.mu.Unlock()
			c.notify()
		}
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			c.notify()
			return
		}
	}
}

func (c *console) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// expect waits for re in what the board printed since the last match and
// returns that text, up to the end of the match.
func (c *console) expect(ctx context.Context, re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		all := c.buf.String()
		seen := all[c.mark:]
		if loc := re.FindStringIndex(seen); loc != nil {
			c.mark += loc[1]
			c.mu.Unlock()
			return seen[:loc[1]], nil
		}
		readErr := c.readErr
		c.mu.Unlock()
		if readErr != nil {
			return seen, fmt.Errorf("console closed (%v) waiting for %q; last output:\n%s", readErr, re, tail(seen, 1200))
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			return seen, fmt.Errorf("no %q on the console within %s; last output:\n%s", re, timeout, tail(seen, 1200))
		case <-ctx.Done():
			return seen, ctx.Err()
		}
	}
}

// seen says whether re matches anything the board printed so far.
func (c *console) seen(re *regexp.Regexp) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return re.MatchString(c.buf.String())
}

// send types a line and Enter.
func (c *console) send(line string) error {
	_, err := c.f.WriteString(line + "\r")
	return err
}

func (c *console) close() { c.f.Close() }

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// session is a logged-in session on the console.
type session struct {
	c          *console
	promptText string
	prompt     *regexp.Regexp
}

// The console's prompts. Not anchored at the end of the output: a kernel
// message may follow a prompt on the same port.
var (
	loginPrompt    = regexp.MustCompile(`(^|\n)login: `)
	passwordPrompt = regexp.MustCompile(`password: `)
	loggedIn       = regexp.MustCompile(`Logged in as (\S+)\.`)
)

// login answers the console's login prompt, already awaited.
func login(ctx context.Context, c *console, user, password, gateway string) (*session, error) {
	if err := c.send(user); err != nil {
		return nil, err
	}
	if _, err := c.expect(ctx, passwordPrompt, 30*time.Second); err != nil {
		return nil, err
	}
	if err := c.send(password); err != nil {
		return nil, err
	}
	// argon2id under emulation takes its time.
	if _, err := c.expect(ctx, loggedIn, 2*time.Minute); err != nil {
		return nil, err
	}
	t := &session{c: c, promptText: gateway + "> ", prompt: regexp.MustCompile(`(^|\n)` + regexp.QuoteMeta(gateway+"> "))}
	if _, err := c.expect(ctx, t.prompt, 30*time.Second); err != nil {
		return nil, err
	}
	return t, nil
}

// run types a command and returns what it printed, up to the next prompt.
func (t *session) run(ctx context.Context, command string) (string, error) {
	if err := t.c.send(command); err != nil {
		return "", err
	}
	out, err := t.c.expect(ctx, t.prompt, time.Minute)
	if err != nil {
		return "", fmt.Errorf("%s: %w", command, err)
	}
	out = strings.TrimSuffix(out, t.promptText)
	// The first line is the command as echoed.
	if i := strings.IndexByte(out, '\n'); i >= 0 && strings.Contains(out[:i], command) {
		out = out[i+1:]
	}
	return out, nil
}

var loggedOut = regexp.MustCompile(`logged out\n`)

// exit ends the session.
func (t *session) exit(ctx context.Context) error {
	if err := t.c.send("exit"); err != nil {
		return err
	}
	_, err := t.c.expect(ctx, loggedOut, 30*time.Second)
	return err
}
