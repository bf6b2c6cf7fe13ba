package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink"
)

// Outcomes of a reload.
const (
	ReloadOK        = "ok"        // every change applied
	ReloadUnchanged = "unchanged" // nothing differed, certificates included
	ReloadPartial   = "partial"   // some parts kept their previous configuration (Error says which and why)
	ReloadFailed    = "failed"    // no change could be applied; every part kept its previous configuration
	ReloadRefused   = "refused"   // invalid, or needing a restart: nothing applied
)

// ReloadResult is what a reload did.
type ReloadResult struct {
	// Generation is the configuration in force after the reload: the one
	// the gateway started with is 1, and each reload that applied
	// something adds one.
	Generation uint64    `json:"generation"`
	At         time.Time `json:"at"`
	Source     string    `json:"source"` // who asked, and for what: "SIGHUP /etc/weir/weir.yaml"
	Result     string    `json:"result"`
	// Keys are the configuration's keys that differed from the
	// configuration in force; Changed the parts started, restarted,
	// stopped or updated for them.
	Keys    []string `json:"keys,omitempty"`
	Changed []string `json:"changed,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Err is the result's error, nil when everything asked was applied.
func (r ReloadResult) Err() error {
	if r.Error == "" {
		return nil
	}
	return fmt.Errorf("reload %s: %s", r.Result, r.Error)
}

// ConfigStatus is the configuration in force, as `weir status` shows it.
type ConfigStatus struct {
	Generation uint64            `json:"generation"`
	Source     string            `json:"source"` // where it came from
	Since      time.Time         `json:"since"`  // when it was put in force
	Reloads    map[string]uint64 `json:"reloads,omitempty"`
	LastReload *ReloadResult     `json:"last_reload,omitempty"`
	// Fleet is remote configuration: the bundle in force and the last
	// one's outcome.
	Fleet *FleetStatus `json:"fleet,omitempty"`
}

// reloadState serialises reloads and keeps their outcome.
type reloadState struct {
	mu      sync.Mutex // held through a reload
	stopped bool       // Run is stopping: no part may start

	smu    sync.Mutex // the figures below
	source string
	since  time.Time
	gen    uint64
	counts map[string]uint64
	last   *ReloadResult
}

func (s *reloadState) init(source string) {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.source, s.since, s.gen, s.counts = source, time.Now(), 1, map[string]uint64{}
}

func (s *reloadState) note(r ReloadResult) {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.counts[r.Result]++
	if r.Generation != s.gen {
		s.gen, s.source, s.since = r.Generation, r.Source, r.At
	}
	s.last = &r
}

func (g *Gateway) configStatus() ConfigStatus {
	s := &g.reload
	s.smu.Lock()
	defer s.smu.Unlock()
	st := ConfigStatus{Generation: s.gen, Source: s.source, Since: s.since}
	if len(s.counts) > 0 {
		st.Reloads = make(map[string]uint64, len(s.counts))
		for k, v := range s.counts {
			st.Reloads[k] = v
		}
	}
	if s.last != nil {
		last := *s.last
		st.LastReload = &last
	}
	if g.fleet != nil {
		st.Fleet = g.fleet.status()
	}
	return st
}

// configSource says where the configuration the gateway started with
// came from.
func (g *Gateway) configSource() string {
	s := "built-in defaults"
	if g.cfgFile != "" {
		s = g.cfgFile
	}
	if g.bundle != nil {
		s += fmt.Sprintf(" with fleet bundle v%d", g.bundle.Version)
	}
	return s
}

// Reload puts next in force while the gateway runs: what SIGHUP does
// with the configuration file, and what a configuration arriving by
// other means (from the fleet) goes through. It waits until the gateway
// runs. next is checked whole first (Validate, the sections only a
// restart applies, the TLS files, every new part built), and refused
// whole if anything is wrong; then only the parts whose configuration
// changed are stopped and started again, the others running on
// untouched. A part that cannot start on its new configuration (a port
// in use) goes back to its previous one, and the result says so.
// Certificates are read again whatever their files' times say. Each
// reload is logged, counted in metrics, shown in status and spooled as a
// telemetry record. next must be decoded as Load decodes a file (its
// defaults filled in the same way), or sections it leaves at zero
// count as changed. Reload keeps next: the caller must not change it
// afterwards.
func (g *Gateway) Reload(ctx context.Context, next Config, source string) ReloadResult {
	if err := g.awaitRunning(ctx); err != nil {
		return ReloadResult{At: time.Now(), Source: source, Result: ReloadRefused, Error: err.Error()}
	}
	g.reload.mu.Lock()
	defer g.reload.mu.Unlock()
	if g.reload.stopped {
		return ReloadResult{At: time.Now(), Source: source, Result: ReloadRefused, Error: "the gateway is stopping"}
	}
	g.notify.reloading()
	res := g.apply(ctx, next, source)
	g.report(ctx, res)
	g.notify.send(fmt.Sprintf("READY=1\nSTATUS=running (configuration generation %d, last reload %s)", res.Generation, res.Result))
	return res
}

// RefuseReload reports a reload whose configuration could not even be
// read (a file that does not parse, a key unknown): logged, counted,
// shown and spooled like any refused reload; the configuration in force
// stays.
func (g *Gateway) RefuseReload(ctx context.Context, source string, err error) ReloadResult {
	if werr := g.awaitRunning(ctx); werr != nil {
		return ReloadResult{At: time.Now(), Source: source, Result: ReloadRefused, Error: werr.Error()}
	}
	g.reload.mu.Lock()
	defer g.reload.mu.Unlock()
	res := ReloadResult{At: time.Now(), Source: source, Result: ReloadRefused, Generation: g.now().gen, Error: oneLine(err)}
	if !g.reload.stopped {
		g.report(ctx, res)
	}
	return res
}

func (g *Gateway) awaitRunning(ctx context.Context) error {
	select {
	case <-g.done:
		return errors.New("the gateway is not running")
	default:
	}
	select {
	case <-g.running:
		return nil
	case <-g.done:
		return errors.New("the gateway is not running")
	case <-ctx.Done():
		return fmt.Errorf("the gateway did not start in time: %w", ctx.Err())
	}
}

// change is one part a reload starts, replaces or stops.
type change struct {
	key      string
	old, new *part // nil: none (an added part, a removed one)
}

func (c change) what() string {
	switch {
	case c.old == nil:
		return c.key + ": started"
	case c.new == nil:
		return c.key + ": stopped"
	}
	if f, ok := c.new.conf.(interface{ filesOnly(any) bool }); ok && f.filesOnly(c.old.conf) {
		return c.key + ": restarted for its renewed certificate files"
	}
	return c.key + ": restarted"
}

// apply is one reload, under reload.mu.
func (g *Gateway) apply(ctx context.Context, next Config, source string) ReloadResult {
	cur := g.now()
	res := ReloadResult{At: time.Now(), Source: source, Generation: cur.gen}
	refuse := func(err error) ReloadResult {
		res.Result, res.Error = ReloadRefused, oneLine(err)
		return res
	}
	next.Uplink.Endpoints = slices.Clone(next.Uplink.Endpoints) // resolveDefaults writes into them
	next.resolveDefaults()
	if err := next.Validate(); err != nil {
		return refuse(fmt.Errorf("invalid configuration: %w", err))
	}
	res.Keys = changedKeys(&cur.cfg, &next)
	if why := needsRestart(res.Keys, &cur.cfg, &next, g.hooks); len(why) > 0 {
		return refuse(fmt.Errorf("needs a restart: %s", strings.Join(why, "; ")))
	}
	if err := checkIdentities(&next); err != nil {
		return refuse(err)
	}

	// Everything that will run is built, and every section a part takes
	// in place checked, before anything is stopped.
	specs := g.specs(&next, readFileSums(&next))
	var changes []change
	inSpecs := map[string]bool{}
	for _, sp := range specs {
		inSpecs[sp.key] = true
		old := cur.parts[sp.key]
		if old != nil && reflect.DeepEqual(old.conf, sp.conf) {
			continue
		}
		pt, err := sp.build()
		if err != nil {
			return refuse(err)
		}
		pt.key, pt.conf = sp.key, sp.conf
		changes = append(changes, change{key: sp.key, old: old, new: pt})
	}
	for _, key := range slices.Sorted(maps.Keys(cur.parts)) {
		if !inSpecs[key] {
			changes = append(changes, change{key: key, old: cur.parts[key]})
		}
	}
	type hookChange struct {
		h *sectionHook
		v any
	}
	var hooks []hookChange
	for _, h := range g.hooks {
		if v, ok := h.changed(&next); ok {
			if err := h.check(v); err != nil {
				return refuse(fmt.Errorf("%s: %w", h.key, err))
			}
			hooks = append(hooks, hookChange{h, v})
		}
	}
	if len(res.Keys) == 0 && len(changes) == 0 && len(hooks) == 0 {
		res.Result = ReloadUnchanged
		return res
	}

	parts := make(map[string]*part, len(cur.parts))
	for k, p := range cur.parts {
		parts[k] = p
	}
	// Every part that goes is stopped before any successor starts: they
	// free the names, lines and ports their successors may take.
	for _, c := range changes {
		if c.old != nil {
			g.stopPart(c.old)
			delete(parts, c.key)
		}
	}
	var failures []string
	applied := 0
	for _, c := range changes {
		if c.new == nil {
			res.Changed = append(res.Changed, c.what())
			applied++
			continue
		}
		if c.new.listen != nil {
			if err := c.new.listen(ctx); err != nil {
				failures = append(failures, g.rollBack(ctx, c, err, parts))
				continue
			}
		}
		g.startPart(c.new)
		parts[c.key] = c.new
		res.Changed = append(res.Changed, c.what())
		applied++
	}
	for _, hc := range hooks {
		if err := hc.h.apply(ctx, hc.v); err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v; it runs on its previous configuration", hc.h.key, err))
			continue
		}
		hc.h.applied = hc.v
		res.Changed = append(res.Changed, hc.h.key+": updated")
		applied++
	}
	inert := false
	for _, k := range res.Keys {
		if c := classify(k, g.hooks); c.live && c.key == "console" {
			inert = true
		}
	}
	switch {
	case len(failures) == 0:
		res.Result = ReloadOK
	case applied > 0 || inert:
		res.Result = ReloadPartial
	default:
		res.Result = ReloadFailed
	}
	res.Error = strings.Join(failures, "; ")
	cfg := next
	if res.Result == ReloadFailed {
		cfg = cur.cfg
	} else {
		res.Generation = cur.gen + 1
	}
	g.live.Store(buildPipeline(res.Generation, cfg, specs, parts))
	return res
}

// rollBack starts c's previous part again after its successor could not
// start (err), and says what happened for the reload's result.
func (g *Gateway) rollBack(ctx context.Context, c change, err error, parts map[string]*part) string {
	if c.old == nil {
		return fmt.Sprintf("%s: %v; not started", c.key, err)
	}
	if c.old.listen != nil {
		if lerr := c.old.listen(ctx); lerr != nil {
			g.log.Error("a part could not be started on its new configuration nor on its previous one; it is stopped",
				"part", c.key, "err", err, "previous_err", lerr)
			return fmt.Sprintf("%s: %v; its previous configuration could not be restored either (%v): stopped", c.key, err, lerr)
		}
	}
	g.startPart(c.old)
	parts[c.key] = c.old
	return fmt.Sprintf("%s: %v; it runs on its previous configuration", c.key, err)
}

// report logs res, counts it and spools its record.
func (g *Gateway) report(ctx context.Context, res ReloadResult) {
	g.reload.note(res)
	attrs := []any{"generation", res.Generation, "source", res.Source}
	if len(res.Changed) > 0 {
		attrs = append(attrs, "changed", strings.Join(res.Changed, ", "))
	}
	switch res.Result {
	case ReloadOK:
		g.log.Info("configuration reloaded", attrs...)
	case ReloadUnchanged:
		g.log.Info("configuration reloaded: nothing changed", attrs...)
	case ReloadRefused:
		g.log.Error("configuration reload refused; the configuration in force stays", append(attrs, "err", res.Error)...)
	default:
		g.log.Error("configuration reload "+res.Result+": some parts kept their previous configuration", append(attrs, "err", res.Error)...)
	}
	// The record waits for room at most this long: a reload does not
	// hang on a full spool (a refused one is critical and never waits).
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := g.Emit(ectx, []event.Event{reloadEvent(res)}, nil); err != nil {
		g.log.Warn("reload record not spooled", "err", err)
	}
}

// reloadEvent is the telemetry record of a reload: normal when it
// applied everything, critical when the gateway now runs on something
// other than what was asked.
func reloadEvent(r ReloadResult) event.Event {
	ev := event.Event{Source: "weir:config", Kind: event.KindTelemetry, Severity: event.SevNotice, Priority: event.PriorityNormal,
		Fields: []event.Field{event.Uint("generation", r.Generation), event.Str("result", r.Result), event.Str("source", r.Source)}}
	switch r.Result {
	case ReloadOK, ReloadUnchanged:
		ev.Message = fmt.Sprintf("configuration reloaded (generation %d)", r.Generation)
		if len(r.Changed) > 0 {
			ev.Message += ": " + strings.Join(r.Changed, ", ")
		}
	default:
		ev.Severity, ev.Priority = event.SevWarning, event.PriorityCritical
		ev.Message = fmt.Sprintf("configuration reload %s (generation %d in force): %s", r.Result, r.Generation, r.Error)
		ev.Fields = append(ev.Fields, event.Str("error", r.Error))
	}
	if len(r.Changed) > 0 {
		ev.Fields = append(ev.Fields, event.Str("changed", strings.Join(r.Changed, "; ")))
	}
	if len(r.Keys) > 0 {
		ev.Fields = append(ev.Fields, event.Str("keys", strings.Join(r.Keys, ",")))
	}
	return ev
}

// oneLine is err's text on one line: a ConfigError lists its problems
// one a line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// fileSums are the contents of the TLS files the uplink and syslog name,
// hashed.
type fileSums struct{ uplink, syslog [32]byte }

// readFileSums reads them now; a file missing or unreadable sums as
// such (the part says what is wrong when it uses it).
func readFileSums(c *Config) fileSums {
	var s fileSums
	s.uplink = sumFiles(c.Uplink.TLS.CA, c.Uplink.TLS.Cert, c.Uplink.TLS.Key)
	if sc := c.Inputs.Syslog; sc != nil {
		s.syslog = sumFiles(sc.TLS.ClientCAFile, sc.TLS.CertFile, sc.TLS.KeyFile)
	}
	return s
}

func sumFiles(paths ...string) [32]byte {
	h := sha256.New()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		switch {
		case p == "":
			fmt.Fprint(h, "none\x00")
		case err != nil:
			fmt.Fprintf(h, "error %s\x00", err)
		default:
			fmt.Fprintf(h, "%d\x00", len(b))
			h.Write(b)
		}
	}
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// filesOnly says whether o is the same section with other file contents.
func (c identityConf[C]) filesOnly(o any) bool {
	oc, ok := o.(identityConf[C])
	return ok && c.Files != oc.Files && reflect.DeepEqual(c.Config, oc.Config)
}

// checkIdentities loads the uplink's TLS identity as its next handshake
// would: a reload must not put in force a certificate without its key
// (renewed halfway) or a CA bundle that does not parse. Syslog's files
// are loaded when its part is built.
func checkIdentities(c *Config) error {
	if !c.Uplink.Enabled() {
		return nil
	}
	if _, err := uplink.NewIdentity(c.Uplink.TLS).Leaf(); err != nil {
		return fmt.Errorf("uplink.tls: %w", err)
	}
	return nil
}

// reloadCollector exports the reloads' figures.
type reloadCollector struct{ g *Gateway }

var (
	descReloads    = prometheus.NewDesc("weir_config_reloads_total", "Configuration reloads by result (ok, unchanged, partial, failed, refused).", []string{"result"}, nil)
	descGeneration = prometheus.NewDesc("weir_config_generation", "The configuration in force: 1 at start, one more for each reload that applied something.", nil, nil)
	descReloadAt   = prometheus.NewDesc("weir_config_last_reload_timestamp_seconds", "When the last reload was asked for (0: none yet).", nil, nil)
	descReloadOK   = prometheus.NewDesc("weir_config_last_reload_successful", "1 if the last reload applied everything asked (ok or unchanged), 0 if not; 1 before any.", nil, nil)
)

func (reloadCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReloads, descGeneration, descReloadAt, descReloadOK} {
		ch <- d
	}
}

func (c reloadCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.configStatus()
	for _, r := range []string{ReloadOK, ReloadUnchanged, ReloadPartial, ReloadFailed, ReloadRefused} {
		ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(st.Reloads[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(descGeneration, prometheus.GaugeValue, float64(st.Generation))
	at, ok := 0.0, 1.0
	if l := st.LastReload; l != nil {
		at = float64(l.At.UnixNano()) / 1e9
		if l.Result != ReloadOK && l.Result != ReloadUnchanged {
			ok = 0
		}
	}
	ch <- prometheus.MustNewConstMetric(descReloadAt, prometheus.GaugeValue, at)
	ch <- prometheus.MustNewConstMetric(descReloadOK, prometheus.GaugeValue, ok)
}
