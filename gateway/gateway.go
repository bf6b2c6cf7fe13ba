package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/process"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/rules/action"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink/sender"
)

// Gateway is the assembled pipeline: sources → clock → spool → uplink.
type Gateway struct {
	cfg     Config
	cfgFile string // the configuration file read, watched by integrity
	version string
	log     *slog.Logger
	dataDir string
	socket  string
	host    string
	bootID  string
	started time.Time

	clock   ptp.Clock
	spool   *spool.Spool
	outputs *siemOutputs // nil without outputs
	metrics *metrics
	logs    *logRing // the newest log lines, for the console

	// The running parts and the configuration they were built from
	// (parts.go): replaced whole by a reload (reload.go). g.cfg stays the
	// configuration the gateway started with; a reload never changes the
	// sections only a restart applies.
	live        atomic.Pointer[pipeline]
	senderSpool sender.Spool // what every sender reads: the spool, or the outputs' gate
	tasks       *taskGroup
	hooks       []*sectionHook // sections their parts take in place (Reloader)
	sealer      *sealer        // nil while seals are off
	reload      reloadState
	running     chan struct{} // closed once every part runs
	done        chan struct{} // closed when Run returns

	// Remote configuration: the bundle the configuration was merged
	// with at start, and the agent that applies the next ones.
	bundle *FleetBundle
	fleet  *fleetAgent

	appended atomic.Uint64

	// The appliance: its board (nil without a board section), the
	// hardware watchdog (nil without one), the health of the pipeline
	// that decides the kicks, and systemd's notify socket.
	board      atomic.Pointer[board.Board]
	watchdog   *board.Watchdog
	sources    sourceSet
	health     healthState
	adminProbe adminProbe
	notify     *notifier
	ready      atomic.Bool
	lastAlert  atomic.Pointer[alertMark]

	// Edge detection: the rules every record passes on its way to the
	// spool, the actions of the levels, and the commands they run.
	rules       *rules.Engine
	ruleActions atomic.Pointer[rules.ActionsConfig]
	actions     *action.Runner

	// The processors every record passes after the rules (processors.go).
	procs       atomic.Pointer[processorSet]
	procBatches sync.Pool // *[]event.Event: the batches the processors work on
}

// New builds a gateway from a validated configuration; nothing is opened
// until Run.
func New(cfg Config, version string, log *slog.Logger) (*Gateway, error) {
	if log == nil {
		log = slog.Default()
	}
	clock, err := ptp.New(cfg.Clock)
	if err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil {
		host = cfg.Gateway.ID
	}
	logs := newLogRing(logRingLines)
	log = slog.New(newTeeHandler(log.Handler(), logs))
	g := &Gateway{cfg: cfg, version: version, log: log, logs: logs, host: host, bootID: bootID(), clock: clock,
		notify: newNotifier(log), running: make(chan struct{}), done: make(chan struct{}),
		actions: action.New(log.With("part", "rules"), actionSlots)}
	g.procBatches.New = func() any { return new([]event.Event) }
	g.rules, err = rules.New(rules.Config{Enabled: false, MaxGroups: 1, Correlation: rules.DefaultConfig().Correlation},
		rules.Options{Host: host, Log: log.With("part", "rules")})
	if err != nil {
		return nil, fmt.Errorf("gateway: rules: %w", err)
	}
	if _, err := g.ReloadRules(cfg.Rules); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := g.ReloadProcessors(cfg.Processors); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return g, nil
}

// SetConfigFile names the configuration file cfg was read from
// (Loaded.File; "" for built-in defaults only). inputs.integrity watches it
// with the gateway's binary, whatever its paths say. Call it before Run.
func (g *Gateway) SetConfigFile(path string) { g.cfgFile = path }

// SetFleetBundle names the fleet bundle cfg was merged with
// (Loaded.Bundle from LoadInForce; nil for the file alone). Call it
// before Run.
func (g *Gateway) SetFleetBundle(b *FleetBundle) { g.bundle = b }

// ResolveDataDir returns the configured data directory, or the first of
// /var/lib/weir and ./weir-data that can be written, creating it. The
// directory must pass checkDataDir: one another user could tamper with is
// an error, never passed over for the next candidate.
func ResolveDataDir(configured string) (string, error) {
	if configured != "" {
		if err := ensureWritableDir(configured); err != nil {
			return "", fmt.Errorf("data_dir %s: %w", configured, err)
		}
		if err := checkDataDir(configured); err != nil {
			return "", fmt.Errorf("data_dir %s: %w", configured, err)
		}
		return configured, nil
	}
	var errs []error
	for _, d := range DataDirCandidates() {
		if err := ensureWritableDir(d); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d, err))
			continue
		}
		if err := checkDataDir(d); err != nil {
			return "", fmt.Errorf("data directory %s: %w", d, err)
		}
		return d, nil
	}
	return "", fmt.Errorf("no writable data directory: %w", errors.Join(errs...))
}

