package collector

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/seal"
	"github.com/weirgw/weir/uplink/pki"
)

// SealCheck verifies every gateway's Merkle log as its records arrive
// (seal.Verifier): the signature chain from the key registered at
// provisioning, each seal's root, the declared evictions. A failure is
// logged, counted and stored as a critical record of the collector's own,
// naming the gateway, the epoch and the first sequence that fails; the
// gateway's log is then unproven until it begins a new one. A collector
// rebuilds the check from its sink at start (LoadSink).
type SealCheck struct {
	keys string // directory of <gateway>.pub (hex Ed25519), "" for none
	log  *slog.Logger

	mu   sync.Mutex
	gws  map[string]*seal.Verifier
	told map[string]bool // failure reported
	// The registry file's modification time when last read, per
	// gateway: a provisioning while the collector runs adds a key.
	keyTimes map[string]time.Time

	failures *prometheus.CounterVec
	seals    *prometheus.GaugeVec

	// share keeps the check's state with the gateways' resume state, for
	// collectors sharing a head-end (nil: this collector alone).
	share    SealShare
	streamAt map[string]uint64 // highest stream position observed, per gateway
}

// SealShare is where collectors sharing a head-end keep each gateway's
// live check beside its resume state (the JetStream sink's bucket): a
// collector taking a gateway over goes on from the saved state and the
// records stored after it, instead of raising a false alarm over the
// records another collector received, or starting blind in the middle of
// the log.
type SealShare interface {
	// SealStale says whether the shared state may have moved on since
	// this check last loaded it (another collector wrote the gateway's
	// state), or it was never loaded.
	SealStale(gateway string) bool
	// LoadSeal gives restore the saved state (nil: none), then feed every
	// record of the gateway stored after it, in the stream's order, with
	// its position.
	LoadSeal(gateway string, restore func(state []byte, streamSeq uint64) error, feed func(sr SinkRecord, streamSeq uint64)) error
	// SaveSeal keeps state, valid for every record up to streamSeq, to be
	// stored with the gateway's next resume state.
	SaveSeal(gateway string, state []byte, streamSeq uint64)
}

// Share keeps the check's state in s (call before any Observe).
func (c *SealCheck) Share(s SealShare) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.share = s
}

// loadShared rebuilds gateway's verifier from the shared state and the
// records stored after it.
func (c *SealCheck) loadShared(gateway string) *seal.Verifier {
	keys, err := ReadSealKeys(c.keys, gateway)
	if err != nil {
		c.log.Error("seal key unreadable", "gateway", gateway, "err", err)
	}
	c.keyTimes[gateway] = c.keyTime(gateway)
	v := seal.NewVerifierKeys(gateway, keys...)
	var at uint64
	err = c.share.LoadSeal(gateway, func(state []byte, streamSeq uint64) error {
		at = streamSeq
		if state == nil {
			return nil
		}
		r, err := seal.RestoreVerifier(state, keys)
		if err != nil {
			return err
		}
		v = r
		return nil
	}, func(sr SinkRecord, streamSeq uint64) {
		at = max(at, streamSeq)
		if sr.Gateway != gateway || sr.Record == nil || (v.Next() != 0 && sr.Seq < v.Next()) {
			return // in the saved state already
		}
		v.Add(sr.Seq, sr.Leaf, sr.Seal)
	})
	if err != nil {
		c.log.Error("the shared seal check state does not load; this check begins from what it gets", "gateway", gateway, "err", err)
	}
	v.Limit(MaxSealPending)
	c.gws[gateway] = v
	c.streamAt[gateway] = at
	return v
}

// MaxSealPending bounds the records the live check keeps per gateway
// out of order (about 100 bytes each): a gateway sends records ahead of a
// gap only while its backlog drains, and seals within seal_records.
const MaxSealPending = 200_000

// SealKeyFile is the registry of gateway id's seal keys in a key
// directory: one hex Ed25519 public key a line, the first seal key of
// each provisioning, oldest first.
func SealKeyFile(dir, id string) string { return filepath.Join(dir, id+".pub") }

// RegisterSealKey adds a gateway's first seal key to its registry in
// dir, after the keys of earlier provisionings: a gateway provisioned
// again begins a new log, and its old one still verifies with the old
// key. The same key again is not added twice.
func RegisterSealKey(dir, id string, pub ed25519.PublicKey) error {
	if err := pki.ValidateID(id); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("collector: seal keys %s: %w", dir, err)
	}
	keys, err := ReadSealKeys(dir, id)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Equal(pub) {
			return nil
		}
	}
	path := SealKeyFile(dir, id)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("collector: register the seal key of %s: %w", id, err)
	}
	_, err = f.WriteString(hex.EncodeToString(pub) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("collector: register the seal key of %s in %s: %w", id, path, err)
	}
	return nil
}

