package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/seal"
	"github.com/weirgw/weir/spool"
)

// sealSource is the spool checkpoint committed with each seal: the epoch
// it closed, the next epoch's public key, the eviction log's next number
// and the first sequence of the log it sealed. With it a restart knows
// whether the epoch's key must still be erased (seal.OpenKeys) and which
// evictions are declared.
const sealSource = "weir:seal"

// sealer makes the seals: every seal_interval, every seal_records
// records, and at a clean shutdown. Each is a record built from
// the spool's tree head just before it (spool.Spool.AppendHead), signed
// with the epoch's key, which is erased once the seal is spooled.
type sealer struct {
	g       *Gateway
	every   time.Duration
	records uint64

	mu       sync.Mutex // one seal at a time; guards the fields below
	keys     *seal.Keys
	evFrom   uint64 // first eviction not yet declared
	logFirst uint64 // first sequence of the log the last seal covered (0: none yet)
	lastSeq  uint64 // sequence of the last seal spooled
	base     uint64 // tree size when the last seal was made (or at start)
	last     seal.Head
	made     uint64 // seals spooled since start
	newChain bool   // the key began a new chain at start; the next seal says so
	failed   uint64
}

// sealKeyDir is where the seal key lives: seal_key_dir; else the folder
// `weir-collector pki issue-gateway` wrote beside the uplink's key
// (<id>.seal), when it holds a key; else <data_dir>/seal.
func sealKeyDir(cfg *Config, dataDir string) string {
	if cfg.SealKeyDir != "" {
		return cfg.SealKeyDir
	}
	if k := cfg.Uplink.TLS.Key; k != "" {
		d := filepath.Join(filepath.Dir(k), cfg.Gateway.ID+".seal")
		if _, err := os.Stat(filepath.Join(d, "key")); err == nil {
			return d
		}
	}
	return filepath.Join(dataDir, "seal")
}

type sealPosition struct {
	epoch    uint64
	next     ed25519.PublicKey
	evNext   uint64
	logFirst uint64
}

func (p sealPosition) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, p.epoch)
	b = append(b, p.next...)
	b = binary.BigEndian.AppendUint64(b, p.evNext)
	return binary.BigEndian.AppendUint64(b, p.logFirst)
}

func decodeSealPosition(b []byte) (sealPosition, error) {
	if len(b) != 8+ed25519.PublicKeySize+16 {
		return sealPosition{}, fmt.Errorf("seal checkpoint of %d bytes", len(b))
	}
	return sealPosition{epoch: binary.BigEndian.Uint64(b), next: ed25519.PublicKey(b[8 : 8+ed25519.PublicKeySize]),
		evNext: binary.BigEndian.Uint64(b[8+ed25519.PublicKeySize:]), logFirst: binary.BigEndian.Uint64(b[16+ed25519.PublicKeySize:])}, nil
}

