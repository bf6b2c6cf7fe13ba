package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/hostlog"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/line"
	"github.com/weirgw/weir/sensors/modbus/poll"
	"github.com/weirgw/weir/sensors/syslog"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/sender"
)

// pipeline is one generation of the running parts and the configuration
// they were built from. A reload builds the next one beside it, sharing
// every part it did not replace, and publishes it whole (Gateway.now):
// nothing in it changes once published, so status, metrics and the
// health check read it without a lock.
type pipeline struct {
	gen   uint64
	cfg   Config           // the last configuration accepted (a part that could not take its section runs on the conf it holds)
	parts map[string]*part // by key

	// The parts again, typed, in the configuration's order.
	tailers   []*hostlog.Tailer
	buses     []*modbusBus
	lines     []*lineInput
	syslog    *syslog.Server
	audit     *audit.Reader
	integrity *integrity.Monitor
	sender    *sender.Sender
}

// part is a piece of the pipeline that a reload replaces on its own:
// a file input, a Modbus bus with its devices, a line sensor, syslog,
// audit, integrity, or the uplink. It is built from its conf, then
// bound (listen) and run; stopped, it has committed what it emitted with
// its positions, so the part that follows it resumes there.
type part struct {
	key  string // "inputs.files app", "inputs.modbus bus rtu1", "uplink"
	conf any    // what it is built from, compared by value at a reload
	inst any    // the built part, as the pipeline lists it
	// health is the name the health check knows a source by; "" for a
	// part that is not one (the uplink, a bus without devices).
	health string
	check  func(now time.Time, stall time.Duration) string
	// input is the name processors.inputs knows the part by.
	input string
	// listen binds what the part serves (syslog's ports): the last step
	// of a start that can fail. nil when it binds nothing.
	listen func(context.Context) error
	run    func(context.Context, trackedSink) error

	// While it runs; set by startPart, cleared by stopPart (the reload's
	// goroutine only).
	src  *sourceHealth
	task *task
}

// partSpec is a part as a configuration describes it, not yet built.
type partSpec struct {
	key   string
	conf  any
	build func() (*part, error) // starts nothing, binds nothing
}

// modbusConf is what one bus's part is built from: the bus and the
// devices on it, so a device's change restarts its own bus only.
type modbusConf struct {
	Bus     poll.BusConfig
	Devices []poll.DeviceConfig
}

// modbusBus is one bus's poller with the devices it polls.
type modbusBus struct {
	poller  *poll.Poller
	devices []poll.DeviceConfig
}

// lineInput is a line sensor with the device it reads.
type lineInput struct {
	sensor *line.Sensor
	device string
}

// identityConf is a section that names TLS files, with what the files
// held when it was built: a reload that finds other bytes in them
// rebuilds the part, whatever the files' times say.
type identityConf[C any] struct {
	Config C
	Files  [32]byte
}