// DataDirCandidates are the default data directories, in order.
func DataDirCandidates() []string { return []string{"/var/lib/weir", "weir-data"} }

func ensureWritableDir(d string) error {
	if err := os.MkdirAll(d, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(d, ".probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// SocketPath is where the admin socket of cfg lives: admin.socket, else
// weir.sock in data_dir, else in /var/lib/weir. Never one found under the
// working directory (./weir-data, where a gateway without /var/lib/weir
// falls back to): whoever can write there could answer the CLI in the
// gateway's name. That gateway logs its socket at start; the CLI reaches
// it with --socket or a configuration naming data_dir.
func SocketPath(cfg Config) string {
	if cfg.Admin.Socket != "" {
		return cfg.Admin.Socket
	}
	if cfg.DataDir != "" {
		return filepath.Join(cfg.DataDir, "weir.sock")
	}
	return filepath.Join(DataDirCandidates()[0], "weir.sock")
}

// Run starts everything and blocks until ctx is done or a part fails.
// It may be called once.
func (g *Gateway) Run(ctx context.Context) error {
	defer close(g.done)
	g.started = time.Now()
	g.logPrivileges()
	dir, err := ResolveDataDir(g.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.dataDir = dir
	g.socket = g.cfg.Admin.Socket
	if g.socket == "" {
		g.socket = filepath.Join(dir, "weir.sock")
	}
	if g.cfg.DataDir == "" && dir != DataDirCandidates()[0] {
		g.log.Warn("default data directory not writable; using a local one (the CLI needs --socket or data_dir to find it)",
			"want", DataDirCandidates()[0], "using", dir, "socket", g.socket)
	}

	// The admin socket comes first: its umask must not race files created
	// by other parts, and a second weir on the same data directory must be
	// refused before it touches the spool.
	admin, err := g.listenAdmin()
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := prepareSpoolDir(filepath.Join(dir, "spool")); err != nil {
		return fmt.Errorf("gateway: spool directory: %w", err)
	}
	// On a disk too full to open Badger safely, OpenContext waits for
	// space; a stop request still stops the gateway.
	g.spool, err = spool.OpenContext(ctx, spool.Options{Dir: filepath.Join(dir, "spool"), Config: g.cfg.Spool, Logger: g.log})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer g.spool.Close()

	// The board before the inputs: a serial line's driver-enable pin is
	// the board's.
	if err := g.openBoard(); err != nil {
		return err
	}
	if b := g.Board(); b != nil {
		defer b.Close()
	}

	if g.senderSpool, err = g.buildOutputs(dir); err != nil {
		return err
	}
	// Before the parts: every sender carries remote configuration.
	if g.fleet, err = newFleetAgent(g, filepath.Join(dir, fleetDirName), g.bundle); err != nil {
		return err
	}
	// Every part is built before any is bound or run, as a reload does;
	// the files the TLS sections name are read here so that a reload can
	// tell a certificate renewed in place.
	specs := g.specs(&g.cfg, readFileSums(&g.cfg))
	parts := make(map[string]*part, len(specs))
	for _, sp := range specs {
		pt, err := sp.build()
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		pt.key, pt.conf = sp.key, sp.conf
		parts[sp.key] = pt
	}
	// Bound now, the last step that can fail, so an address in use stops
	// start-up with the key named, and no port stays open when start-up
	// fails (Run closes the listeners).
	for _, sp := range specs {
		if pt := parts[sp.key]; pt.listen != nil {
			if err := pt.listen(ctx); err != nil {
				return fmt.Errorf("gateway: %w", err)
			}
		}
	}
	g.live.Store(buildPipeline(1, g.cfg, specs, parts))
	g.reload.init(g.configSource())
	g.metrics = newMetrics(g)
	if why := g.spool.Stats().Recovered; why != "" {
		// The operator must learn of records lost with a corrupt spool
		// from the record stream itself, not only from a local log. Emitted
		// once everything Emit uses is built; the spool reports the move
		// again at the next start until this record is spooled.
		ev := []event.Event{{Source: "weir", Kind: event.KindAlert, Severity: event.SevCritical,
			Priority: event.PriorityCritical, Message: why}}
		if err := g.Emit(ctx, ev, nil); err != nil {
			return err
		}
		g.spool.RecoveryReported()
	}
	g.metrics.reg.MustRegister(outputsCollector{g}, reloadCollector{g})
	if g.cfg.SealInterval > 0 {
		if g.sealer, err = openSealer(g, dir); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g.tasks = &taskGroup{ctx: ctx, fail: cancel}
	run := func(name string, f func(context.Context) error) { g.tasks.spawn(name, f) }
	run("admin", func(ctx context.Context) error { return serveAdmin(ctx, admin, g) })
	run("clock", g.clock.Run)
	run("clock watch", g.runClockWatch)
	if g.cfg.Metrics.Listen != "" {
		run("metrics", g.metrics.serve(g.cfg.Metrics.Listen))
	}
	// Every input is a source the health check watches: alive, and not
	// stuck on a spool write; Modbus buses also on their schedule.
	for _, sp := range specs {
		g.startPart(parts[sp.key])
	}
	g.runOutputs(run)
	telemetry := newTelemetryLoop(g, g.cfg.TelemetryInterval)
	g.hooks = append(g.hooks, liveSection("telemetry_interval", func(c *Config) time.Duration { return c.TelemetryInterval }, &g.cfg, telemetry))
	run("telemetry", telemetry.run)
	run("spool watch", g.runSpoolWatch)
	run("fleet", g.fleet.run)
	if g.Board() != nil {
		run("board", g.runBoard)
	}
	run("health", g.runHealth)
	g.hooks = append(g.hooks, liveSection("rules", func(c *Config) rules.Config { return c.Rules }, &g.cfg, rulesReloader{g}))
	run("rules", g.runRules)
	g.hooks = append(g.hooks, liveSection("processors", func(c *Config) process.Config { return c.Processors }, &g.cfg, processorsReloader{g}))
	if g.sealer != nil {
		run("seal", g.sealer.run)
	}
	if !g.cfg.Uplink.Enabled() && len(g.cfg.Outputs) == 0 {
		g.log.Warn("no uplink endpoint and no output configured: records stay in the spool")
	}
	p := g.now()
	g.log.Info("gateway running", "id", g.cfg.Gateway.ID, "version", g.version, "data_dir", dir,
		"admin_socket", g.socket, "inputs", len(p.tailers), "modbus_devices", len(g.cfg.Inputs.Modbus.Devices), "line_sensors", len(p.lines),
		"syslog", p.syslog != nil, "audit", p.audit != nil, "integrity", p.integrity != nil, "uplink_endpoints", len(g.cfg.Uplink.Endpoints),
		"board", g.cfg.Board != nil)
	g.ready.Store(true)
	close(g.running)
	g.notify.send("READY=1\nSTATUS=running")

	<-ctx.Done()
	g.notify.send("STOPPING=1")
	cancel(nil)
	// No reload starts a part from here on; one under way finishes first
	// (its parts stop with the context).
	g.reload.mu.Lock()
	g.reload.stopped = true
	g.reload.mu.Unlock()
	g.tasks.wg.Wait()
	if g.sealer != nil {
		// Every input has stopped: this seal covers everything spooled.
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		g.sealer.seal(sctx, "shutdown")
		scancel()
	}
	// Only now, with every part stopped: a shutdown that hung would have
	// left the watchdog unkicked, and the board would reset.
	if g.watchdog != nil {
		if err := g.watchdog.Close(true); err != nil {
			g.log.Warn("watchdog not disarmed", "err", err)
		}
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	g.log.Info("gateway stopped")
	return nil
}

// keyed names each error a package joined under its prefix ("syslog:
// udp.listen ...: in use") by the full key ("inputs.syslog.udp.listen
// ...: in use"); other errors get the key in front.
func keyed(key string, err error) error {
	j, ok := errors.Unwrap(err).(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("%s: %w", key, err)
	}
	var errs []error
	for _, e := range j.Unwrap() {
		errs = append(errs, fmt.Errorf("%s.%w", key, e))
	}
	return errors.Join(errs...)
}

// integrityConfig is ic with the data directory excluded: the spool
// changes with every record, and reporting its changes would make records
// without end.
func integrityConfig(ic integrity.Config, dataDir string) integrity.Config {
	if abs, err := filepath.Abs(dataDir); err == nil {
		ic.Exclude = append(slices.Clone(ic.Exclude), globQuote(abs))
	}
	return ic
}

// globQuote escapes what filepath.Match would take for a pattern.
func globQuote(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Emit stamps, evaluates against the rules, runs through the global
// processors, encodes and spools events with the checkpoints of the
// source that produced them, in one transaction, then spools the alerts
// the rules raised. It is the sink of the gateway's own records.
func (g *Gateway) Emit(ctx context.Context, evs []event.Event, cps []spool.Checkpoint) error {
	_, err := g.emit(ctx, "", evs, cps)
	return err
}

// emit is Emit for the records of input (processors.inputs' name), which
// pass its chain before the global one; it returns the sequence of the
// first record spooled.
func (g *Gateway) emit(ctx context.Context, input string, evs []event.Event, cps []spool.Checkpoint) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now, q := g.clock.Now()
	st := Stamp{Gateway: g.cfg.Gateway.ID, Host: g.host, Time: now, Quality: q}
	stamp(evs, st)
	// The rules see each record stamped and before it is encoded: a
	// correlation id goes into the record itself. They see it before the
	// processors, so that a drop or a sample never blinds detection.
	pending := g.rules.Observe(evs)
	n := len(evs)
	var orig []int32
	if pending != nil {
		orig = make([]int32, n)
		for i := range orig {
			orig[i] = int32(i)
		}
	}
	// What the processors drop is not spooled, but its checkpoints are,
	// with what they keep: a dropped line is never read again. They work
	// on a copy of the batch: a source whose batch is not taken emits it
	// again, as it made it.
	procs := g.procs.Load()
	if procs.active(input) {
		work := g.procBatches.Get().(*[]event.Event)
		*work = append((*work)[:0], evs...)
		defer func() {
			clear(*work)
			g.procBatches.Put(work)
		}()
		evs = procs.apply(input, *work, orig)
	}
	first, err := g.appendEvents(ctx, evs, cps)
	if err != nil {
		procs.forget(input)
		return 0, err
	}
	var alerts []event.Event
	if len(evs) < n {
		alerts = g.rules.CommitKept(pending, first, n, orig[:min(len(orig), len(evs))])
	} else {
		alerts = g.rules.Commit(pending, first)
	}
	if len(alerts) > 0 {
		g.raise(ctx, alerts)
	}
	return first, nil
}

// StampBytes is what Emit's stamp adds to each record at most: the
// gateway id and the host name (g.cfg's id is the one the gateway started
// with: a reload never changes it).
func (g *Gateway) StampBytes() int { return len(g.cfg.Gateway.ID) + len(g.host) }

// spoolEvents stamps and spools events without the rules: the rules'
// own alerts.
func (g *Gateway) spoolEvents(ctx context.Context, evs []event.Event, cps []spool.Checkpoint) (uint64, error) {
	now, q := g.clock.Now()
	stamp(evs, Stamp{Gateway: g.cfg.Gateway.ID, Host: g.host, Time: now, Quality: q})
	return g.appendEvents(ctx, evs, cps)
}

// appendEvents encodes stamped events and spools them with cps; it
// returns the first one's sequence.
func (g *Gateway) appendEvents(ctx context.Context, evs []event.Event, cps []spool.Checkpoint) (uint64, error) {
	recs, err := encode(evs)
	if err != nil {
		return 0, err
	}
	first, err := g.spool.Append(ctx, recs, cps)
	if err != nil {
		return 0, fmt.Errorf("gateway: %w", err)
	}
	g.appended.Add(uint64(len(evs)))
	if g.board.Load() != nil {
		g.noteAlerts(evs)
	}
	if len(evs) > 0 && g.metrics != nil {
		g.metrics.appended.WithLabelValues(evs[0].Source).Add(float64(len(evs)))
	}
	return first, nil
}

// classOf maps a record's priority to the spool's class.
// Stamp is what the gateway adds to every record it spools.
type Stamp struct {
	Gateway, Host string // Host only where the source named none
	Time          time.Time
	Quality       event.Quality // with Time, where the source set no time
}

// Entries stamps evs and encodes them as spool entries, by priority class.
// One arena holds the whole batch: the spool copies the bytes into its
// transaction, so nothing outlives the Append they are for.
func Entries(evs []event.Event, st Stamp) ([]spool.Entry, error) {
	stamp(evs, st)
	return encode(evs)
}

// stamp gives every record the gateway id, and the time and host where
// its source gave none.
func stamp(evs []event.Event, st Stamp) {
	for i := range evs {
		e := &evs[i]
		e.Gateway = st.Gateway
		if e.Time == 0 {
			e.Time, e.Quality = st.Time.UnixNano(), st.Quality
		}
		if e.Host == "" {
			e.Host = st.Host
		}
	}
}

// encode encodes stamped records into one arena.
func encode(evs []event.Event) ([]spool.Entry, error) {
	size := 0
	for i := range evs {
		size += evs[i].MaxEncodedLen()
	}
	arena := make([]byte, 0, size)
	recs := make([]spool.Entry, len(evs))
	for i := range evs {
		e := &evs[i]
		start := len(arena)
		var err error
		if arena, err = e.AppendBinary(arena); err != nil {
			return nil, fmt.Errorf("gateway: encode record from %s: %w", e.Source, err)
		}
		recs[i] = spool.Entry{Class: classOf(e.Priority), Data: arena[start:len(arena):len(arena)]}
	}
	return recs, nil
}

func classOf(p event.Priority) spool.Class {
	switch p {
	case event.PriorityCritical:
		return spool.ClassCritical
	case event.PriorityBulk:
		return spool.ClassBulk
	}
	return spool.ClassNormal
}

// bootID identifies this run of the gateway to the collector's logs: the
// kernel's boot id where there is one, else random.
func bootID() string {
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		return strings.TrimSpace(string(b))
	}
	var r [16]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}
