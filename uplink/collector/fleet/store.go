package fleet

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink/collector"
)

const (
	week        = 7 * 24 * time.Hour
	maxSkew     = 5 * time.Minute // how far ahead of the collector a record may be stamped and still be plotted
	metaFile    = "fleet.json"
	metaVersion = 1
)

// Options configure a Store.
type Options struct {
	// Dir keeps the store: per gateway a series file and a state file,
	// and fleet.json (what of the sink the store has taken).
	Dir string
	// Stale is how long a gateway may go without a batch written before
	// it is shown silent.
	Stale time.Duration
	// AlertWindow is how long an alert record counts as firing.
	AlertWindow time.Duration
	// MaxGateways bounds the gateways tracked; records of others are
	// counted and dropped.
	MaxGateways int
	// FlushEvery is how often open buckets and changed states are
	// written.
	FlushEvery time.Duration
	Log        *slog.Logger
	Now        func() time.Time
}

// DefaultOptions suit a head-end of a few thousand gateways.
func DefaultOptions() Options {
	return Options{Stale: DefaultStale, AlertWindow: DefaultAlertWin, MaxGateways: 10000, FlushEvery: 30 * time.Second}
}

// Validate checks the options; errors name the weir-collector flag.
func (o Options) Validate() error {
	var errs []error
	if o.Stale <= 0 {
		errs = append(errs, fmt.Errorf("ui-stale: %s must be positive", o.Stale))
	}
	if o.AlertWindow <= 0 {
		errs = append(errs, fmt.Errorf("ui-alert-window: %s must be positive", o.AlertWindow))
	}
	if o.MaxGateways < 1 {
		errs = append(errs, fmt.Errorf("ui-max-gateways: %d must be at least 1", o.MaxGateways))
	}
	return errors.Join(errs...)
}

// Position is how far into its source (a JSONL sink's bytes, a stream's
// sequence) the store has taken records.
type Position struct {
	Source string `json:"source"`
	Offset int64  `json:"offset"`
}

type meta struct {
	Version  int      `json:"version"`
	Position Position `json:"position"`
}

// Store is the fleet's state and time series, built from the records the
// collector writes. Safe for concurrent use.
type Store struct {
	opt Options
	log *slog.Logger

	// flushMu makes flushes (the ticker's, a rebuild's end, Close) one
	// at a time: two would write the same files at once.
	flushMu sync.Mutex

	mu       sync.Mutex
	gws      map[string]*gw
	sites    map[string]Site
	refused  uint64 // records of gateways past MaxGateways
	pos      Position
	replayAt *int64 // while rebuilding: the offset everything before which is taken
	replay   Replay
	full     bool              // a state was lost at open: rebuild from the start of the source
	loaded   map[string]uint64 // highest sequence each gateway's state held at open
	flushErr error
}

// Replay is the progress of a rebuild from the sink.
type Replay struct {
	Running    bool
	Done, Size int64
	Records    uint64
	Err        string
}

