package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/modbus"
	"github.com/weirgw/weir/sensors/serialport"
	"github.com/weirgw/weir/spool"
)

// Sink takes the records of a poll (the gateway's Emit).
type Sink interface {
	Emit(ctx context.Context, events []event.Event, checkpoints []spool.Checkpoint) error
}

// Clock stamps records (ptp.Clock).
type Clock interface {
	Now() (time.Time, event.Quality)
}

// ErrNoDevice is returned (wrapped) for a device name not configured.
var ErrNoDevice = errors.New("no such device")

// ErrLiveReadLimit is returned (wrapped) for a live read over the bus's
// live_reads_per_minute.
var ErrLiveReadLimit = errors.New("too many live reads")

// Poller runs every configured bus.
type Poller struct {
	buses   []*Bus
	devices map[string]*Bus
}

// New builds the buses and plans every device's requests; nothing is
// opened until Run. clock may be nil (the system clock, quality unknown).
func New(cfg Config, log *slog.Logger, clock Clock) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("modbus: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	if clock == nil {
		clock = systemClock{}
	}
	p := &Poller{devices: map[string]*Bus{}}
	byName := map[string]*Bus{}
	for _, bc := range cfg.Buses {
		b := newBus(bc, log, clock)
		p.buses = append(p.buses, b)
		byName[bc.Name] = b
	}
	for _, dc := range cfg.Devices {
		b := byName[dc.Bus]
		prio, _ := event.ParsePriority(dc.Priority)
		b.devices = append(b.devices, &device{cfg: dc, plan: plan(dc), groups: groups(dc), priority: prio})
		p.devices[dc.Name] = b
	}
	return p, nil
}

// UseDriverEnable gives each serial bus the RS-485 driver-enable pin that
// pin(device) returns for its line (nil: none). The board owns the pins;
// this package only takes them, so it imports no board code. Call it
// before Run.
func (p *Poller) UseDriverEnable(pin func(device string) serialport.DriverEnable) {
	for _, b := range p.buses {
		if b.cfg.Type != BusTCP {
			b.de = pin(b.cfg.Serial.Device)
		}
	}
}

// groups splits a device's registers by interval, fastest first.
func groups(dc DeviceConfig) []*group {
	by := map[time.Duration][]int{}
	var ivs []time.Duration
	for i, r := range dc.Registers {
		iv := r.Interval
		if iv == 0 {
			iv = dc.Interval
		}
		if by[iv] == nil {
			ivs = append(ivs, iv)
		}
		by[iv] = append(by[iv], i)
	}
	slices.Sort(ivs)
	out := make([]*group, 0, len(ivs))
	for _, iv := range ivs {
		pl := planRegisters(dc, by[iv])
		out = append(out, &group{interval: iv, plan: pl, exc: make([]excState, len(pl))})
	}
	return out
}

type systemClock struct{}

func (systemClock) Now() (time.Time, event.Quality) {
	return time.Now(), event.Quality{Source: event.TimeSystem, State: event.ClockFreerun, ErrorBound: -1}
}

