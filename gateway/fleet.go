package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
	"github.com/weirgw/weir/uplink/sender"
)

// FleetResult is what came of one bundle.
type FleetResult struct {
	Version  uint64    `json:"version,omitempty"`
	Result   string    `json:"result,omitempty"` // uplink.ConfigApplied, ConfigRefused, ConfigRolledBack, ConfigApplying
	Error    string    `json:"error,omitempty"`
	At       time.Time `json:"at,omitzero"`
	Endpoint string    `json:"endpoint,omitempty"` // the collector it came from
}

// FleetStatus is remote configuration as `weir status` shows it.
type FleetStatus struct {
	Enabled bool     `json:"enabled"`
	Keys    []string `json:"keys,omitempty"` // ids of the keys pinned
	// Applied is the bundle in force (0: the local file alone), signed
	// by KeyID; Highest the newest version taken (none at or below it is
	// taken again).
	Applied uint64       `json:"applied"`
	KeyID   string       `json:"key_id,omitempty"`
	Highest uint64       `json:"highest"`
	Last    *FleetResult `json:"last,omitempty"`
}

// fleetState is state.json: the newest version taken and what came of
// the last bundle. The bundle files are the truth of what is in force;
// this only adds what they cannot say.
type fleetState struct {
	Highest uint64      `json:"highest"`
	Last    FleetResult `json:"last"`
}

// fleetSeen bounds the bundles whose refusal is remembered, so a
// collector offering the same one again and again is answered without
// pulling it and reported once.
const fleetSeen = 16

// fleetAgent applies the bundles the uplink pulls: one at a time,
// checked whole, staged on disk, applied live through Reload, then
// checked for health and kept, or rolled back. It is the sender's Fleet.
type fleetAgent struct {
	g   *Gateway
	dir string
	log *slog.Logger

	// applyMu is held through an apply, its health check and its commit
	// or rollback; a SIGHUP (Gateway.ReloadFrom) waits for it, so it
	// reads the bundle in force as it is.
	applyMu sync.Mutex
	inbox   chan fleetItem

	mu       sync.Mutex
	st       fleetState
	inForce  *FleetBundle
	changed  chan struct{}
	refused  []uplink.Digest
	bootNote bool // st.Last happened while the gateway was down: reported at start
}

// fleetItem is a bundle pulled, or an offer refused without pulling.
type fleetItem struct {
	raw      []byte
	version  uint64
	refusal  string
	endpoint string
}

var _ sender.Fleet = (*fleetAgent)(nil)