// Open loads the store from opt.Dir (creating it). A state file that
// does not parse is removed with its series, and the store asks for a
// rebuild from the start of the sink (NeedsRebuild).
func Open(opt Options) (*Store, error) {
	d := DefaultOptions()
	if opt.Stale <= 0 {
		opt.Stale = d.Stale
	}
	if opt.AlertWindow <= 0 {
		opt.AlertWindow = d.AlertWindow
	}
	if opt.MaxGateways < 1 {
		opt.MaxGateways = d.MaxGateways
	}
	if opt.FlushEvery <= 0 {
		opt.FlushEvery = d.FlushEvery
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	s := &Store{opt: opt, log: opt.Log, gws: map[string]*gw{}, loaded: map[string]uint64{}}
	if opt.Dir == "" {
		return nil, errors.New("fleet: store: no directory")
	}
	if err := os.MkdirAll(opt.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("fleet: store %s: %w", opt.Dir, err)
	}
	b, err := os.ReadFile(filepath.Join(opt.Dir, metaFile))
	var m meta
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.full = true
	case err != nil:
		return nil, fmt.Errorf("fleet: store %s: %w", opt.Dir, err)
	case json.Unmarshal(b, &m) != nil || m.Version != metaVersion || m.Position.Offset < 0:
		s.log.Warn("fleet store: its position does not read; rebuilding from the sink", "path", filepath.Join(opt.Dir, metaFile))
		s.full = true
	default:
		s.pos = m.Position
	}
	states, err := filepath.Glob(filepath.Join(opt.Dir, "*.state"))
	if err != nil {
		return nil, fmt.Errorf("fleet: store %s: %w", opt.Dir, err)
	}
	for _, p := range states {
		if len(s.gws) >= opt.MaxGateways {
			break
		}
		g, err := loadGW(p)
		if err == nil && g.Partial {
			err = errors.New("written while a rebuild ran")
		}
		if err != nil {
			s.log.Warn("fleet store: a gateway's state does not read; removed, rebuilding from the sink", "path", p, "err", err)
			_ = os.Remove(p)
			_ = os.Remove(strings.TrimSuffix(p, ".state") + ".series")
			s.full = true
			continue
		}
		s.gws[g.ID] = g
		s.loaded[g.ID] = g.Seq
	}
	return s, nil
}

func (s *Store) fileBase(id string) string {
	return filepath.Join(s.opt.Dir, "gw-"+hex.EncodeToString([]byte(id)))
}

func loadGW(path string) (*gw, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g := newGW("")
	if err := json.Unmarshal(b, g); err != nil {
		return nil, err
	}
	if g.ID == "" || len(g.ID) > MaxIDLen || filepath.Base(path) != "gw-"+hex.EncodeToString([]byte(g.ID))+".state" {
		return nil, errors.New("names another gateway than its file")
	}
	if len(g.Events) > maxEvents || len(g.Links) > maxLinks || len(g.Buses) > maxBuses || len(g.Latest) > maxLatest {
		return nil, errors.New("holds more than the store's bounds")
	}
	g.Links, g.Buses, g.Latest = orEmpty(g.Links), orEmpty(g.Buses), orEmpty(g.Latest)
	g.series = newSeriesSet(strings.TrimSuffix(path, ".state")+".series", g.ID)
	if err := g.series.load(); err != nil {
		// The series are a cache: start them again rather than lose the
		// gateway's state.
		_ = os.Remove(g.series.path)
		g.series = newSeriesSet(g.series.path, g.ID)
	}
	return g, nil
}

func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// NeedsRebuild returns the offset of source from which the store must
// take records again: 0 when it never saw this source or lost a state,
// else where it was at its last flush.
func (s *Store) NeedsRebuild(source string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full || s.pos.Source != source {
		return 0
	}
	return s.pos.Offset
}

// SetSites replaces the operator's site fields of the gateways.
func (s *Store) SetSites(sites map[string]Site) {
	s.mu.Lock()
	s.sites = sites
	s.mu.Unlock()
}

// Observe takes records of gateway the collector has just written (at,
// on the collector's clock). pos is where the source stands after them
// (Offset < 0: unknown).
func (s *Store) Observe(gateway string, at time.Time, evs []*event.Event, pos Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos.Offset >= 0 && pos.Source != "" {
		if pos.Source != s.pos.Source || pos.Offset > s.pos.Offset {
			s.pos = pos
		}
	}
	s.observeLocked(gateway, at.UnixNano(), evs, false)
}