// Run polls every bus that has devices until ctx ends. A line that cannot
// be opened is retried and shown as down; it does not stop the others.
func (p *Poller) Run(ctx context.Context, sink Sink) error {
	var wg sync.WaitGroup
	errs := make([]error, len(p.buses))
	for i, b := range p.buses {
		if len(b.devices) == 0 {
			continue
		}
		wg.Go(func() { errs[i] = b.run(ctx, sink) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ReadResult is a one-off read of a device for field diagnosis.
type ReadResult struct {
	Device    string        `json:"device"`
	Bus       string        `json:"bus"`
	Line      string        `json:"line"`
	Unit      int           `json:"unit"`
	Values    []Value       `json:"values,omitempty"`
	Attempts  []AttemptInfo `json:"attempts"`
	Frames    []Frame       `json:"frames"`
	RoundTrip string        `json:"round_trip,omitempty"`
	Error     string        `json:"error,omitempty"`
}

// AttemptInfo is one request attempt of a read.
type AttemptInfo struct {
	Request string `json:"request"`
	Verdict string `json:"verdict"`
	Error   string `json:"error,omitempty"`
}

// readOnce polls every register of d once with the line tapped. Its
// records are not spooled and the schedule is not moved, but the counters
// see it: it was traffic on the line.
func (b *Bus) readOnce(ctx context.Context, m *modbus.Master, d *device) ReadResult {
	b.mu.Lock()
	d.busy = true
	b.mu.Unlock()
	b.tap.start()
	r := b.poll(ctx, m, d, d.plan, d.cfg.Retries, b.sched.Now().Add(d.cfg.Interval))
	frames := b.tap.stop()
	b.account(d, nil, r)
	out := ReadResult{Device: d.cfg.Name, Bus: b.cfg.Name, Line: b.line(), Unit: d.cfg.Unit, Frames: frames}
	for _, a := range r.attempts {
		ai := AttemptInfo{Request: a.req.String(), Verdict: verdict(a)}
		if a.err != nil {
			ai.Error = a.err.Error()
		}
		out.Attempts = append(out.Attempts, ai)
	}
	if r.err != nil {
		out.Error = r.err.Error()
	}
	if r.failed || r.answered == 0 {
		return out
	}
	out.RoundTrip = r.recv.Sub(r.sent).String()
	out.Values = values(d, r.fields) // of the requests answered with data
	return out
}

// Read performs a one-off read of the named device on its running bus,
// between the scheduler's polls (see Bus.worker), at most
// live_reads_per_minute a bus: more are refused with ErrLiveReadLimit.
func (p *Poller) Read(ctx context.Context, name string) (*ReadResult, error) {
	b, ok := p.devices[name]
	if !ok {
		return nil, fmt.Errorf("modbus: %q: %w", name, ErrNoDevice)
	}
	var d *device
	for _, x := range b.devices {
		if x.cfg.Name == name {
			d = x
		}
	}
	b.mu.Lock()
	state, lastErr := b.state, b.lastErr
	allowed := state == "open" && b.live.allow(b.sched.Now())
	b.mu.Unlock()
	if state != "open" {
		return nil, fmt.Errorf("modbus: bus %s (%s) is %s: %s", b.cfg.Name, b.line(), state, lastErr)
	}
	if !allowed {
		return nil, fmt.Errorf("modbus: bus %s: %w (live_reads_per_minute %d)", b.cfg.Name, ErrLiveReadLimit, b.cfg.LiveReadsPerMinute)
	}
	j := readJob{d: d, reply: make(chan ReadResult, 1)}
	select {
	case b.jobs <- j:
	case <-ctx.Done():
		return nil, fmt.Errorf("modbus: bus %s busy: %w", b.cfg.Name, ctx.Err())
	}
	select {
	case r := <-j.reply:
		return &r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ReadDirect opens the named device's line itself, reads the device once
// and closes the line: for field diagnosis when the daemon is not running.
func (p *Poller) ReadDirect(ctx context.Context, name string) (*ReadResult, error) {
	b, ok := p.devices[name]
	if !ok {
		return nil, fmt.Errorf("modbus: %q: %w", name, ErrNoDevice)
	}
	m, c, err := b.open()
	if err != nil {
		return nil, fmt.Errorf("modbus: bus %s: %w", b.cfg.Name, err)
	}
	defer c.Close()
	for _, d := range b.devices {
		if d.cfg.Name == name {
			r := b.readOnce(ctx, m, d)
			return &r, nil
		}
	}
	return nil, fmt.Errorf("modbus: %q: %w", name, ErrNoDevice)
}

// Devices lists the configured device names.
func (p *Poller) Devices() []string {
	var out []string
	for _, b := range p.buses {
		for _, d := range b.devices {
			out = append(out, d.cfg.Name)
		}
	}
	return out
}