// ReadSealKeys reads a gateway's registered keys, oldest first; nil, nil
// when none is.
func ReadSealKeys(dir, id string) ([]ed25519.PublicKey, error) {
	if dir == "" || pki.ValidateID(id) != nil {
		return nil, nil
	}
	b, err := os.ReadFile(SealKeyFile(dir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("collector: seal key of %s: %w", id, err)
	}
	return ParseSealKeys(b, SealKeyFile(dir, id))
}

// ParseSealKeys reads a registry's lines (hex keys; blank lines and
// lines beginning with # are skipped); name is said in errors.
func ParseSealKeys(b []byte, name string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := hex.DecodeString(line)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("collector: seal key registry %s line %d: not %d bytes of hex", name, i+1, ed25519.PublicKeySize)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// NewSealCheck checks logs against the keys registered in keysDir.
func NewSealCheck(keysDir string, log *slog.Logger) *SealCheck {
	if log == nil {
		log = slog.Default()
	}
	return &SealCheck{keys: keysDir, log: log, gws: map[string]*seal.Verifier{}, told: map[string]bool{}, keyTimes: map[string]time.Time{}, streamAt: map[string]uint64{},
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_collector_seal_failures_total",
			Help: "Gateways' Merkle logs found not to match their seals (a record changed, removed or inserted, a seal forged), by gateway."},
			[]string{"gateway"}),
		seals: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_collector_seals_verified",
			Help: "Seals whose signature and root verified since the collector started, by gateway."}, []string{"gateway"})}
}

// Collectors are the check's metrics.
func (c *SealCheck) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.failures, c.seals}
}

func (c *SealCheck) verifier(gateway string) *seal.Verifier {
	v := c.gws[gateway]
	if c.share != nil && (v == nil || c.share.SealStale(gateway)) {
		return c.loadShared(gateway)
	}
	if v == nil {
		keys, err := ReadSealKeys(c.keys, gateway)
		if err != nil {
			c.log.Error("seal key unreadable; the gateway's first seal is taken on trust", "gateway", gateway, "err", err)
		}
		if keys == nil && c.keys != "" {
			c.log.Warn("no seal key registered for the gateway; its first seal is taken on trust", "gateway", gateway)
		}
		c.keyTimes[gateway] = c.keyTime(gateway)
		v = seal.NewVerifierKeys(gateway, keys...)
		v.Limit(MaxSealPending)
		c.gws[gateway] = v
		return v
	}
	// A key registered since (the gateway provisioned again while the
	// collector runs): one stat a batch.
	if t := c.keyTime(gateway); !t.Equal(c.keyTimes[gateway]) {
		c.keyTimes[gateway] = t
		keys, err := ReadSealKeys(c.keys, gateway)
		if err != nil {
			c.log.Error("seal key registry unreadable; the keys read before stay", "gateway", gateway, "err", err)
		} else {
			v.AddKeys(keys)
		}
	}
	return v
}

func (c *SealCheck) keyTime(gateway string) time.Time {
	if c.keys == "" || pki.ValidateID(gateway) != nil {
		return time.Time{}
	}
	fi, err := os.Stat(SealKeyFile(c.keys, gateway))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// LoadSink rebuilds the check from a JSONL sink, before any session.
func (c *SealCheck) LoadSink(r io.Reader) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return scanSink(r, false, func(sr SinkRecord) error {
		if sr.Gateway == "" || sr.Record == nil {
			return nil
		}
		c.verifier(sr.Gateway).Add(sr.Seq, sr.Leaf, sr.Seal)
		return nil
	})
}

// Observe feeds a batch the sink wrote and returns the failures it made.
// passed is the lowest sequence of the batch's records that were not
// critical: the gateway's backlog had gone past every record below it.
func (c *SealCheck) Observe(gateway string, entries []Entry) []*seal.Failure {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.verifier(gateway)
	c.feed(v, gateway, entries)
	f := v.Failure()
	if f != nil && !c.told[gateway] && c.share != nil {
		// Before an alarm on a shared head-end: another collector may
		// have taken the gateway meanwhile; the stream says.
		v = c.loadShared(gateway)
		f = v.Failure()
	}
	c.seals.WithLabelValues(gateway).Set(float64(v.Stats().Seals))
	if c.share != nil {
		if st, ok := v.State(); ok {
			c.share.SaveSeal(gateway, st, c.streamAt[gateway])
		}
	}
	if f == nil || c.told[gateway] {
		return nil
	}
	c.told[gateway] = true
	c.failures.WithLabelValues(gateway).Inc()
	return []*seal.Failure{f}
}