// newFleetAgent opens <data_dir>/fleet and settles what an earlier run
// left: a bundle staged and never committed (the gateway stopped, or
// lost power, while applying it) is dropped and reported as rolled back;
// the configuration in force is the one LoadInForce chose.
func newFleetAgent(g *Gateway, dir string, inForce *FleetBundle) (*fleetAgent, error) {
	if err := os.MkdirAll(dir, fleetDirMode); err != nil {
		return nil, fmt.Errorf("gateway: fleet directory: %w", err)
	}
	if err := os.Chmod(dir, fleetDirMode); err != nil {
		return nil, fmt.Errorf("gateway: fleet directory: %w", err)
	}
	a := &fleetAgent{g: g, dir: dir, log: g.log.With("part", "fleet"), inbox: make(chan fleetItem, 8),
		changed: make(chan struct{}), inForce: inForce}
	if b, err := os.ReadFile(filepath.Join(dir, fleetStateFile)); err == nil {
		if err := json.Unmarshal(b, &a.st); err != nil {
			a.log.Warn("fleet state unreadable; versions are taken from the bundles alone", "err", err)
			a.st = fleetState{}
		}
	}
	if inForce != nil {
		a.st.Highest = max(a.st.Highest, inForce.Version)
	}
	if v := bundleVersion(filepath.Join(dir, fleetCurrentFile)); v > a.st.Highest {
		a.st.Highest = v
	}
	staged := filepath.Join(dir, fleetStagedFile)
	interrupted := a.st.Last.Result == uplink.ConfigApplying
	if _, err := os.Stat(staged); err == nil {
		v := bundleVersion(staged)
		a.st.Highest = max(a.st.Highest, v)
		if !interrupted || a.st.Last.Version == 0 {
			a.st.Last = FleetResult{Version: v}
		}
		interrupted = true
		if err := removeDurable(staged); err != nil {
			return nil, fmt.Errorf("gateway: fleet: drop %s: %w", staged, err)
		}
	}
	if interrupted {
		if inForce != nil && inForce.Version == a.st.Last.Version {
			// Committed, and stopped before the state said so.
			a.st.Last.Result, a.st.Last.Error = uplink.ConfigApplied, ""
		} else {
			a.st.Last.Result = uplink.ConfigRolledBack
			a.st.Last.Error = "interrupted: the gateway stopped while applying it (a kill or a power loss); it started on the configuration before it"
			a.st.Highest = max(a.st.Highest, a.st.Last.Version)
		}
		a.st.Last.At = time.Now().UTC()
		a.bootNote = true
		if err := a.save(); err != nil {
			return nil, err
		}
	}
	// Temporary files of a write that never finished.
	if tmps, err := filepath.Glob(filepath.Join(dir, ".*.tmp*")); err == nil {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	return a, nil
}

// bundleVersion is the version a bundle file says, unverified (0 if it
// cannot be read): only to keep versions from going back.
func bundleVersion(path string) uint64 {
	raw, err := readBundleFile(path)
	if err != nil {
		return 0
	}
	s, err := pki.ParseSigned(raw)
	if err != nil {
		return 0
	}
	b, err := pki.ParseBundle(s.Body)
	if err != nil {
		return 0
	}
	return b.Version
}

// save writes state.json; the caller holds mu or runs alone.
func (a *fleetAgent) save() error {
	b, _ := json.MarshalIndent(a.st, "", "  ")
	if err := writeDurable(filepath.Join(a.dir, fleetStateFile), append(b, '\n')); err != nil {
		return fmt.Errorf("gateway: fleet state: %w", err)
	}
	return nil
}

// ConfigStatus is what the sender reports to each collector.
func (a *fleetAgent) ConfigStatus() uplink.ConfigStatus {
	labels := a.g.now().cfg.Fleet.labels()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := uplink.ConfigStatus{Highest: a.st.Highest, Version: a.st.Last.Version, Result: a.st.Last.Result,
		Error: clipText(a.st.Last.Error, 1000), Labels: labels}
	if a.inForce != nil {
		st.Applied = a.inForce.Version
	}
	return st
}

// Changed is closed at the next change of ConfigStatus.
func (a *fleetAgent) Changed() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}

// Offered decides whether to pull an offer. What the offer alone shows
// wrong (remote configuration off, too large, not newer) is refused
// and reported without pulling; a bundle refused before is not pulled
// again.
func (a *fleetAgent) Offered(o uplink.ConfigOffer, endpoint string) bool {
	on := a.g.now().cfg.Fleet.Enabled()
	a.mu.Lock()
	defer a.mu.Unlock()
	if slices.Contains(a.refused, o.Digest) {
		return false
	}
	var why string
	switch {
	case !on:
		why = "remote configuration is off on this gateway (fleet.keys is empty)"
	case o.Size > uplink.MaxBundleBytes:
		why = fmt.Sprintf("the bundle is %d bytes, over the %d-byte limit", o.Size, uplink.MaxBundleBytes)
	case a.st.Last.Result == uplink.ConfigApplying && a.st.Last.Version == o.Version:
		return false // being applied: the offer came again on a new session
	case a.st.Last.Result == uplink.ConfigRolledBack && a.st.Last.Version == o.Version:
		// Rolled back: the collector, still wanting it, offers it again
		// on the session the rollback reconnected; the rollback reported
		// must not be overwritten by a refusal of the same bundle.
		return false
	case o.Version <= a.st.Highest:
		why = fmt.Sprintf("version %d is not newer than %d, the newest this gateway has taken", o.Version, a.st.Highest)
	default:
		return true
	}
	a.remember(o.Digest)
	a.post(fleetItem{version: o.Version, refusal: why, endpoint: endpoint})
	return false
}