// openSealer opens the key (provisioning one when the directory holds
// none, logged with its public key for registration) and finishes an
// epoch a kill interrupted.
func openSealer(g *Gateway, dataDir string) (*sealer, error) {
	dir := sealKeyDir(&g.cfg, dataDir)
	if _, err := os.Stat(filepath.Join(dir, "key")); errors.Is(err, fs.ErrNotExist) {
		pub, err := seal.Provision(dir)
		if err != nil {
			return nil, fmt.Errorf("seal_key_dir: %w", err)
		}
		g.log.Warn("no seal key was provisioned: one was made here; register its public key at the collector, or seals are checked from the first one on trust",
			"seal_key_dir", dir, "public_key", fmt.Sprintf("%x", pub))
	}
	pos, err := g.spool.Checkpoint(sealSource)
	if err != nil {
		return nil, fmt.Errorf("gateway: seal checkpoint: %w", err)
	}
	s := &sealer{g: g, every: g.cfg.SealInterval, records: uint64(g.cfg.SealRecords)}
	var p sealPosition
	if pos != nil {
		if p, err = decodeSealPosition(pos); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	s.keys, err = seal.OpenKeys(dir, p.epoch, p.next, pos != nil)
	if errors.Is(err, seal.ErrNewChain) {
		// Provisioned again: the seals begin a new chain from this key,
		// and say so. A collector still holding the old chain's key
		// reports it, as it must for a key someone put back.
		g.log.Warn("the seal key does not continue the spool's seals: a new log of seals begins with it; its first seal says so, and the collector accepts it once the key is registered after the old one (pki issue-gateway --force)",
			"seal_key_dir", dir, "err", err)
		s.keys, err = seal.OpenKeys(dir, 0, nil, false)
		p.logFirst = 0 // the next seal says why
		s.newChain = true
	}
	if err != nil {
		return nil, fmt.Errorf("seal_key_dir: %w", err)
	}
	s.evFrom, s.logFirst = p.evNext, p.logFirst
	s.base = g.spool.Tree().Size
	return s, nil
}

// run seals on its schedule until ctx ends.
func (s *sealer) run(ctx context.Context) error {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		wake := s.g.spool.Appended()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.sealWithin(ctx, "interval")
		case <-wake:
			if s.records == 0 {
				continue
			}
			h := s.g.spool.Tree()
			s.mu.Lock()
			due := h.Size >= s.base+s.records
			s.mu.Unlock()
			if due {
				s.sealWithin(ctx, "records")
				t.Reset(s.every)
			}
		}
	}
}

// sealWithin is seal with a bound: a spool with no room holds the seal,
// and the sealer must not hold its lock (weir status) meanwhile.
func (s *sealer) sealWithin(ctx context.Context, why string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s.seal(ctx, why)
}

// seal makes one seal, unless nothing happened since the last one, and
// more while evictions wait to be declared (at most seal.MaxDeclared a
// seal).
func (s *sealer) seal(ctx context.Context, why string) {
	err := s.sealOnce(ctx)
	// A full seal may have left evictions, and a seal on a full spool
	// evicts a record or two itself (as critical): declared by the next
	// seal, chased twice, not more (each seal there evicts again).
	for i := 0; err == nil && i < 100 && (s.lastFull() || i < 2) && s.evictionsWaiting(); i++ {
		err = s.sealOnce(ctx)
	}
	if err != nil && !errors.Is(ctx.Err(), context.Canceled) {
		s.mu.Lock()
		s.failed++
		s.mu.Unlock()
		s.g.log.Error("seal not made", "why", why, "err", err)
	}
}

func (s *sealer) lastFull() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.last.Evicted) >= seal.MaxDeclared
}

func (s *sealer) evictionsWaiting() bool {
	s.mu.Lock()
	from := s.evFrom
	s.mu.Unlock()
	return s.g.spool.EvictionsNext() > from
}

