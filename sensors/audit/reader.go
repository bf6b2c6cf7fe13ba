package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-libaudit/v2/rule"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// Sink is what the reader hands its records to. Emit returns only once
// the records AND the checkpoints are durable (the gateway stamps time
// and clock quality, encodes and appends both to the spool in one
// transaction). It may block (backpressure). A call may carry a
// checkpoint and no events. Emit must not keep the slices after it
// returns.
type Sink interface {
	Emit(ctx context.Context, events []event.Event, checkpoints []spool.Checkpoint) error
}

// Checkpoints gives the last committed position of a source: nil and no
// error when there is none. The spool has it.
type Checkpoints interface {
	Checkpoint(source string) ([]byte, error)
}

// Batch limits: one Emit carries at most this many events, and stops
// taking more once they hold this many bytes of message and field data
// (an event is at most maxEventBytes of lines, so a batch stays well
// within one spool append).
const (
	maxBatchEvents = 512
	maxBatchBytes  = 64 << 10
)

// readChunk is how much one read asks of the log.
const readChunk = 64 << 10

// maxRotated is how far the rotated logs (Path.1 ... Path.9) are searched
// for the file a checkpoint names: auditd's num_logs defaults to 5.
const maxRotated = 9

// maxRetryWait caps the wait between retries after Emit failed.
const maxRetryWait = 10 * time.Second

// States of the reader, for Status.
const (
	StateStopped = "stopped"
	StateWaiting = "waiting" // the log does not exist (yet) or cannot be opened
	StateReading = "reading"
)

// Reader follows auditd's log, or reads the kernel's audit stream, and
// emits one record per audit event.
type Reader struct {
	cfg     Config
	abs     string // absolute Path
	key     string // checkpoint source
	cps     Checkpoints
	log     *slog.Logger
	running atomic.Bool
	// batchEvents is maxBatchEvents; tests make it small to see many
	// Emits.
	batchEvents int

	// Source netlink: the rules in the kernel's format, how often its
	// status is read, and what opens a session (openKernel; tests give
	// captured messages instead).
	rules       []rule.WireFormat
	statusEvery time.Duration
	open        func(ctx context.Context, q *msgQueue) (kernelStream, []event.Event, error)

	mu     sync.Mutex // guards status
	status Status
}

// Status is a snapshot for the admin socket.
type Status struct {
	Name   string `json:"name"`
	Source string `json:"source"`         // file or netlink
	Path   string `json:"path,omitempty"` // source file
	State  string `json:"state"`
	// File is the file being read: Path, or a rotated Path.N being
	// finished.
	File string `json:"file,omitempty"`
	// Offset is the committed position in File: events before it are in
	// the spool.
	Offset int64 `json:"offset"`
	Size   int64 `json:"size"`
	// Pending are events read but not yet complete.
	Pending        int    `json:"pending_events"`
	Events         uint64 `json:"events"`  // emitted since start
	Records        uint64 `json:"records"` // lines read since start
	ParseErrors    uint64 `json:"parse_errors"`
	LastParseError string `json:"last_parse_error,omitempty"`
	Errors         uint64 `json:"errors"`
	LastError      string `json:"last_error,omitempty"`
	// Lost are events read from the kernel that the sink refused at
	// shutdown (source netlink: they cannot be read again).
	Lost uint64 `json:"lost,omitempty"`
	// Netlink is the kernel's side, for source netlink.
	Netlink NetlinkStatus `json:"netlink,omitzero"`
}

// NetlinkStatus is the kernel's audit status as last read, and what was
// dropped on the way from it.
type NetlinkStatus struct {
	Mode string `json:"mode"` // unicast or multicast, as in use
	// Enabled is the kernel's flag: 0 off, 1 on, 2 locked until reboot.
	Enabled uint32 `json:"enabled"`
	// DaemonPID is the audit daemon the kernel sends its records to:
	// Weir itself in unicast.
	DaemonPID uint32 `json:"daemon_pid"`
	// KernelLost is the kernel's lost counter, since boot: records it
	// dropped (backlog full, rate limit, no memory, no daemon).
	KernelLost      uint64 `json:"kernel_lost"`
	Backlog         uint32 `json:"backlog"`
	BacklogLimit    uint32 `json:"backlog_limit"`
	RateLimit       uint32 `json:"rate_limit"`
	BacklogWaitTime uint32 `json:"backlog_wait_time"`
	// Dropped are messages read that Weir's queue had no room for,
	// while the sink held back; Overflows the times the socket's buffer
	// overflowed (multicast: the kernel dropped what did not fit).
	Dropped   uint64 `json:"dropped"`
	Overflows uint64 `json:"socket_overflows"`
	// RulesLoaded are the configured rules in the kernel (unicast).
	RulesLoaded int `json:"rules_loaded"`
	// StatusError says why the kernel's status cannot be read (multicast
	// without CAP_AUDIT_CONTROL): the lost counter is not followed.
	StatusError string `json:"status_error,omitempty"`
}