// specs lists the parts c describes, in the order they start. sums are
// the contents of the TLS files the uplink and syslog name.
func (g *Gateway) specs(c *Config, sums fileSums) []partSpec {
	var out []partSpec
	for _, fc := range c.Inputs.Files {
		out = append(out, partSpec{key: "inputs.files " + fc.Name, conf: fc, build: func() (*part, error) {
			t, err := hostlog.NewTailer(fc, g.spool, g.log)
			if err != nil {
				return nil, fmt.Errorf("inputs.files %s: %w", fc.Name, err)
			}
			return &part{inst: t, health: "input " + fc.Name, input: "files." + fc.Name,
				run: func(ctx context.Context, sink trackedSink) error { return t.Run(ctx, sink) }}, nil
		}})
	}
	for _, bc := range c.Inputs.Modbus.Buses {
		mc := modbusConf{Bus: bc}
		for _, d := range c.Inputs.Modbus.Devices {
			if d.Bus == bc.Name {
				mc.Devices = append(mc.Devices, d)
			}
		}
		out = append(out, partSpec{key: "inputs.modbus bus " + bc.Name, conf: mc, build: func() (*part, error) {
			p, err := poll.New(poll.Config{Buses: []poll.BusConfig{mc.Bus}, Devices: mc.Devices}, g.log.With("part", "modbus"), g.clock)
			if err != nil {
				return nil, fmt.Errorf("inputs.modbus: %w", err)
			}
			p.UseDriverEnable(g.driverEnable)
			b := &modbusBus{poller: p, devices: mc.Devices}
			pt := &part{inst: b, input: "modbus." + bc.Name, run: func(ctx context.Context, sink trackedSink) error { return p.Run(ctx, sink) }}
			if len(mc.Devices) > 0 {
				pt.health, pt.check = "inputs.modbus bus "+bc.Name, b.overdue
			}
			return pt, nil
		}})
	}
	for _, lc := range c.Inputs.Lines {
		out = append(out, partSpec{key: "inputs.lines " + lc.Name, conf: lc, build: func() (*part, error) {
			s, err := line.New(lc, g.driverEnable(lc.Port.Device), g.log.With("part", "line"))
			if err != nil {
				return nil, fmt.Errorf("inputs.lines %s: %w", lc.Name, err)
			}
			s.UseClock(g.clock)
			return &part{inst: &lineInput{sensor: s, device: lc.Port.Device}, health: "input line " + lc.Name, input: "lines." + lc.Name,
				run: func(ctx context.Context, sink trackedSink) error {
					return s.Run(ctx, func(ctx context.Context, evs []event.Event) error { return sink.Emit(ctx, evs, nil) })
				}}, nil
		}})
	}
	if sc := c.Inputs.Syslog; sc != nil {
		conf := identityConf[syslog.Config]{Config: *sc, Files: sums.syslog}
		out = append(out, partSpec{key: "inputs.syslog", conf: conf, build: func() (*part, error) {
			s, err := syslog.New(conf.Config, g.log.With("part", "syslog"))
			if err != nil {
				return nil, fmt.Errorf("inputs.syslog: %w", err)
			}
			return &part{inst: s, health: "inputs.syslog", input: "syslog",
				listen: func(ctx context.Context) error {
					if err := s.Listen(ctx); err != nil {
						return keyed("inputs.syslog", err)
					}
					return nil
				},
				run: func(ctx context.Context, sink trackedSink) error { return s.Run(ctx, sink) }}, nil
		}})
	}
	if ac := c.Inputs.Audit; ac != nil {
		out = append(out, partSpec{key: "inputs.audit", conf: *ac, build: func() (*part, error) {
			r, err := audit.New(*ac, g.spool, g.log.With("part", "audit"))
			if err != nil {
				return nil, fmt.Errorf("inputs.audit: %w", err)
			}
			return &part{inst: r, health: "inputs.audit", input: "audit",
				run: func(ctx context.Context, sink trackedSink) error { return r.Run(ctx, sink) }}, nil
		}})
	}
	if ic := c.Inputs.Integrity; ic != nil {
		out = append(out, partSpec{key: "inputs.integrity", conf: *ic, build: func() (*part, error) {
			m, err := integrity.New(integrityConfig(*ic, g.dataDir), g.cfgFile, g.spool, g.log.With("part", "integrity"))
			if err != nil {
				return nil, fmt.Errorf("inputs.integrity: %w", err)
			}
			return &part{inst: m, health: "inputs.integrity", input: "integrity",
				run: func(ctx context.Context, sink trackedSink) error { return m.Run(ctx, sink) }}, nil
		}})
	}
	uc := identityConf[uplink.Config]{Config: c.Uplink, Files: sums.uplink}
	out = append(out, partSpec{key: "uplink", conf: uc, build: func() (*part, error) {
		s, err := sender.New(uc.Config, g.cfg.Gateway.ID, g.bootID, g.senderSpool, g.log.With("part", "uplink"))
		if err != nil {
			return nil, err
		}
		if g.fleet != nil {
			s.UseFleet(g.fleet)
		}
		return &part{inst: s, run: func(ctx context.Context, _ trackedSink) error {
			// The link's telemetry follows its sender: it ends with it.
			lctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = g.runLinkTelemetry(lctx, s, uc.Config)
			}()
			err := s.Run(ctx)
			cancel()
			<-done
			return err
		}}, nil
	}})
	return out
}

// buildPipeline makes the pipeline of generation gen from the parts
// running, in the order of specs.
func buildPipeline(gen uint64, cfg Config, specs []partSpec, parts map[string]*part) *pipeline {
	p := &pipeline{gen: gen, cfg: cfg, parts: parts}
	for _, s := range specs {
		pt := parts[s.key]
		if pt == nil {
			continue // a new part that could not start
		}
		switch v := pt.inst.(type) {
		case *hostlog.Tailer:
			p.tailers = append(p.tailers, v)
		case *modbusBus:
			p.buses = append(p.buses, v)
		case *lineInput:
			p.lines = append(p.lines, v)
		case *syslog.Server:
			p.syslog = v
		case *audit.Reader:
			p.audit = v
		case *integrity.Monitor:
			p.integrity = v
		case *sender.Sender:
			p.sender = v
		}
	}
	return p
}

