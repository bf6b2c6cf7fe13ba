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
	return &SealCheck{keys: keysDir, log: log, gws: map[string]*seal.Verifier{}, told: map[string]bool{}, keyTimes: map[string]time.Time{},
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
	var passed uint64
	for i := range entries {
		e := &entries[i]
		if e.Record == nil {
			continue
		}
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
	c.seals.WithLabelValues(gateway).Set(float64(v.Stats().Seals))
	f := v.Failure()
	if f == nil || c.told[gateway] {
		return nil
	}
	c.told[gateway] = true
	c.failures.WithLabelValues(gateway).Inc()
	return []*seal.Failure{f}
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
