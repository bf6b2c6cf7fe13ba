package line

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/serialport"
)

// errNoReopen: a reader given to NewFromReader cannot be opened again.
var errNoReopen = errors.New("reader cannot be reopened")

// Sensor reads one line sensor. Run it once at a time; Stats may be called
// from any goroutine.
type Sensor struct {
	cfg      Config
	parser   Parser
	priority event.Priority
	open     func() (io.ReadCloser, error)
	log      *slog.Logger
	clock    Clock
	c        counters

	// Run's scratch, reused across lines.
	split [][]byte
	keys  []string
}

// New makes a sensor on the serial port cfg.Port. de is passed to
// serialport.Open for RS-485 pin mode; nil when the board has none.
func New(cfg Config, de serialport.DriverEnable, log *slog.Logger) (*Sensor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("line: sensor %q: %w", cfg.Name, err)
	}
	open := func() (io.ReadCloser, error) { return serialport.Open(cfg.Port, de) }
	return newSensor(cfg, open, log), nil
}

// NewFromReader makes a sensor reading rc (a test's pipe, a file, a
// socket); cfg.Port is ignored. Closing rc must unblock a Read in
// progress, as it does for pipes, sockets and pollable files, since that is
// how Run stops. When rc fails or ends, Run returns after
// recording what was read: rc cannot be reopened.
func NewFromReader(cfg Config, rc io.ReadCloser, log *slog.Logger) (*Sensor, error) {
	if err := cfg.validate(false); err != nil {
		return nil, fmt.Errorf("line: sensor %q: %w", cfg.Name, err)
	}
	used := false
	open := func() (io.ReadCloser, error) {
		if used {
			return nil, errNoReopen
		}
		used = true
		return rc, nil
	}
	return newSensor(cfg, open, log), nil
}

func newSensor(cfg Config, open func() (io.ReadCloser, error), log *slog.Logger) *Sensor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prio, _ := event.ParsePriority(cfg.Priority) // validated
	return &Sensor{cfg: cfg, parser: cfg.parser(), priority: prio, open: open, clock: systemClock{},
		log: log.With("sensor", cfg.Name)}
}

// Clock stamps records: the gateway's PTP clock, with its quality.
type Clock interface {
	Now() (time.Time, event.Quality)
}

// stamp is an arrival time on the gateway's clock and its quality then.
type stamp struct {
	ns int64
	q  event.Quality
}

// systemClock stands in when no clock is given: CLOCK_REALTIME, claiming
// nothing about its accuracy.
type systemClock struct{}

func (systemClock) Now() (time.Time, event.Quality) {
	return time.Now(), event.Quality{Source: event.TimeSystem, State: event.ClockFreerun, ErrorBound: -1}
}

// UseClock makes the sensor stamp lines with c (before Run).
func (s *Sensor) UseClock(c Clock) { s.clock = c }

func (s *Sensor) now() stamp {
	t, q := s.clock.Now()
	return stamp{ns: t.UnixNano(), q: q}
}

// Name is the sensor's record source.
func (s *Sensor) Name() string { return s.cfg.Name }

// Stats returns a snapshot of the counters.
func (s *Sensor) Stats() Stats { return s.c.snapshot() }

// chunk is one read handed from the reading goroutine to Run.
type chunk struct {
	buf []byte
	n   int
	at  stamp // arrival
	err error
}

// Buffers in flight between the reading goroutine and Run: memory stays at
// chunkCount*chunkSize plus one line, whatever the port sends.
const (
	chunkCount = 4
	chunkSize  = 4096
)