// New makes a Reader for cfg; zero values in cfg take their defaults. cps
// gives the position committed by earlier runs. A nil logger discards.
func New(cfg Config, cps Checkpoints, logger *slog.Logger) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if cps == nil {
		return nil, errors.New("audit: no checkpoint store")
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Source == SourceNetlink {
		rules, err := buildRules(cfg.Rules)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		rd := &Reader{
			cfg: cfg, key: netlinkKey, cps: cps, batchEvents: maxBatchEvents,
			rules: rules, statusEvery: defaultStatusEvery,
			log:    logger.With("source", cfg.Name, "netlink", cfg.Mode),
			status: Status{Name: cfg.Name, Source: SourceNetlink, State: StateStopped},
		}
		rd.open = func(ctx context.Context, q *msgQueue) (kernelStream, []event.Event, error) {
			return openKernel(ctx, rd, q)
		}
		return rd, nil
	}
	abs, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("audit: path %q: %w", cfg.Path, err)
	}
	return &Reader{
		cfg: cfg, abs: abs, key: checkpointPrefix + abs, cps: cps, batchEvents: maxBatchEvents,
		log:    logger.With("source", cfg.Name, "path", abs),
		status: Status{Name: cfg.Name, Source: SourceFile, Path: abs, State: StateStopped},
	}, nil
}

// Name is the record source.
func (rd *Reader) Name() string { return rd.cfg.Name }

// Run reads until ctx is done and returns nil then; it returns an error
// only when misused. A missing log, read failures and a refusing sink are
// logged, shown in Status and retried. Run may be called again after it
// returned, but not concurrently; each call resumes from the committed
// checkpoint.
func (rd *Reader) Run(ctx context.Context, sink Sink) error {
	if sink == nil {
		return fmt.Errorf("audit: %s: no sink", rd.cfg.Name)
	}
	if !rd.running.CompareAndSwap(false, true) {
		return fmt.Errorf("audit: %s: already running", rd.cfg.Name)
	}
	defer rd.running.Store(false)
	if rd.cfg.Source == SourceNetlink {
		return rd.runNetlink(ctx, sink)
	}

	r := newRun(rd, sink)
	defer r.close()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		busy := r.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := rd.cfg.PollInterval
		if busy {
			wait = 0
		}
		timer.Reset(wait)
	}
}

// runNetlink reads the kernel's audit stream, session after session: a
// session that cannot start (an audit daemon holds the socket in
// unicast, no permission) or ends in an error is retried.
func (rd *Reader) runNetlink(ctx context.Context, sink Sink) error {
	defer rd.update(func(s *Status) { s.State, s.Pending = StateStopped, 0 })
	lastErr := ""
	for failures := 1; ; failures++ {
		q := newMsgQueue()
		k, warnings, err := rd.open(ctx, q)
		if err == nil {
			n := newNLRun(rd, sink, k, q)
			err = n.loop(ctx, warnings)
			k.Close()
			failures = 1
		}
		if ctx.Err() != nil {
			return nil
		}
		msg := err.Error()
		rd.update(func(s *Status) {
			s.State, s.LastError = StateWaiting, msg
			if msg != lastErr {
				s.Errors++
			}
		})
		if msg != lastErr {
			rd.log.Warn("audit netlink input; retrying", "err", msg)
		}
		lastErr = msg
		if !sleep(ctx, retryWait(rd.cfg.PollInterval, failures)) {
			return nil
		}
	}
}

// Status returns a snapshot; it is safe to call concurrently with Run.
func (rd *Reader) Status() Status {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.status
}

func (rd *Reader) update(f func(s *Status)) {
	rd.mu.Lock()
	f(&rd.status)
	rd.mu.Unlock()
}

// retryWait doubles the poll interval with each consecutive failure, up
// to maxRetryWait (or the poll interval, when that is longer).
func retryWait(interval time.Duration, failures int) time.Duration {
	w := interval
	for i := 1; i < failures && w < maxRetryWait; i++ {
		w *= 2
	}
	return max(interval, min(w, maxRetryWait))
}

// sleep waits d or until ctx is done; false means ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