// Pulled queues a bundle pulled; it never blocks.
func (a *fleetAgent) Pulled(b uplink.ConfigBundle, endpoint string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.post(fleetItem{raw: b.Bundle, version: b.Version, endpoint: endpoint})
}

// post queues it under mu; a full queue (a collector pushing faster
// than bundles apply) drops it, and the next offer brings it again.
func (a *fleetAgent) post(it fleetItem) {
	select {
	case a.inbox <- it:
	default:
		a.log.Warn("fleet: a bundle arrived while others wait; dropped, the collector offers it again", "version", it.version)
	}
}

// remember notes a refused bundle; the caller holds mu.
func (a *fleetAgent) remember(d uplink.Digest) {
	if len(a.refused) == fleetSeen {
		a.refused = a.refused[1:]
	}
	a.refused = append(a.refused, d)
}

// status is remote configuration for `weir status`.
func (a *fleetAgent) status() *FleetStatus {
	cfg := a.g.now().cfg.Fleet
	a.mu.Lock()
	defer a.mu.Unlock()
	st := &FleetStatus{Enabled: cfg.Enabled(), Highest: a.st.Highest}
	for _, k := range cfg.publicKeys() {
		st.Keys = append(st.Keys, pki.FleetKeyID(k))
	}
	if a.inForce != nil {
		st.Applied, st.KeyID = a.inForce.Version, a.inForce.KeyID
	}
	if a.st.Last.Result != "" {
		last := a.st.Last
		st.Last = &last
	}
	return st
}

// run applies what arrives until ctx is done; first it reports what
// the gateway started on.
func (a *fleetAgent) run(ctx context.Context) error {
	a.mu.Lock()
	boot := a.bootNote
	a.mu.Unlock()
	if boot || a.inForce != nil {
		a.record(ctx, "started")
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case it := <-a.inbox:
			if it.refusal != "" {
				a.finish(ctx, FleetResult{Version: it.version, Result: uplink.ConfigRefused, Error: it.refusal, Endpoint: it.endpoint}, false)
				continue
			}
			a.apply(ctx, it)
		}
	}
}

// refuse ends a bundle that was not applied; spend says the version is
// used up (a signed bundle for this gateway that could not be taken).
func (a *fleetAgent) refuse(ctx context.Context, it fleetItem, version uint64, err error, spend bool) {
	a.mu.Lock()
	a.remember(uplink.DigestOf(it.raw))
	a.mu.Unlock()
	a.finish(ctx, FleetResult{Version: version, Result: uplink.ConfigRefused, Error: oneLine(err), Endpoint: it.endpoint}, spend)
}