// Run reads lines until ctx ends, handing them to emit in batches of at
// most batch_size, at most flush_interval after a line is complete. A port
// that fails is closed and reopened with backoff. At shutdown the lines
// read, and a partial line, are emitted with a context that outlives ctx by
// at most a second. Run returns nil when ctx ends, the error of emit if it
// fails (that batch is not retried here: the caller's emit decides what a
// refusal means), and for NewFromReader nil once the reader has ended or
// failed, its lines emitted (after one reopen_backoff wait, the sensor not
// knowing a reader from a port).
func (s *Sensor) Run(ctx context.Context, emit func(ctx context.Context, evs []event.Event) error) error {
	backoff := s.cfg.ReopenBackoff
	first := true
	// The current line's bytes; they never grow past max_line_length
	// (addByte emits a full line as a piece first), so memory is bounded.
	st := &lineState{line: make([]byte, 0, s.cfg.MaxLineLength+1)}
	var batch []event.Event
	flush := func(ctx context.Context) error {
		if len(batch) == 0 {
			return nil
		}
		// One read may complete more lines than a batch holds.
		for len(batch) > 0 {
			n := min(len(batch), s.cfg.BatchSize)
			evs := batch[:n:n]
			batch = batch[n:]
			if err := emit(ctx, evs); err != nil {
				s.c.emitErrors.Add(1)
				batch = nil
				return fmt.Errorf("line: %s: emit %d lines: %w", s.cfg.Name, len(evs), err)
			}
		}
		batch = nil
		return nil
	}
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		batch = s.cutLine(st, batch, s.now())
		return flush(sctx)
	}
	for {
		rc, err := s.open()
		if errors.Is(err, errNoReopen) {
			return shutdown()
		}
		if err != nil {
			s.c.openErrors.Add(1)
			s.log.Warn("line: open failed", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return shutdown()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, s.cfg.ReopenBackoffMax)
			continue
		}
		if !first {
			s.c.reopens.Add(1)
		}
		opened := s.c.bytes.Load()
		first = false
		s.c.open.Store(true)
		rerr, ferr := s.read(ctx, rc, st, &batch, flush)
		s.c.open.Store(false)
		rc.Close()
		if ferr != nil {
			return ferr
		}
		if ctx.Err() != nil {
			return shutdown()
		}
		// The port failed: what was read of the line will never be
		// completed by the bytes after the reopen.
		batch = s.cutLine(st, batch, s.now())
		if err := flush(ctx); err != nil {
			return err
		}
		if s.c.bytesSince(opened) {
			// The port worked for a while: a fresh failure, not the same
			// one again.
			backoff = s.cfg.ReopenBackoff
		}
		if !errors.Is(rerr, io.EOF) {
			s.log.Warn("line: read failed, reopening", "err", rerr, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return shutdown()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.ReopenBackoffMax)
	}
}

// read runs one open port until it fails (rerr) or ctx ends; ferr is a
// failed emit.
func (s *Sensor) read(ctx context.Context, rc io.ReadCloser, st *lineState, batch *[]event.Event,
	flush func(context.Context) error) (rerr, ferr error) {
	free := make(chan []byte, chunkCount)
	for range chunkCount {
		free <- make([]byte, chunkSize)
	}
	data := make(chan chunk, chunkCount)
	done := make(chan struct{})
	go func() {
		defer close(data)
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-done:
				return
			}
			n, err := rc.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = nil // a read timeout: nothing arrived
			}
			select {
			case data <- chunk{buf: buf, n: n, at: s.now(), err: err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	stop := func() {
		close(done)
		rc.Close() // unblocks the Read
		for range data {
		}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		select {
		case <-ctx.Done():
			stop()
			return nil, nil
		case <-timer.C:
			armed = false
			if err := flush(ctx); err != nil {
				stop()
				return nil, err
			}
		case c := <-data:
			s.c.bytes.Add(uint64(c.n))
			*batch = s.take(st, c.buf[:c.n], *batch, c.at)
			free <- c.buf
			if len(*batch) >= s.cfg.BatchSize {
				if err := flush(ctx); err != nil {
					stop()
					return nil, err
				}
			}
			if len(*batch) > 0 && !armed {
				timer.Reset(s.cfg.FlushInterval)
				armed = true
			}
			if c.err != nil {
				stop()
				return c.err, nil
			}
		}
	}
}
