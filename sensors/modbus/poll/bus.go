package poll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/modbus"
	"github.com/weirgw/weir/sensors/serialport"
)

// Bus is one line (a serial port or a TCP address) with its master, its
// devices and its scheduler.
type Bus struct {
	cfg     BusConfig
	devices []*device
	log     *slog.Logger
	clock   Clock      // stamps records
	sched   schedClock // schedules polls
	tap     tap
	jobs    chan readJob
	// de drives an RS-485 transceiver's driver enable around each frame
	// (serial buses with rs485.mode pin; nil: none).
	de serialport.DriverEnable

	mu       sync.Mutex // guards everything below and the devices' state
	master   *modbus.Master
	closer   io.Closer
	state    string // opening, open, down
	lastErr  string
	counters Counters
	window   rateWindow
	diag     limiter
	live     limiter // live reads through the admin socket
}

// device is one device's configuration, plans and state.
type device struct {
	cfg      DeviceConfig
	plan     []planned // every register: one-off reads
	groups   []*group  // the registers of each interval
	priority event.Priority

	// Guarded by Bus.mu.
	counters     Counters
	window       rateWindow
	busy         bool
	consecutive  int // polls in a row that went unanswered
	backoff      time.Duration
	lastPoll     time.Time
	lastOK       time.Time
	lastErr      string
	lastVerdict  string
	lastRTT      time.Duration
	lastAttempts int
}

// group is the registers of a device polled at one interval.
type group struct {
	interval time.Duration
	plan     []planned
	// Guarded by Bus.mu.
	next   time.Time
	values []event.Field // of the last good poll
	exc    []excState    // per planned request
}

// readJob is a one-off read asked for through the admin socket.
type readJob struct {
	d     *device
	reply chan ReadResult
}

func newBus(cfg BusConfig, log *slog.Logger, clock Clock) *Bus {
	return &Bus{cfg: cfg, log: log.With("bus", cfg.Name), clock: clock, sched: systemSched{}, jobs: make(chan readJob),
		state: "opening", diag: limiter{perMinute: cfg.DiagnosticsPerMinute}, live: limiter{perMinute: cfg.LiveReadsPerMinute}}
}

// line names the bus's line: the serial device or the TCP address.
func (b *Bus) line() string {
	if b.cfg.Type == BusTCP {
		return b.cfg.Address
	}
	return b.cfg.Serial.Device
}

// open makes the bus's master over a tapped line.
func (b *Bus) open() (*modbus.Master, io.Closer, error) {
	switch b.cfg.Type {
	case BusTCP:
		var d net.Dialer
		m, err := modbus.NewTCP(modbus.TCPConfig{Address: b.cfg.Address, Timeout: b.cfg.Timeout, MaxInFlight: b.cfg.MaxInFlight,
			Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
				c, err := d.DialContext(ctx, network, address)
				if err != nil {
					return nil, err
				}
				return tapConn{Conn: c, t: &b.tap}, nil
			}})
		if err != nil {
			return nil, nil, err
		}
		return m, m, nil
	default:
		p, err := serialport.Open(b.cfg.Serial, b.de)
		if err != nil {
			return nil, nil, err
		}
		m, err := modbus.NewRTU(tapPort{Port: p, t: &b.tap}, modbus.RTUConfig{Name: b.cfg.Serial.Device,
			Baud: b.cfg.Serial.Baud, CharBits: b.cfg.Serial.CharBits(), Timeout: b.cfg.Timeout})
		if err != nil {
			p.Close()
			return nil, nil, err
		}
		return m, p, nil
	}
}

// errLineLost ends a serial bus's workers when its line fails (a USB
// adapter unplugged): the line is closed and opened again.
var errLineLost = errors.New("line lost")

