package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/gateway/console"
	"github.com/weirgw/weir/ptp"
)

func newConsoleCmd(g *globals) *cobra.Command {
	var (
		tty, socket string
		once        bool
	)
	cmd := &cobra.Command{
		Use:   "console",
		Short: "A technician's shell on a serial line (or stdin): a login, then the diagnostics only, every step audited",
		Long: `A shell for a technician at the board's serial port: a login checked against
console.password_hash (weir passwd makes one), with a growing delay after each
failed login and a lockout after console.max_failures, then the diagnostics
(status, sensors, spool, link, ptp, board, config show, logs) and nothing else.
Every login, failed login and command is an audit record the gateway spools and
sends upstream (source weir:console). A session ends on exit, Ctrl-D, a hang-up
or console.idle_timeout without a key.

With --tty the console holds the line and serves one session after another
until stopped; without, one session on stdin and stdout. Run it as weir's own
user (or root): the gateway takes audit records from no one else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.load(cmd)
			if err != nil {
				return err
			}
			c, err := newConsole(l, socket)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			if tty == "" {
				return c.serveStdio(ctx)
			}
			c.log = newLogger(l.Log).With("part", "console", "tty", tty)
			return c.serveTTY(ctx, tty, once)
		},
	}
	cmd.Flags().StringVar(&tty, "tty", "", "serial line to serve (e.g. /dev/ttyS0); default: stdin and stdout")
	cmd.Flags().StringVar(&socket, "socket", "", "admin socket (default: from the configuration)")
	cmd.Flags().BoolVar(&once, "once", false, "with --tty: serve one session, then exit")
	return cmd
}

// consoleServer holds what every session of one console shares.
type consoleServer struct {
	loaded *gateway.Loaded
	cfg    console.Config
	hash   *console.Hash
	guard  *console.Guard
	outbox *console.Outbox
	socket string
	log    *slog.Logger
}

func newConsole(l *gateway.Loaded, socket string) (*consoleServer, error) {
	cfg := l.Console
	if cfg.PasswordHash == "" {
		return nil, errors.New("console: console.password_hash is empty: no login could pass (weir passwd prints a hash to put there)")
	}
	hash, err := console.ParseHash(cfg.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("console: console.password_hash: %w", err)
	}
	if socket == "" {
		socket = gateway.SocketPath(l.Config)
	}
	dir := gateway.ConsoleStateDir(l.Config)
	guard, err := console.OpenGuard(dir, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w (the console keeps its lockout there; run it as weir's user, or set data_dir)", err)
	}
	return &consoleServer{loaded: l, cfg: cfg, hash: hash, guard: guard, outbox: console.OpenOutbox(dir),
		socket: socket, log: slog.New(slog.DiscardHandler)}, nil
}

func (c *consoleServer) session(tty string) *session {
	return &session{
		cfg: c.cfg, hash: c.hash, guard: c.guard, admin: socketAdmin{c.socket},
		audit:   &outboxAuditor{socket: c.socket, outbox: c.outbox, tty: tty, log: c.log},
		config:  func() (string, map[string]any) { return c.loaded.Source(), c.loaded.Redacted().Map() },
		gateway: c.loaded.Gateway.ID, tty: tty, now: time.Now,
	}
}

// serveStdio holds one session on stdin and stdout, in raw mode when
// stdin is a terminal.
func (c *consoleServer) serveStdio(ctx context.Context) error {
	rw := struct {
		io.Reader
		io.Writer
	}{os.Stdin, os.Stdout}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("console: stdin: raw mode: %w", err)
		}
		defer term.Restore(fd, old)
	}
	c.session("stdin").run(ctx, rw)
	return nil
}

// serveTTY serves sessions on a serial line until ctx ends (or after one,
// with once). A line that cannot be opened at start is an error; one that
// goes away later (a USB adapter pulled) is opened again every few
// seconds.
func (c *consoleServer) serveTTY(ctx context.Context, dev string, once bool) error {
	go c.flushEvery(ctx, dev, outboxFlushInterval)
	first := true
	for ctx.Err() == nil {
		f, restore, err := openTTY(dev)
		if err != nil {
			if first {
				return fmt.Errorf("console: %w", err)
			}
			c.log.Warn("console line not open; trying again", "err", err)
			sleepFor(ctx, 5*time.Second)
			continue
		}
		first = false
		why := c.session(dev).run(ctx, f)
		restore()
		f.Close()
		c.log.Info("console session ended", "why", why)
		if once {
			return nil
		}
		if why == endHangup {
			sleepFor(ctx, time.Second) // a dead line would spin
		}
	}
	return nil
}

// outboxFlushInterval is how often a console on a line, waiting for a
// login, hands kept audit records to the gateway.
const outboxFlushInterval = 30 * time.Second

// flushEvery empties the outbox into the gateway every interval, so a
// trail kept while the gateway was down reaches it without waiting for
// the next login.
func (c *consoleServer) flushEvery(ctx context.Context, tty string, interval time.Duration) {
	a := &outboxAuditor{socket: c.socket, outbox: c.outbox, tty: tty, log: c.log}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.outbox.Len() == 0 {
			continue
		}
		if n, err := a.flush(ctx); n > 0 || err == nil {
			c.log.Info("kept audit records handed to the gateway", "records", n, "err", err)
		}
	}
}

// socketAdmin asks the gateway over its admin socket.
type socketAdmin struct{ socket string }

func (a socketAdmin) Status(ctx context.Context) (*gateway.Status, error) {
	return gateway.FetchStatus(ctx, a.socket)
}
func (a socketAdmin) StatusSections(ctx context.Context) (map[string]json.RawMessage, error) {
	return gateway.FetchStatusSections(ctx, a.socket)
}
func (a socketAdmin) Sensors(ctx context.Context) (*gateway.Sensors, error) {
	return gateway.FetchSensors(ctx, a.socket)
}
func (a socketAdmin) Link(ctx context.Context) (*gateway.Link, error) {
	return gateway.FetchLink(ctx, a.socket)
}
func (a socketAdmin) PTP(ctx context.Context) (*ptp.Status, error) {
	return gateway.FetchPTP(ctx, a.socket)
}
func (a socketAdmin) Logs(ctx context.Context, n int) (*gateway.Logs, error) {
	return gateway.FetchLogs(ctx, a.socket, n)
}

// outboxAuditor sends each record to the gateway, after whatever the
// outbox holds (so the trail keeps its order), and keeps it in the outbox
// when the gateway does not take it.
type outboxAuditor struct {
	socket string
	outbox *console.Outbox
	tty    string
	log    *slog.Logger
}

func (a *outboxAuditor) send(ctx context.Context, recs []console.Record) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	return gateway.SendAudit(ctx, a.socket, recs)
}

// flush hands what the outbox keeps to the gateway.
func (a *outboxAuditor) flush(ctx context.Context) (int, error) {
	return a.outbox.Flush(time.Now(), a.tty, func(recs []console.Record) error { return a.send(ctx, recs) })
}

func (a *outboxAuditor) Audit(ctx context.Context, r console.Record) bool {
	_, err := a.flush(ctx)
	if err == nil {
		err = a.send(ctx, []console.Record{r})
	}
	if err == nil {
		return true
	}
	a.log.Warn("audit record kept for later: the gateway did not take it", "action", r.Action, "err", err)
	if kerr := a.outbox.Add(r); kerr != nil {
		a.log.Error("audit record lost: the outbox cannot keep it", "action", r.Action, "err", kerr)
	}
	return false
}
