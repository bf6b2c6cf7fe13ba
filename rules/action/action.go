package action

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Job is one command to run.
type Job struct {
	Name    string   // what it is for, in logs ("page")
	Argv    []string // program (absolute path) and arguments
	Timeout time.Duration
	Stdin   []byte
	Env     []string // added to the gateway's environment
}

// Stats are a runner's counters.
type Stats struct {
	Started uint64 `json:"started"`
	Failed  uint64 `json:"failed"`  // exited non-zero, killed at the timeout, or could not start
	Skipped uint64 `json:"skipped"` // every slot was taken
}

// Runner runs jobs in the background.
type Runner struct {
	log                      *slog.Logger
	slots                    chan struct{}
	wg                       sync.WaitGroup
	started, failed, skipped atomic.Uint64
}

// MaxOutput is how much of a command's output is logged.
const MaxOutput = 4 << 10

// New makes a runner of at most parallel jobs at once.
func New(log *slog.Logger, parallel int) *Runner {
	if log == nil {
		log = slog.Default()
	}
	return &Runner{log: log, slots: make(chan struct{}, max(parallel, 1))}
}

// Run starts j in the background, or skips it when every slot is taken.
// ctx ends it early (the gateway stopping).
func (r *Runner) Run(ctx context.Context, j Job) {
	select {
	case r.slots <- struct{}{}:
	default:
		r.skipped.Add(1)
		r.log.Warn("alert command skipped: too many running", "action", j.Name, "command", j.Argv[0])
		return
	}
	r.started.Add(1)
	r.wg.Add(1)
	go func() {
		defer func() { <-r.slots; r.wg.Done() }()
		if err := r.run(ctx, j); err != nil {
			r.failed.Add(1)
		}
	}()
}

func (r *Runner) run(ctx context.Context, j Job) error {
	ctx, cancel := context.WithTimeout(ctx, j.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, j.Argv[0], j.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(j.Stdin)
	out := &capped{max: MaxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), j.Env...)
	// A child that keeps the output open must not hold the job past
	// its limit.
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	args := []any{"action", j.Name, "command", strings.Join(j.Argv, " "), "duration", time.Since(start).Round(time.Millisecond),
		"output", out.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.log.Info("alert command ran", args...)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		r.log.Warn("alert command killed at its timeout", append(args, "timeout", j.Timeout)...)
	case errors.As(err, &ee):
		r.log.Warn("alert command failed", append(args, "exit", ee.ExitCode())...)
	default:
		r.log.Error("alert command could not run", append(args, "err", err)...)
	}
	return err
}

// Wait waits for the running jobs.
func (r *Runner) Wait() { r.wg.Wait() }

// Stats returns the counters.
func (r *Runner) Stats() Stats {
	return Stats{Started: r.started.Load(), Failed: r.failed.Load(), Skipped: r.skipped.Load()}
}

// capped keeps the first max bytes written to it.
type capped struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room < len(p) {
		c.buf.Write(p[:max(room, 0)])
		c.truncated = true
	} else {
		c.buf.Write(p)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := strings.TrimSpace(c.buf.String())
	if c.truncated {
		s += " [output cut]"
	}
	return s
}