// apply takes one bundle through every step (docs/ARCHITECTURE.md,
// "Fleet configuration").
func (a *fleetAgent) apply(ctx context.Context, it fleetItem) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.mu.Lock()
	seen := slices.Contains(a.refused, uplink.DigestOf(it.raw))
	highest := a.st.Highest
	a.mu.Unlock()
	if seen {
		return
	}
	g := a.g
	// 1. Check everything: the file as it is on disk now (the next boot
	// reads it), the signature, the version, the target, what the bundle
	// sets and the whole configuration it makes.
	local, err := Load(g.cfgFile, g.cfgFile != "")
	if err != nil {
		a.refuse(ctx, it, it.version, fmt.Errorf("the local file does not load: %w", err), false)
		return
	}
	if !local.Fleet.Enabled() {
		a.refuse(ctx, it, it.version, errors.New("remote configuration is off on this gateway (fleet.keys is empty)"), false)
		return
	}
	b, keyID, err := pki.OpenBundle(it.raw, local.Fleet.publicKeys())
	if err != nil {
		// Nothing of a bundle that does not open can be trusted, its
		// version included: the one reported is the collector's.
		a.refuse(ctx, it, it.version, err, false)
		return
	}
	if b.Version <= highest {
		a.refuse(ctx, it, b.Version, fmt.Errorf("version %d is not newer than %d, the newest this gateway has taken", b.Version, highest), false)
		return
	}
	if !b.Target.Matches(local.Gateway.ID, local.Fleet.Labels) {
		a.refuse(ctx, it, b.Version, fmt.Errorf("targeted at %s, %w (%s)", b.Target, errNotForUs, describeGateway(local)), false)
		return
	}
	next, err := mergeOpened(g.cfgFile, g.cfgFile != "", local, b, keyID, it.raw)
	if err != nil {
		a.refuse(ctx, it, b.Version, err, true)
		return
	}
	prev := g.now().cfg
	a.setApplying(b.Version, it.endpoint)

	// 2. Stage it: whatever happens from here, the disk says the bundle
	// was being applied and current.bundle is still the one before.
	staged := filepath.Join(a.dir, fleetStagedFile)
	if err := writeDurable(staged, it.raw); err != nil {
		a.finish(ctx, FleetResult{Version: b.Version, Result: uplink.ConfigRefused, Endpoint: it.endpoint,
			Error: fmt.Sprintf("could not stage it: %v", err)}, false)
		return
	}
	a.log.Info("fleet bundle staged; applying", "version", b.Version, "key", keyID, "from", it.endpoint)

	// 3. Apply it live.
	source := fmt.Sprintf(fleetBundleSource+" (key %s, from %s)", b.Version, keyID, it.endpoint)
	res := g.Reload(ctx, next.Config, source)
	switch res.Result {
	case ReloadRefused:
		a.drop(staged)
		a.finish(ctx, FleetResult{Version: b.Version, Result: uplink.ConfigRefused, Error: res.Error, Endpoint: it.endpoint}, true)
		return
	case ReloadFailed:
		a.drop(staged)
		a.finish(ctx, FleetResult{Version: b.Version, Result: uplink.ConfigRolledBack, Endpoint: it.endpoint,
			Error: "no part could take it: " + res.Error}, true)
		return
	case ReloadPartial:
		a.rollBack(ctx, prev, b.Version, it.endpoint, "some parts could not take it: "+res.Error)
		return
	}

	// 4. Check it: the uplink delivers a record spooled after the
	// apply, and every source runs.
	if err := a.healthy(ctx, b.Version, next.Fleet.HealthTimeout); err != nil {
		a.rollBack(ctx, prev, b.Version, it.endpoint, err.Error())
		return
	}

	// 5. Keep it: the rename is the instant the next boot takes it.
	if err := renameDurable(staged, filepath.Join(a.dir, fleetCurrentFile)); err != nil {
		a.rollBack(ctx, prev, b.Version, it.endpoint, fmt.Sprintf("could not keep it on disk: %v", err))
		return
	}
	a.mu.Lock()
	a.inForce = next.Bundle
	a.mu.Unlock()
	a.finish(ctx, FleetResult{Version: b.Version, Result: uplink.ConfigApplied, Endpoint: it.endpoint}, true)
}

// setApplying says a bundle is being applied (to the collectors too).
func (a *fleetAgent) setApplying(v uint64, endpoint string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.Last = FleetResult{Version: v, Result: uplink.ConfigApplying, At: time.Now().UTC(), Endpoint: endpoint}
	if err := a.save(); err != nil {
		a.log.Warn("fleet state not saved", "err", err)
	}
	a.signal()
}