// run opens the line (again, after failures) and polls until ctx ends.
func (b *Bus) run(ctx context.Context, sink Sink) error {
	for {
		m, c, err := b.open()
		if err != nil {
			b.down(err)
		} else {
			err = b.serve(ctx, m, c, sink)
			if err == nil || !errors.Is(err, errLineLost) {
				return err
			}
			b.down(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-b.sched.After(b.cfg.ReopenDelay):
		}
	}
}

func (b *Bus) down(err error) {
	b.mu.Lock()
	if b.lastErr != err.Error() {
		b.log.Error("modbus bus down; opening it again", "line", b.line(), "err", err)
	}
	b.state, b.lastErr = "down", err.Error()
	b.mu.Unlock()
}

// serve polls over an open line until ctx ends or the line fails.
func (b *Bus) serve(ctx context.Context, m *modbus.Master, c io.Closer, sink Sink) error {
	defer c.Close()
	b.mu.Lock()
	b.master, b.closer, b.state, b.lastErr = m, c, "open", ""
	now := b.sched.Now()
	for _, d := range b.devices {
		d.busy = false
		for _, g := range d.groups {
			g.next = now
		}
	}
	b.mu.Unlock()
	b.log.Info("modbus bus open", "line", b.line(), "devices", len(b.devices))
	workers := 1
	if b.cfg.Type == BusTCP {
		workers = max(1, min(b.cfg.MaxInFlight, len(b.devices)))
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			if err := b.worker(wctx, m, sink); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	wg.Wait()
	b.mu.Lock()
	b.state = "closed" // the master stays for its counters
	b.mu.Unlock()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// pick returns the device and group due first that no other worker is
// polling, the device marked busy, or how long to wait for one.
func (b *Bus) pick(now time.Time) (*device, *group, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var bd *device
	var bg *group
	for _, d := range b.devices {
		if d.busy {
			continue
		}
		for _, g := range d.groups {
			if bg == nil || g.next.Before(bg.next) {
				bd, bg = d, g
			}
		}
	}
	if bg == nil {
		return nil, nil, time.Second
	}
	if wait := bg.next.Sub(now); wait > 0 {
		return nil, nil, wait
	}
	bd.busy = true
	return bd, bg, 0
}

// worker polls due devices one at a time. A live read goes before the
// next poll, even on a busy bus, but takes turns with the schedule: after
// one, a poll that is due goes first, so live reads asked for back to back
// cannot hold the line.
func (b *Bus) worker(ctx context.Context, m *modbus.Master, sink Sink) error {
	read := false // the last turn was a live read
	for {
		if !read {
			select {
			case j := <-b.jobs:
				j.reply <- b.readOnce(ctx, m, j.d)
				read = true
				continue
			default:
			}
		}
		read = false
		d, g, wait := b.pick(b.sched.Now())
		if d == nil {
			select {
			case <-ctx.Done():
				return nil
			case j := <-b.jobs:
				j.reply <- b.readOnce(ctx, m, j.d)
				read = true
			case <-b.sched.After(wait):
			}
			continue
		}
		b.mu.Lock()
		retries := d.cfg.Retries
		if d.consecutive >= d.cfg.DeadAfter {
			retries = 0 // a probe of a dead device costs one timeout only
		}
		b.mu.Unlock()
		// A poll's deadline is its group's next tick: a busy device is
		// waited for until then at most.
		r := b.poll(ctx, m, d, g.plan, retries, b.sched.Now().Add(g.interval))
		// Accounted even when ctx ended during the poll: its attempts
		// were on the line and the master has counted them.
		evs := b.account(d, g, r)
		if ctx.Err() != nil {
			return nil
		}
		lost := b.cfg.Type == BusRTU && lineLost(r)
		if len(evs) > 0 {
			if err := sink.Emit(ctx, evs, nil); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				b.log.Warn("modbus records not spooled", "device", d.cfg.Name, "err", err)
			}
		}
		if lost {
			return fmt.Errorf("%w: %w", errLineLost, r.err)
		}
	}
}

// lineLost reports whether every attempt of a failed poll failed in the
// transport (the port's read or write), not on the bus.
func lineLost(r pollResult) bool {
	if !r.failed || len(r.attempts) == 0 {
		return false
	}
	for _, a := range r.attempts {
		if a.outcome != outTransport {
			return false
		}
	}
	return true
}

// attemptLog is one attempt of a poll.
type attemptLog struct {
	req     modbus.Request
	err     error
	outcome outcome
	frame   *modbus.FrameError
	retry   bool
}

// pollResult is what one poll of a device produced.
type pollResult struct {
	fields     []event.Field // of the requests answered with data
	sent, recv time.Time     // of the first and last answers with data
	attempts   []attemptLog
	requests   int
	answered   int       // requests answered with data
	refused    []refusal // requests answered with an exception, in plan order
	// err is the first failure: the one that ended the poll, or the first
	// exception; nil when every request was answered with data.
	err        error
	failed     bool // a request went without a usable answer: the poll says nothing of the registers
	unanswered bool // the poll failed for want of answers (timeouts, connections refused)
	cancelled  bool // cut short by the end of its context: only its attempts count
}

// refusal is a request of a poll that the device answered with an
// exception, after any retries a busy device was given.
type refusal struct {
	plan       int // index in the poll's plan
	ex         *modbus.ExceptionError
	sent, recv time.Time
}

// poll reads the planned requests of d. A request whose answer is
// damaged or missing gets up to retries more attempts; one answered
// SERVER DEVICE BUSY or ACKNOWLEDGE is asked again after the device's
// busy_backoff, doubling, for at most busy_timeout and never past
// deadline; other exceptions are final at once. A request refused with an
// exception does not stop the poll: the others still make the reading.
// Any other failure does, and a failed poll makes no reading.
func (b *Bus) poll(ctx context.Context, m *modbus.Master, d *device, pl []planned, retries int, deadline time.Time) pollResult {
	var r pollResult
	var res modbus.Response
	var order []int // register index of each field
	unit := byte(d.cfg.Unit)
	for i, p := range pl {
		req := p.req
		var err error
		var ex *modbus.ExceptionError
		var o outcome
		wait, busyEnd := d.cfg.BusyBackoff, time.Time{}
		for n, again := 0, 0; ; n++ {
			err = m.Do(ctx, unit, &req, &res)
			var fe *modbus.FrameError
			o, fe = classify(ctx, err)
			if o == outCancelled {
				r.err, r.cancelled = err, true
				return r
			}
			r.attempts = append(r.attempts, attemptLog{req: req, err: err, outcome: o, frame: fe, retry: n > 0})
			if o == outOK {
				break
			}
			if o == outException {
				ex = nil
				errors.As(err, &ex)
				if !busy(ex) {
					break
				}
				now := b.sched.Now()
				if busyEnd.IsZero() {
					busyEnd = now.Add(d.cfg.BusyTimeout)
					if deadline.Before(busyEnd) {
						busyEnd = deadline
					}
				}
				if now.Add(wait).After(busyEnd) {
					break
				}
				if !b.sleep(ctx, wait) {
					r.err, r.cancelled = ctx.Err(), true
					return r
				}
				wait *= 2
				continue
			}
			if again >= retries {
				break
			}
			again++
		}
		r.requests++
		if o == outException {
			if r.err == nil {
				r.err = fmt.Errorf("device %s: %w", d.cfg.Name, err)
			}
			r.refused = append(r.refused, refusal{plan: i, ex: ex, sent: res.Sent, recv: res.Received})
			continue
		}
		if err != nil {
			r.err, r.failed = fmt.Errorf("device %s: %w", d.cfg.Name, err), true
			// Unanswered: timeouts, or on TCP a device that refuses or
			// drops connections; a damaged or refused answer is an answer.
			r.unanswered = true
			for _, a := range r.attempts {
				if a.outcome != outTimeout && a.outcome != outOK && a.outcome != outTransport {
					r.unanswered = false
				}
			}
			r.fields = nil
			return r
		}
		r.answered++
		if r.sent.IsZero() {
			r.sent = res.Sent
		}
		r.recv = res.Received
		for _, it := range p.items {
			reg := d.cfg.Registers[it.reg]
			n, before := reg.count(), len(r.fields)
			if reg.isBit() {
				r.fields = reg.appendFields(r.fields, nil, res.Bits[it.offset:it.offset+n])
			} else {
				r.fields = reg.appendFields(r.fields, res.Registers[it.offset:it.offset+n], nil)
			}
			for range len(r.fields) - before {
				order = append(order, it.reg)
			}
		}
	}
	// Fields in the register map's order, not the requests'.
	sort.Stable(byRegister{r.fields, order})
	return r
}

// busy reports whether an exception asks to be asked again later.
func busy(ex *modbus.ExceptionError) bool {
	return ex != nil && (ex.Code == modbus.ServerDeviceBusy || ex.Code == modbus.Acknowledge)
}

type byRegister struct {
	f   []event.Field
	reg []int
}

func (b byRegister) Len() int           { return len(b.f) }
func (b byRegister) Less(i, j int) bool { return b.reg[i] < b.reg[j] }
func (b byRegister) Swap(i, j int) {
	b.f[i], b.f[j] = b.f[j], b.f[i]
	b.reg[i], b.reg[j] = b.reg[j], b.reg[i]
}

// verdict names an attempt's outcome for records and status.
func verdict(a attemptLog) string {
	switch a.outcome {
	case outOK:
		return "ok"
	case outException:
		return "exception"
	case outTimeout:
		return "timeout"
	case outTransport:
		return "transport_error"
	case outFrame:
		switch a.frame.Kind {
		case modbus.FrameCRC:
			return "crc_error"
		case modbus.FrameShort:
			return "short_frame"
		case modbus.FrameOverlong:
			return "overlong_frame"
		case modbus.FrameWrongUnit:
			return "wrong_unit"
		case modbus.FrameWrongFunction:
			return "wrong_function"
		}
		return "frame_error"
	}
	return "cancelled"
}

// account updates the counters and the schedule of g (nil: a one-off read,
// which moves no schedule and spools nothing) after a poll and returns the
// records to spool: the diagnostics of its damaged frames (within the
// bus's rate limit), a record for each request whose exception started or
// cleared, then the reading of the requests answered with data.
func (b *Bus) account(d *device, g *group, r pollResult) []event.Event {
	now := b.sched.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	d.busy = false
	var evs []event.Event
	var frameErrs uint64
	for _, a := range r.attempts {
		b.counters.count(a.outcome, a.frame)
		d.counters.count(a.outcome, a.frame)
		if a.retry {
			b.counters.Retries++
			d.counters.Retries++
		}
		if a.outcome != outFrame {
			continue
		}
		frameErrs++
		if r.cancelled || !b.diag.allow(now) {
			continue
		}
		evs = append(evs, b.diagnostic(d, a, !r.failed))
	}
	b.window.add(now, uint64(len(r.attempts)), frameErrs)
	d.window.add(now, uint64(len(r.attempts)), frameErrs)
	if r.cancelled {
		return nil // not a poll: nothing is known of the device
	}
	b.counters.Polls++
	d.counters.Polls++
	d.lastPoll = now
	d.lastAttempts = len(r.attempts)
	if n := len(r.attempts); n > 0 {
		d.lastVerdict = verdict(r.attempts[n-1])
	}
	if r.err != nil {
		b.counters.PollsFailed++
		d.counters.PollsFailed++
		d.lastErr = r.err.Error()
	}
	if r.failed {
		if r.unanswered {
			d.consecutive++
		} else {
			d.consecutive = 0
		}
		if d.consecutive >= d.cfg.DeadAfter {
			if d.consecutive == d.cfg.DeadAfter {
				b.log.Warn("modbus device not answering; backing off", "device", d.cfg.Name, "unit", d.cfg.Unit, "err", r.err)
			}
			d.backoff = min(max(d.cfg.MaxBackoff, d.cfg.Interval), d.cfg.Interval<<min(d.consecutive-d.cfg.DeadAfter+1, 20))
			for _, og := range d.groups { // the whole device waits
				og.next = now.Add(d.backoff)
			}
			return evs
		}
		if g != nil {
			g.next = nextTick(g.next, g.interval, now)
		}
		return evs
	}
	if d.consecutive >= d.cfg.DeadAfter {
		b.log.Info("modbus device answers again", "device", d.cfg.Name, "unit", d.cfg.Unit)
	}
	d.consecutive, d.backoff = 0, 0
	if r.err == nil {
		d.lastErr = ""
	}
	if r.answered > 0 {
		d.lastOK = now
		d.lastRTT = r.recv.Sub(r.sent)
	}
	if g == nil {
		return evs
	}
	g.next = nextTick(g.next, g.interval, now)
	evs = b.exceptions(evs, d, g, r)
	g.values = r.fields
	if r.answered == 0 {
		return evs
	}
	return append(evs, b.reading(d, r))
}

// nextTick is the next poll time on the device's grid; missed ticks are
// skipped, not caught up.
func nextTick(prev time.Time, interval time.Duration, now time.Time) time.Time {
	next := prev.Add(interval)
	if next.Before(now) {
		next = now.Add(interval - now.Sub(prev)%interval)
	}
	return next
}

// stamp maps a system time to the gateway's clock.
func (b *Bus) stamp(t time.Time) (int64, event.Quality) {
	sys := time.Now()
	now, q := b.clock.Now()
	return t.Add(now.Sub(sys)).UnixNano(), q
}

func (b *Bus) reading(d *device, r pollResult) event.Event {
	half := r.recv.Sub(r.sent) / 2
	ts, q := b.stamp(r.sent.Add(half))
	if q.ErrorBound >= 0 {
		q.ErrorBound += int64(half)
	}
	fields := make([]event.Field, 0, 7+len(r.fields))
	fields = append(fields, event.Str("device", d.cfg.Name), event.Str("bus", b.cfg.Name), event.Uint("unit", uint64(d.cfg.Unit)),
		event.Int("uncertainty_ns", int64(half)), event.Float("round_trip_us", float64(r.recv.Sub(r.sent))/1e3),
		event.Uint("attempts", uint64(len(r.attempts))), event.Uint("requests", uint64(r.requests)))
	fields = append(fields, r.fields...)
	// Every RTU frame of the reading passed its CRC.
	return event.Event{Time: ts, Quality: q, Source: "modbus:" + d.cfg.Name, Kind: event.KindReading,
		Severity: event.SevInfo, Priority: d.priority, Message: d.cfg.Name, Fields: fields, Checksum: b.checksum()}
}

func (b *Bus) diagnostic(d *device, a attemptLog, recovered bool) event.Event {
	ts, q := b.stamp(time.Now())
	v := verdict(a)
	fields := []event.Field{
		event.Str("device", d.cfg.Name), event.Str("bus", b.cfg.Name), event.Str("line", b.line()),
		event.Uint("unit", uint64(d.cfg.Unit)), event.Str("request", a.req.String()), event.Str("verdict", v),
		event.Str("detail", a.frame.Detail), event.Str("raw_hex", fmt.Sprintf("%x", a.frame.Raw)),
		event.Bool("recovered_by_retry", recovered), event.Uint("suppressed", b.diag.suppressed),
		event.Uint("suppressed_total", b.diag.total),
	}
	b.diag.suppressed = 0
	return event.Event{Time: ts, Quality: q, Source: "modbus:" + b.cfg.Name, Kind: event.KindTelemetry,
		Severity: event.SevWarning, Priority: event.PriorityNormal, Checksum: event.ChecksumBad,
		Message: fmt.Sprintf("modbus %s on %s from %s unit %d (%s): % x", a.frame.Kind, b.line(), d.cfg.Name, d.cfg.Unit, a.req.String(), a.frame.Raw),
		Fields:  fields}
}