// now is the pipeline in force.
func (g *Gateway) now() *pipeline { return g.live.Load() }

// startPart registers p with the health check, if it is a source, and
// runs it.
func (g *Gateway) startPart(p *part) {
	var sink trackedSink
	if p.health != "" {
		p.src, sink = g.source(p.health, p.check)
		p.src.alive.Store(true)
	} else {
		sink = trackedSink{g: g, h: &sourceHealth{}}
	}
	sink.input = p.input
	src := p.src
	p.task = g.tasks.spawn(p.key, func(ctx context.Context) error {
		if src != nil {
			defer src.alive.Store(false)
		}
		return p.run(ctx, sink)
	})
}

// stopPart stops p and waits until it has returned. A source's spool
// writes are all or nothing (spool.Spool.Append), its positions going
// with its records, so whatever follows it resumes exactly where it
// stopped.
func (g *Gateway) stopPart(p *part) {
	if p.src != nil {
		p.src.stopping.Store(true) // not "stopped" to the health check meanwhile
	}
	p.task.stop(g.log, p.key)
	if p.src != nil {
		g.dropSource(p.src)
	}
	p.src, p.task = nil, nil
}

// taskGroup runs the gateway's goroutines under the run's context; one
// that fails (returns an error while its own context is live) stops the
// gateway.
type taskGroup struct {
	ctx  context.Context
	fail context.CancelCauseFunc
	wg   sync.WaitGroup
}

// task is one goroutine of the group, stopped on its own.
type task struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (tg *taskGroup) spawn(name string, f func(context.Context) error) *task {
	ctx, cancel := context.WithCancel(tg.ctx)
	t := &task{cancel: cancel, done: make(chan struct{})}
	tg.wg.Add(1)
	go func() {
		defer tg.wg.Done()
		defer close(t.done)
		defer cancel()
		if err := f(ctx); err != nil && ctx.Err() == nil {
			tg.fail(fmt.Errorf("gateway: %s: %w", name, err))
		}
	}()
	return t
}

// stopWarn is how long a stopping part may take before the log says so.
const stopWarn = 10 * time.Second

// stop cancels the task and waits for it, however long that takes: its
// replacement must not run beside it (the same checkpoints, the same
// line, the same ports).
func (t *task) stop(log *slog.Logger, name string) {
	t.cancel()
	select {
	case <-t.done:
		return
	case <-time.After(stopWarn):
		log.Warn("a part has not stopped yet; its replacement waits", "part", name, "waited", stopWarn)
	}
	<-t.done
}

// overdue reports the bus's worker stuck: a device past its next poll
// by more than the longest interval on the bus (a poll ends by its
// group's next tick, and the worker polls one device at a time) plus
// stall. A device backed off as dead has its next poll pushed out, so it
// is not overdue.
func (b *modbusBus) overdue(now time.Time, stall time.Duration) string {
	var longest time.Duration
	for _, d := range b.devices {
		longest = max(longest, d.Interval)
		for _, r := range d.Registers {
			longest = max(longest, r.Interval)
		}
	}
	for _, bs := range b.poller.Status().Buses {
		if bs.State != "open" {
			continue
		}
		for _, d := range bs.Devices {
			if late := now.Sub(d.NextPoll); !d.NextPoll.IsZero() && late > longest+stall {
				return fmt.Sprintf("inputs.modbus bus %s: device %s is %s past its poll (the bus is stuck)", bs.Name, d.Name, late.Round(time.Millisecond))
			}
		}
	}
	return ""
}

// modbusStatus is every bus's status, as one poller would give it.
func (p *pipeline) modbusStatus() poll.Status {
	st := poll.Status{At: time.Now()}
	for _, b := range p.buses {
		st.Buses = append(st.Buses, b.poller.Status().Buses...)
	}
	return st
}

// modbusTelemetry is every bus's telemetry record.
func (p *pipeline) modbusTelemetry() []event.Event {
	var evs []event.Event
	for _, b := range p.buses {
		evs = append(evs, b.poller.Telemetry()...)
	}
	return evs
}

// modbusRead does a live read of the named device on its bus.
func (p *pipeline) modbusRead(ctx context.Context, name string) (*poll.ReadResult, error) {
	for _, b := range p.buses {
		for _, d := range b.devices {
			if d.Name == name {
				return b.poller.Read(ctx, name)
			}
		}
	}
	return nil, fmt.Errorf("modbus: %q: %w", name, poll.ErrNoDevice)
}