// signal wakes the sessions to report again; the caller holds mu.
func (a *fleetAgent) signal() {
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *fleetAgent) drop(staged string) {
	if err := removeDurable(staged); err != nil {
		a.log.Error("fleet: staged bundle not removed; the next start drops it", "err", err)
	}
}

// rollBack puts the configuration before the bundle back in force.
func (a *fleetAgent) rollBack(ctx context.Context, prev Config, version uint64, endpoint, why string) {
	a.log.Error("fleet bundle failed; rolling back", "version", version, "why", why)
	res := a.g.Reload(ctx, prev, fmt.Sprintf("fleet rollback from bundle v%d", version))
	if res.Result != ReloadOK && res.Result != ReloadUnchanged {
		// The staged file stays: the next start drops it and boots
		// into the bundle before, whole.
		why += fmt.Sprintf("; the rollback itself was %s: %s (the next start runs the configuration before it)", res.Result, res.Error)
		a.log.Error("fleet rollback incomplete", "version", version, "result", res.Result, "err", res.Error)
	} else {
		a.drop(filepath.Join(a.dir, fleetStagedFile))
	}
	a.finish(ctx, FleetResult{Version: version, Result: uplink.ConfigRolledBack, Error: why, Endpoint: endpoint}, true)
}

// healthy waits until a record spooled now is acknowledged by a
// collector and every source of the pipeline runs, for at most timeout.
func (a *fleetAgent) healthy(ctx context.Context, version uint64, timeout time.Duration) error {
	g := a.g
	deadline := time.Now().Add(timeout)
	ev := event.Event{Source: "weir:fleet", Kind: event.KindTelemetry, Severity: event.SevInfo, Priority: event.PriorityNormal,
		Message: fmt.Sprintf("configuration bundle v%d applied; checking that the uplink delivers and the sources run", version),
		Fields:  []event.Field{event.Uint("bundle_version", version), event.Str("check", "health")}}
	// Spooled past the processors: a chain that drops telemetry must not
	// fail every bundle's health check.
	seq, err := g.spoolEvents(ctx, []event.Event{ev}, nil)
	if err != nil {
		return fmt.Errorf("the health check's record was not spooled: %w", err)
	}
	_, stall := g.healthTimings()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		p := g.now()
		var problems []string
		if p.sender == nil {
			problems = append(problems, "no uplink")
		} else if st := p.sender.Status(); st.State != sender.StateConnected || st.LastAckSeq < seq {
			what := fmt.Sprintf("the uplink did not deliver a record within %s (%s", timeout, st.State)
			if st.LastError != "" {
				what += ": " + st.LastError
			}
			problems = append(problems, what+")")
		}
		problems = append(problems, g.sourcesDown(p, time.Now(), stall)...)
		if len(problems) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New(strings.Join(problems, "; "))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the gateway stopped during the health check")
		case <-t.C:
		}
	}
}

// sourcesDown lists the sources of p that are not running, or stuck by
// their own measure.
func (g *Gateway) sourcesDown(p *pipeline, now time.Time, stall time.Duration) []string {
	want := map[string]bool{}
	for _, pt := range p.parts {
		if pt.health != "" {
			want[pt.health] = false
		}
	}
	var out []string
	for _, h := range g.sources.snapshot() {
		if _, ok := want[h.name]; !ok || !h.alive.Load() {
			continue
		}
		want[h.name] = true
		if h.check != nil {
			if why := h.check(now, stall); why != "" {
				out = append(out, why)
			}
		}
	}
	for name, up := range want {
		if !up {
			out = append(out, "source "+name+" is not running")
		}
	}
	slices.Sort(out)
	return out
}