func (s *sealer) sealOnce(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.g.spool
	th := sp.Tree()
	evs, err := sp.Evictions(s.evFrom, seal.MaxDeclared)
	if err != nil {
		return err
	}
	if th.Size == 0 || (len(evs) == 0 && th.First == s.logFirst && th.Last() == s.lastSeq) {
		return nil // nothing new: the last record is the last seal
	}
	next, err := s.keys.Prepare()
	if err != nil {
		return err
	}
	now, q := s.g.clock.Now()
	epoch := s.keys.Epoch()
	// The seal declares the eviction log as it stands just before its
	// record (its own admission may evict on a full spool), as much of it
	// as the reserve holds; the rest waits for the next seal.
	const extra = 64 // evictions the seal's own admission may add
	reserve := 2048 + 40*(len(evs)+extra)
	maxEv := min(seal.MaxDeclared, len(evs)+extra)
	var head seal.Head
	evNext := s.evFrom
	cps := []spool.Checkpoint{{Source: sealSource}}
	build := func(th spool.TreeHead) ([]byte, error) {
		evs := th.Evicted
		evNext = s.evFrom
		if len(evs) > 0 {
			evNext = evs[len(evs)-1].N + 1
		}
		head = seal.Head{Gateway: s.g.cfg.Gateway.ID, Epoch: epoch, First: th.First, Size: th.Size, Root: th.Root,
			Time: now.UnixNano(), Quality: q, NextKey: next}
		if th.First != s.logFirst {
			head.Began = th.Began
			if head.Began == "" {
				head.Began = "first seal"
			}
		}
		if s.newChain {
			head.Began = "new seal key (provisioned again)"
		}
		for _, e := range evs {
			if e.Seq >= th.First && e.Seq < th.First+th.Size {
				head.Evicted = append(head.Evicted, seal.Declared{Seq: e.Seq, Leaf: e.Leaf})
			}
		}
		b, err := seal.Sign(&head, s.keys)
		if err != nil {
			return nil, err
		}
		// The checkpoint is staged after this runs, in the same
		// transaction.
		cps[0].Position = sealPosition{epoch: epoch, next: next, evNext: evNext, logFirst: th.First}.encode()
		ev := []event.Event{seal.Event(&head, b)}
		stamp(ev, Stamp{Gateway: s.g.cfg.Gateway.ID, Host: s.g.host, Time: now, Quality: q})
		recs, err := encode(ev)
		if err != nil {
			return nil, err
		}
		return recs[0].Data, nil
	}
	// The record says it is critical, but it is spooled in the normal
	// class, in order with the backlog, unless the spool is evicting or
	// nearly full (a normal append would wait for room there, and the
	// evictions go undeclared): with seals (one every seal_records)
	// spread through a backlog in the critical class, the uplink's sending
	// ahead lost records (cmd/weir TestCorrelatedAlertJumpsTheQueue:
	// about half a 100,000-record backlog left the spool unsent).
	class := spool.ClassNormal
	if st := sp.Stats(); len(evs) > 0 || st.Used >= int64(st.MaxBytes)/10*9 {
		class = spool.ClassCritical
	}
	seq, err := sp.AppendHead(ctx, class, reserve, s.evFrom, maxEv, build, cps)
	if err != nil {
		return fmt.Errorf("gateway: spool the seal of epoch %d: %w", epoch, err)
	}
	// Spooled: the epoch's key goes before any other use.
	if err := s.keys.Advance(); err != nil {
		return err
	}
	if evNext != s.evFrom {
		if err := sp.ForgetEvictions(evNext); err != nil {
			s.g.log.Warn("declared evictions not forgotten; they are forgotten at the next seal", "err", err)
		}
	}
	s.evFrom, s.logFirst, s.lastSeq, s.last, s.base = evNext, head.First, seq, head, head.Size+1
	s.newChain = false
	s.made++
	// A seal is a record spooled like any: counted with them, so that
	// what is logged and what is shipped compare.
	s.g.appended.Add(1)
	if s.g.metrics != nil {
		s.g.metrics.seals.Inc()
		s.g.metrics.appended.WithLabelValues(seal.Source).Inc()
	}
	s.g.log.Debug("sealed", "epoch", epoch, "seq", seq, "size", head.Size, "evicted", len(head.Evicted))
	return nil
}

// SealStatus is the seal section of `weir status`.
type SealStatus struct {
	Epoch    uint64 `json:"epoch"`              // the epoch the next seal closes
	LastSeq  uint64 `json:"last_seq,omitempty"` // the last seal's record
	LogFirst uint64 `json:"log_first,omitempty"`
	Size     uint64 `json:"size,omitempty"` // leaves the last seal covered
	Root     string `json:"root,omitempty"`
	Made     uint64 `json:"made"`
	Failed   uint64 `json:"failed"`
}

func (s *sealer) status() *SealStatus {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &SealStatus{Epoch: s.keys.Epoch(), LastSeq: s.lastSeq, LogFirst: s.logFirst, Made: s.made, Failed: s.failed}
	if s.lastSeq != 0 {
		st.Size, st.Root = s.last.Size, fmt.Sprintf("%x", s.last.Root)
	}
	return st
}