func (c *SealCheck) feed(v *seal.Verifier, gateway string, entries []Entry) {
	var passed uint64
	at := c.streamAt[gateway]
	for i := range entries {
		e := &entries[i]
		if e.Record == nil {
			continue
		}
		if c.share != nil {
			if e.StreamSeq != 0 && e.StreamSeq <= at {
				continue // read back from the stream when the check loaded
			}
			if e.StreamSeq == 0 && v.Next() != 0 && e.Seq < v.Next() {
				// Held already (the stream's duplicate): the stream's
				// copy is the one in the log.
				continue
			}
		}
		c.streamAt[gateway] = max(c.streamAt[gateway], e.StreamSeq)
		var sb []byte
		if e.Event != nil {
			sb, _ = seal.FromEvent(e.Event)
			if e.Event.Priority != event.PriorityCritical && (passed == 0 || e.Seq < passed) {
				passed = e.Seq
			}
		}
		v.Add(e.Seq, e.Leaf, sb)
	}
	if passed != 0 {
		v.Passed(passed)
	}
}

// SealState is one gateway's line in the check's status.
type SealState struct {
	Gateway    string     `json:"gateway"`
	Registered bool       `json:"registered"` // the chain starts at a provisioned key
	Epoch      uint64     `json:"epoch"`      // the next seal due
	Stats      seal.Stats `json:"stats"`
	Unsealed   uint64     `json:"unsealed"` // records after the last seal that verified
	// The newest seal whose signature and root verified: its epoch, the
	// tree size it states and its own sequence (0: none yet).
	LastEpoch uint64        `json:"last_epoch"`
	LastSize  uint64        `json:"last_tree_size"`
	LastSeq   uint64        `json:"last_seal_seq,omitempty"`
	Failure   *seal.Failure `json:"failure,omitempty"`
	GaveUp    string        `json:"gave_up,omitempty"` // why the check stopped without a failure
	// NewLogs are chains begun by a later registered key: the gateway
	// was provisioned again.
	NewLogs []seal.NewLog `json:"new_logs,omitempty"`
}

// String is the gateway's line in `weir-collector status`.
func (s SealState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d seals checked", s.Stats.Seals)
	if s.LastSeq != 0 {
		fmt.Fprintf(&b, ", last verified epoch %d (tree size %d, seal at sequence %d)", s.LastEpoch, s.LastSize, s.LastSeq)
	} else {
		b.WriteString(", none verified yet")
	}
	fmt.Fprintf(&b, ", %d records not yet under a seal", s.Unsealed)
	if !s.Registered {
		b.WriteString(", no registered key (first seal taken on trust)")
	}
	for _, n := range s.NewLogs {
		b.WriteString("; " + n.String())
	}
	switch {
	case s.Failure != nil:
		fmt.Fprintf(&b, "; FAILED from sequence %d: %s", s.Failure.Seq, s.Failure.Reason)
		if s.Failure.Upto > s.Failure.Seq {
			fmt.Fprintf(&b, " (somewhere in %d..%d)", s.Failure.Seq, s.Failure.Upto)
		}
		fmt.Fprintf(&b, " [epoch %d]", s.Failure.Epoch)
	case s.GaveUp != "":
		b.WriteString("; check stopped: " + s.GaveUp)
	default:
		b.WriteString("; ok")
	}
	return b.String()
}

// Status lists every gateway's state, failed ones first.
func (c *SealCheck) Status() []SealState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]SealState, 0, len(c.gws))
	for id, v := range c.gws {
		h, seq := v.Head()
		st := SealState{Gateway: id, Registered: v.Registered(), Epoch: v.Epoch(), Stats: v.Stats(),
			Unsealed: v.Unsealed(), Failure: v.Failure(), GaveUp: v.GaveUp(), NewLogs: v.NewLogs()}
		if seq != 0 {
			st.LastEpoch, st.LastSize, st.LastSeq = h.Epoch, h.Size, seq
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Failure != nil) != (out[j].Failure != nil) {
			return out[i].Failure != nil
		}
		return out[i].Gateway < out[j].Gateway
	})
	return out
}

// Line is gateway's line in `weir-collector status` and whether its log
// failed; ok false when the check has not seen the gateway.
func (c *SealCheck) Line(gateway string) (line string, failed, ok bool) {
	for _, st := range c.Status() {
		if st.Gateway == gateway {
			return st.String(), st.Failure != nil, true
		}
	}
	return "", false, false
}

// failureEvent is the collector's critical record of a failed log.
func failureEvent(f *seal.Failure) *event.Event {
	return &event.Event{
		Time: time.Now().UnixNano(), Quality: event.Quality{Source: event.TimeSystem, ErrorBound: -1},
		Source: "weir-collector", Kind: event.KindAlert, Severity: event.SevCritical, Priority: event.PriorityCritical,
		Message: "tamper-evident log: " + f.Error(),
		Fields: []event.Field{
			event.Str("gateway_id", f.Gateway),
			event.Uint("epoch", f.Epoch),
			event.Uint("first_failing_seq", f.Seq),
			event.Uint("failing_upto_seq", max(f.Upto, f.Seq)),
			event.Str("reason", f.Reason),
		},
	}
}