// finish records what came of a bundle: state.json, the collectors (the
// next ConfigStatus), the log and a telemetry record.
func (a *fleetAgent) finish(ctx context.Context, r FleetResult, spend bool) {
	r.At = time.Now().UTC()
	a.mu.Lock()
	if spend {
		a.st.Highest = max(a.st.Highest, r.Version)
	}
	a.st.Last = r
	if err := a.save(); err != nil {
		a.log.Warn("fleet state not saved", "err", err)
	}
	a.signal()
	a.mu.Unlock()
	switch r.Result {
	case uplink.ConfigApplied:
		a.log.Info("fleet bundle applied", "version", r.Version, "from", r.Endpoint)
	default:
		a.log.Error("fleet bundle "+r.Result, "version", r.Version, "from", r.Endpoint, "why", r.Error)
	}
	a.record(ctx, "")
}

// record spools the weir:fleet telemetry record of the state now, with
// the fields the fleet page reads: config_version (the bundle in force,
// 0 for the local file alone), config_result and config_error (of the
// last bundle, whose version is bundle_version).
func (a *fleetAgent) record(ctx context.Context, note string) {
	a.mu.Lock()
	last, st := a.st.Last, a.st
	var applied uint64
	if a.inForce != nil {
		applied = a.inForce.Version
	}
	a.mu.Unlock()
	result := last.Result
	if result == "" {
		result = uplink.ConfigApplied
	}
	ev := event.Event{Source: "weir:fleet", Kind: event.KindTelemetry, Severity: event.SevNotice, Priority: event.PriorityNormal,
		Fields: []event.Field{event.Uint("config_version", applied), event.Str("config_result", result),
			event.Uint("bundle_version", last.Version), event.Uint("highest_version", st.Highest)}}
	if last.Error != "" {
		ev.Fields = append(ev.Fields, event.Str("config_error", last.Error))
	}
	if last.Endpoint != "" {
		ev.Fields = append(ev.Fields, event.Str("endpoint", last.Endpoint))
	}
	switch {
	case note != "" && result == uplink.ConfigApplied:
		ev.Message = fmt.Sprintf("configuration: fleet bundle v%d in force", applied)
	case result == uplink.ConfigApplied:
		ev.Message = fmt.Sprintf("configuration: fleet bundle v%d applied", last.Version)
	default:
		ev.Severity, ev.Priority = event.SevWarning, event.PriorityCritical
		ev.Message = fmt.Sprintf("configuration: fleet bundle v%d %s (v%d in force): %s", last.Version, result, applied, last.Error)
	}
	if note != "" {
		ev.Fields = append(ev.Fields, event.Str("when", note))
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := a.g.Emit(ectx, []event.Event{ev}, nil); err != nil {
		a.log.Warn("fleet record not spooled", "err", err)
	}
}

// settle takes the configuration a SIGHUP put in force: its bundle
// (nil: the file alone) is the one in force from now on.
func (a *fleetAgent) settle(b *FleetBundle) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if (a.inForce == nil) == (b == nil) && (b == nil || a.inForce.Digest == b.Digest) {
		return
	}
	a.inForce = b
	a.signal()
}

// ReloadFrom reads the configuration with load and puts it in force, as
// SIGHUP does; load is LoadInForce, so the bundle in force stays merged
// over the file. It waits until a bundle being applied is kept or rolled
// back, so what load reads of the bundle in force is what runs. A
// configuration that does not load is refused and reported
// (RefuseReload). source says who asked ("SIGHUP").
func (g *Gateway) ReloadFrom(ctx context.Context, source string, load func() (*Loaded, error)) ReloadResult {
	if err := g.awaitRunning(ctx); err != nil {
		return ReloadResult{At: time.Now(), Source: source, Result: ReloadRefused, Error: err.Error()}
	}
	g.fleet.applyMu.Lock()
	defer g.fleet.applyMu.Unlock()
	l, err := load()
	if err != nil {
		return g.RefuseReload(ctx, source, err)
	}
	for _, w := range l.Warnings {
		g.log.Warn(w)
	}
	res := g.Reload(ctx, l.Config, source+" "+l.Source())
	if res.Result != ReloadRefused && res.Result != ReloadFailed {
		g.fleet.settle(l.Bundle)
	}
	return res
}