func (s *Store) observeLocked(gateway string, at int64, evs []*event.Event, replay bool) {
	if gateway == collector.CollectorStream {
		for _, ev := range evs {
			if g := s.gws[str(ev, "gateway_id")]; g != nil {
				g.addEvent(Event{Time: ev.Time, Type: "collector", Severity: sevName(ev.Severity), Text: oneLine(ev.Message)})
				g.dirty = true
			}
		}
		return
	}
	g := s.gateway(gateway, len(evs))
	if g == nil {
		return
	}
	now := s.opt.Now()
	for _, ev := range evs {
		if replay && ev.Seq != 0 && ev.Seq <= s.loaded[gateway] {
			continue // in the state loaded at open already
		}
		if ev.Seq > g.Seq {
			g.Seq = ev.Seq
		}
		if ev.Kind == kindUndecodable {
			g.dirty = true
			g.Records++
			if t := time.Unix(0, ev.Time); t.After(now.Add(-week)) && !t.After(now.Add(maxSkew)) {
				g.series.sample("rate:undecodable", AggSum, t, 1)
			}
			continue
		}
		g.apply(ev, now)
	}
	if gap := time.Duration(at - g.LastAck); g.LastAck > 0 && gap > s.opt.Stale {
		// The collector's own view of an outage: nothing came for a
		// while (whatever the gateway's records say of it).
		g.addEvent(Event{Time: at, Type: "outage", Severity: "warning",
			Text: "back after " + fmtAge(gap) + " without a batch (the collector's clock)"})
	}
	if at > g.LastAck {
		g.LastAck = at
	}
	g.Dropped.Series = g.series.dropped
	g.series.release()
}

// kindUndecodable marks a record the collector kept as raw bytes.
const kindUndecodable event.Kind = 255

func (s *Store) gateway(id string, n int) *gw {
	g := s.gws[id]
	if g != nil {
		return g
	}
	if id == "" || len(id) > MaxIDLen || len(s.gws) >= s.opt.MaxGateways {
		s.refused += uint64(n)
		return nil
	}
	g = newGW(id)
	path := s.fileBase(id) + ".series"
	// A file left by a lost state is not trusted.
	_ = os.Remove(path)
	g.series = newSeriesSet(path, id)
	s.gws[id] = g
	return g
}

// Written is a collector.WriteObserver for a JSONL sink at path: it takes
// each batch the sink has just written, with the sink's size after it.
func (s *Store) Written(source string) collector.WriteObserver {
	return func(gateway string, entries []collector.Entry, end int64) {
		evs := make([]*event.Event, 0, len(entries))
		for i := range entries {
			e := &entries[i]
			if e.Event != nil {
				evs = append(evs, e.Event)
				continue
			}
			evs = append(evs, &event.Event{Seq: e.Seq, Kind: kindUndecodable, Time: time.Now().UnixNano()})
		}
		s.Observe(gateway, time.Now(), evs, Position{Source: source, Offset: end})
	}
}

// Run flushes every FlushEvery until ctx ends, then once more.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.opt.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return s.Flush()
		case <-t.C:
		}
		if err := s.Flush(); err != nil {
			s.log.Warn("fleet store: flush", "err", err)
		}
	}
}

// Flush writes open buckets, changed gateway states and the position.
// The series are written as they go; a crash loses at most what the last
// flush did not write, which the next start takes again from the sink
// (a count of records may then be taken twice for that span; a gauge
// never is).
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	type file struct {
		path string
		b    []byte
	}
	var files []file
	var errs []error
	s.mu.Lock()
	partial := s.replayAt != nil
	for _, g := range s.gws {
		if err := g.series.flush(); err != nil {
			errs = append(errs, fmt.Errorf("fleet: series of %q: %w", g.ID, err))
		}
		g.series.release()
		if !g.dirty {
			continue
		}
		g.Partial = partial
		b, err := json.Marshal(g)
		if err != nil {
			errs = append(errs, fmt.Errorf("fleet: state of %q: %w", g.ID, err))
			continue
		}
		g.dirty = false
		files = append(files, file{s.fileBase(g.ID) + ".state", b})
	}
	pos := s.pos
	if s.replayAt != nil {
		pos.Offset = *s.replayAt
	}
	s.mu.Unlock()
	for _, f := range files {
		if err := writeAtomic(f.path, f.b); err != nil {
			errs = append(errs, err)
		}
	}
	// The position last: a crash before it makes the next start take
	// again what the states hold already, never skip what they lack.
	if len(errs) == 0 && pos.Source != "" {
		b, _ := json.Marshal(meta{Version: metaVersion, Position: pos})
		if err := writeAtomic(filepath.Join(s.opt.Dir, metaFile), b); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	s.mu.Lock()
	s.flushErr = err
	if err == nil && pos.Source != "" {
		s.full = false
	}
	s.mu.Unlock()
	return err
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("fleet: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("fleet: write %s: %w", path, err)
	}
	return nil
}

// Close flushes.
func (s *Store) Close() error { return s.Flush() }

// Stats says how the store is doing, for the page's header.
type Stats struct {
	Gateways int
	Refused  uint64 // records dropped: gateways past MaxGateways
	Replay   Replay
	FlushErr string
	Stale    time.Duration
	Window   time.Duration
}

// Stats returns the store's figures.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Gateways: len(s.gws), Refused: s.refused, Replay: s.replay, Stale: s.opt.Stale, Window: s.opt.AlertWindow}
	if s.flushErr != nil {
		st.FlushErr = s.flushErr.Error()
	}
	return st
}

// Rows returns every gateway's row at the store's now, in no order.
func (s *Store) Rows() []Row {
	now := s.opt.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := make([]Row, 0, len(s.gws))
	for id, g := range s.gws {
		rows = append(rows, g.row(now, s.opt, s.sites[id]))
	}
	return rows
}

// Detail is everything the gateway page shows but its plots.
type Detail struct {
	Row     Row
	Events  []Event
	Latest  []Latest // by source
	Links   map[string]LinkState
	Buses   map[string]BusState
	Records uint64
	Dropped Dropped
}

// Detail returns gateway id's page data.
func (s *Store) Detail(id string) (Detail, bool) {
	now := s.opt.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gws[id]
	if g == nil {
		return Detail{}, false
	}
	d := Detail{Row: g.row(now, s.opt, s.sites[id]), Events: append([]Event(nil), g.Events...), Records: g.Records, Dropped: g.Dropped,
		Links: map[string]LinkState{}, Buses: map[string]BusState{}}
	for _, l := range g.Latest {
		c := *l
		c.Fields = append([][2]string(nil), l.Fields...)
		d.Latest = append(d.Latest, c)
	}
	sort.Slice(d.Latest, func(i, j int) bool {
		if d.Latest[i].Source != d.Latest[j].Source {
			return d.Latest[i].Source < d.Latest[j].Source
		}
		return d.Latest[i].Message < d.Latest[j].Message
	})
	for k, v := range g.Links {
		d.Links[k] = *v
	}
	for k, v := range g.Buses {
		d.Buses[k] = *v
	}
	return d, true
}

// Range is a window the gateway page plots.
type Range int

const (
	Hour Range = iota
	Day
	Week
)

// ParseRange maps hour, day and week to a Range.
func ParseRange(s string) (Range, bool) {
	switch s {
	case "", "hour":
		return Hour, true
	case "day":
		return Day, true
	case "week":
		return Week, true
	}
	return 0, false
}

func (r Range) String() string { return [...]string{"hour", "day", "week"}[r] }

// Duration is the span of the range.
func (r Range) Duration() time.Duration {
	return [...]time.Duration{time.Hour, 24 * time.Hour, week}[r]
}

// Series returns every series of gateway id over r, ending now, by name.
func (s *Store) Series(id string, r Range) ([]Points, error) {
	now := s.opt.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gws[id]
	if g == nil {
		return nil, nil
	}
	defer g.series.release()
	ti := 0
	if r == Week {
		ti = 1
	}
	w := int64(tiers[ti].width)
	n := int64(r.Duration()) / w
	end := now.UnixNano() / w
	var out []Points
	var errs []error
	for i := range g.series.names {
		p, err := g.series.read(i, ti, end, n)
		if err != nil {
			errs = append(errs, fmt.Errorf("fleet: read series %q of %q: %w", g.series.names[i], id, err))
			continue
		}
		if p.Agg == AggSum {
			for k, v := range p.Values {
				p.Values[k] = v / p.Step.Seconds() // counts per bucket → per second
			}
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errors.Join(errs...)
}

// HasData reports whether p holds any value.
func (p Points) HasData() bool {
	for _, v := range p.Values {
		if !math.IsNaN(v) {
			return true
		}
	}
	return false
}
