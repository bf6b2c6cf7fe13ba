package seal

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/weirgw/weir/merkle"
)

// Verifier recomputes one gateway's Merkle log from the records it is
// given and checks every seal against it: the signature chain from the
// registered key, the root, the declared evictions. Records may come in
// any order (critical ones, seals among them, travel ahead of the
// backlog); a seal's root is checked once every leaf before it is known.
// The first failure stops the checks of that log: everything after it is
// unproven. Not safe for concurrent use.
type Verifier struct {
	gateway    string
	key        ed25519.PublicKey // the key of epoch `epoch`
	epoch      uint64            // the epoch the next seal must close
	registered bool              // key came from provisioning, not from the first seal
	// The keys registered for the gateway, one per provisioning, oldest
	// first, and the one whose chain is in force: a seal of epoch 0 that
	// verifies with a later one begins a new chain (re-provisioned).
	regs    []ed25519.PublicKey
	reg     int
	lastSig uint64 // sequence of the newest seal whose signature verified
	newLogs []NewLog

	first    uint64 // sequence of the log's leaf 0; 0 until a seal said
	tree     merkle.Frontier
	pending  map[uint64]*leaf
	passed   map[uint64]int // missing sequences the backlog has passed: seals seen since
	failure  *Failure
	stats    Stats
	lastSeal uint64 // sequence of the newest seal whose root matched
	lastHead Head
	maxSeq   uint64 // highest sequence given
	// Seals of a later epoch than the one due, waiting for it (by epoch).
	parked map[uint64]parkedSeal
	// maxPending bounds the leaves kept out of order (0: no bound); past
	// it the verifier gives up on this log, saying why, without a
	// failure: it no longer holds what checking it needs.
	maxPending int
	gaveUp     string
}

// Limit bounds the records a verifier keeps waiting for the records
// before them (or, before the first seal, for a seal to say where the log
// begins): a gateway that never seals, or a collector started in the
// middle of a log, would otherwise grow it without end.
func (v *Verifier) Limit(n int) { v.maxPending = n }

// GaveUp says why the verifier stopped checking without a failure ("" while
// it checks).
func (v *Verifier) GaveUp() string { return v.gaveUp }

type parkedSeal struct {
	seq uint64
	b   []byte
}

// maxParked bounds the seals kept waiting for an earlier epoch's.
const maxParked = 64

type leaf struct {
	hash     merkle.Hash
	have     bool  // the record itself was received
	declared bool  // a verified seal declared it evicted
	head     *Head // a seal record whose signature verified
}

// Failure is where a gateway's log stops being proven.
type Failure struct {
	Gateway string `json:"gateway"`
	Epoch   uint64 `json:"epoch"` // the epoch whose seal failed, or the next one due
	Seq     uint64 `json:"seq"`   // the first sequence that fails
	// Upto, when above Seq, says the failure lies somewhere in Seq..Upto:
	// a root that does not match names the span since the last good seal.
	Upto   uint64 `json:"upto,omitempty"`
	Reason string `json:"reason"`
}

func (f *Failure) Error() string {
	where := fmt.Sprintf("sequence %d", f.Seq)
	if f.Upto > f.Seq {
		where = fmt.Sprintf("sequences %d..%d", f.Seq, f.Upto)
	}
	return fmt.Sprintf("gateway %s, epoch %d: log fails at %s: %s", f.Gateway, f.Epoch, where, f.Reason)
}

// NewLog is a chain of seals begun by a later registered key: the gateway
// was provisioned again.
type NewLog struct {
	// Seq is the first record no seal of the earlier chain covers: from
	// here the new chain alone proves the log.
	Seq     uint64 `json:"seq"`
	SealSeq uint64 `json:"seal_seq"` // the new chain's first seal
	Key     int    `json:"key"`      // which registered key, 1 for the first
	Keys    int    `json:"keys"`     // of how many
	Reason  string `json:"reason"`   // as the seal gives it
}

func (n NewLog) String() string {
	return fmt.Sprintf("new log started at sequence %d (re-provisioned: registered key %d of %d, first seal at %d: %s)",
		n.Seq, n.Key, n.Keys, n.SealSeq, n.Reason)
}

// Stats count what a Verifier proved.
type Stats struct {
	Records  uint64 `json:"records"`  // records given
	Proven   uint64 `json:"proven"`   // leaves under a seal whose root matched
	Declared uint64 `json:"declared"` // of those, evicted or expired by the gateway's policy, declared
	Seals    uint64 `json:"seals"`    // seals whose signature and root both verified
	Logs     uint64 `json:"logs"`     // logs begun (a new spool begins a new log)
	Before   uint64 `json:"before"`   // records before the first seal's log (not provable)
}

// GapSeals is how many seals must arrive after the backlog passed a
// missing record, without declaring it, before the live check calls it
// removed: an eviction is declared in the first seal made after it, and
// the seal in flight when the backlog passed may predate it.
const GapSeals = 2

// NewVerifier starts the check of gateway's log. pub is the key it was
// provisioned with (epoch 0); nil trusts the first seal's chain as it
// comes (reported as unregistered).
func NewVerifier(gateway string, pub ed25519.PublicKey) *Verifier {
	if pub == nil {
		return NewVerifierKeys(gateway)
	}
	return NewVerifierKeys(gateway, pub)
}

// NewVerifierKeys starts the check of gateway's log with every key it
// was registered with, in the order it was provisioned: each begins a
// chain of its own, in that order (a gateway provisioned again begins a
// new log). None trusts the first seal's chain as it comes.
func NewVerifierKeys(gateway string, keys ...ed25519.PublicKey) *Verifier {
	v := &Verifier{gateway: gateway, pending: map[uint64]*leaf{}, passed: map[uint64]int{}, parked: map[uint64]parkedSeal{}}
	v.AddKeys(keys)
	return v
}

// AddKeys gives the verifier the gateway's registered keys as the
// registry holds them now (oldest first): a key registered since it
// began, by a provisioning while the collector ran, is taken. A shorter
// list changes nothing.
func (v *Verifier) AddKeys(keys []ed25519.PublicKey) {
	if len(keys) <= len(v.regs) {
		return
	}
	v.regs = append(v.regs[:0:0], keys...)
	if !v.registered && v.epoch == 0 && v.first == 0 && v.failure == nil {
		v.key, v.registered, v.reg = v.regs[0], true, 0
	}
}

// NewLogs lists the chains begun by a later registered key.
func (v *Verifier) NewLogs() []NewLog { return v.newLogs }

// laterKey returns the index of a registered key after the one in force
// that signed st, or -1.
func (v *Verifier) laterKey(st, sig []byte) int {
	for i := v.reg + 1; i < len(v.regs); i++ {
		if ed25519.Verify(v.regs[i], st, sig) {
			return i
		}
	}
	return -1
}

// Registered says whether the chain starts at a provisioned key.
func (v *Verifier) Registered() bool { return v.registered }

// Failure is the first failure, nil while the log holds.
func (v *Verifier) Failure() *Failure { return v.failure }

// Stats returns the counts so far.
func (v *Verifier) Stats() Stats { return v.stats }

// Epoch is the epoch of the next seal due.
func (v *Verifier) Epoch() uint64 { return v.epoch }

// Head is the newest seal whose root matched, and its sequence (0: none).
func (v *Verifier) Head() (Head, uint64) { return v.lastHead, v.lastSeal }

func (v *Verifier) fail(seq, upto uint64, epoch uint64, format string, a ...any) {
	if v.failure == nil {
		v.failure = &Failure{Gateway: v.gateway, Epoch: epoch, Seq: seq, Upto: upto, Reason: fmt.Sprintf(format, a...)}
	}
}

// Add gives the verifier one record: its sequence, its leaf hash
// (merkle.RecordLeaf over the bytes the gateway spooled) and, for a seal
// record, the seal's bytes. It returns the failure if this record made
// the log fail.
func (v *Verifier) Add(seq uint64, h merkle.Hash, sealBytes []byte) *Failure {
	if v.failure != nil || v.gaveUp != "" {
		return nil
	}
	if v.maxPending > 0 && len(v.pending) >= v.maxPending {
		if v.first == 0 {
			v.gaveUp = fmt.Sprintf("%d records and no seal yet: the gateway does not seal, or this check began in the middle of its log", len(v.pending))
		} else {
			v.gaveUp = fmt.Sprintf("%d records wait for sequence %d, which never came", len(v.pending), v.first+v.tree.Size())
		}
		v.pending, v.passed, v.parked = map[uint64]*leaf{}, map[uint64]int{}, map[uint64]parkedSeal{}
		return nil
	}
	v.stats.Records++
	v.maxSeq = max(v.maxSeq, seq)
	if v.first != 0 && seq < v.first+v.tree.Size() {
		// Below the frontier: already a leaf. The same record again is a
		// resend; anything else was changed.
		v.fail(seq, 0, v.epoch, "a record arrived again with other contents, below the part of the log already built")
		return v.failure
	}
	l := v.pending[seq]
	if l == nil {
		l = &leaf{}
		v.pending[seq] = l
	}
	switch {
	case l.have && l.hash == h:
		v.stats.Records--
		return nil // a duplicate
	case l.have:
		v.fail(seq, 0, v.epoch, "two different records with the same sequence")
		return v.failure
	case l.declared && l.hash != h:
		v.fail(seq, 0, v.epoch, "the record differs from the leaf its seal declared evicted")
		return v.failure
	}
	l.hash, l.have = h, true
	if sealBytes != nil {
		v.seal(seq, l, sealBytes)
		// A seal of an epoch that was waiting for this one.
		for v.failure == nil {
			p, ok := v.parked[v.epoch]
			if !ok {
				break
			}
			delete(v.parked, v.epoch)
			v.seal(p.seq, v.pending[p.seq], p.b)
		}
	}
	v.advance(false)
	return v.failure
}

// seal checks a seal's signature chain as it arrives; its root waits for
// the leaves before it.
func (v *Verifier) seal(seq uint64, l *leaf, b []byte) {
	h, st, sig, err := Parse(b)
	if err != nil {
		v.fail(seq, 0, v.epoch, "%v", err)
		return
	}
	if h.Gateway != v.gateway {
		v.fail(seq, 0, v.epoch, "seal names gateway %q", h.Gateway)
		return
	}
	switch {
	case v.key == nil && v.epoch == 0:
		// Nothing registered: the first seal is taken on trust (its
		// signature cannot be checked); its successors' can.
		v.epoch = h.Epoch
	case h.Epoch == 0 && h.Began != "" && (v.epoch != 0 || !ed25519.Verify(v.key, st, sig)):
		// The first seal of a chain, not the one in force: a later
		// registered key (the gateway provisioned again) may begin a new
		// chain, never an earlier one, nor a key not registered.
		i := v.laterKey(st, sig)
		if i < 0 {
			if v.epoch != 0 {
				v.fail(seq, 0, v.epoch, "seal of epoch 0 where epoch %d is due, signed by no key registered after the one in force (replayed or forged)", v.epoch)
			} else {
				v.fail(seq, 0, v.epoch, "seal's signature does not verify with the key of epoch %d", v.epoch)
			}
			return
		}
		from := h.First
		if v.lastSig != 0 {
			from = v.lastSig + 1
		}
		v.newLogs = append(v.newLogs, NewLog{Seq: from, SealSeq: seq, Key: i + 1, Keys: len(v.regs), Reason: h.Began})
		// The old chain's seals still waiting for an earlier epoch can no
		// longer come in order.
		v.parked = map[uint64]parkedSeal{}
		v.reg, v.key, v.epoch = i, v.regs[i], 0
	default:
		if h.Epoch > v.epoch && len(v.parked) < maxParked {
			// Seals travel in order, but a resend after a restart may
			// bring a later one first: it waits for its predecessors.
			v.parked[h.Epoch] = parkedSeal{seq, b}
			return
		}
		if h.Epoch != v.epoch {
			v.fail(seq, 0, v.epoch, "seal of epoch %d where epoch %d is due (replayed or forged)", h.Epoch, v.epoch)
			return
		}
		if !ed25519.Verify(v.key, st, sig) {
			v.fail(seq, 0, v.epoch, "seal's signature does not verify with the key of epoch %d", v.epoch)
			return
		}
	}
	if h.First+h.Size != seq {
		v.fail(seq, 0, h.Epoch, "seal covers the log up to %d but is record %d", h.First+h.Size-1, seq)
		return
	}
	v.key, v.epoch = h.NextKey, h.Epoch+1
	v.lastSig = seq
	switch {
	case v.first == 0:
		v.begin(h.First)
	case h.First != v.first:
		if h.Began == "" {
			v.fail(seq, 0, h.Epoch, "seal says the log began at %d, not %d, and gives no reason", h.First, v.first)
			return
		}
		if h.First < v.first+v.tree.Size() {
			v.fail(seq, 0, h.Epoch, "a new log begins at %d, inside the old one", h.First)
			return
		}
		v.begin(h.First)
	}
	for _, d := range h.Evicted {
		if d.Seq < h.First || d.Seq >= seq {
			v.fail(seq, 0, h.Epoch, "seal declares %d evicted, outside the log it covers", d.Seq)
			return
		}
		if d.Seq < v.first+v.tree.Size() {
			continue // a leaf already: a record that came before it was evicted
		}
		e := v.pending[d.Seq]
		if e == nil {
			e = &leaf{}
			v.pending[d.Seq] = e
		}
		if e.have && e.hash != d.Leaf {
			v.fail(d.Seq, 0, h.Epoch, "record differs from the leaf the seal of epoch %d declares evicted", h.Epoch)
			return
		}
		if !e.declared {
			v.stats.Declared++
		}
		e.hash, e.declared = d.Leaf, true
		delete(v.passed, d.Seq)
	}
	l.head = &h
	if len(h.Evicted) < MaxDeclared {
		// A full seal may leave evictions to the next one: it does not
		// count against a missing record.
		for q := range v.passed {
			v.passed[q]++
		}
	}
}

// begin starts a log at first: what was pending below it is not part of
// any log this verifier can prove.
func (v *Verifier) begin(first uint64) {
	v.first, v.tree = first, merkle.Frontier{}
	v.stats.Logs++
	for q, l := range v.pending {
		if q < first {
			if l.have {
				v.stats.Before++
			}
			delete(v.pending, q)
		}
	}
}

// Passed tells the verifier that the gateway's backlog has gone past
// seq: every record below it not yet received was read past at the
// gateway (evicted, expired or lost). Live, the collector calls it with
// each batch's first sequence; a missing record still undeclared after
// GapSeals more seals is a failure.
func (v *Verifier) Passed(seq uint64) {
	if v.first == 0 || v.failure != nil {
		return
	}
	// Bounded: a gap wider than this is looked at again from its start
	// at each batch.
	for q, n := v.first+v.tree.Size(), 0; q < seq && n < 4096 && len(v.passed) < 4096; q, n = q+1, n+1 {
		if l := v.pending[q]; l == nil || (!l.have && !l.declared) {
			if _, ok := v.passed[q]; !ok {
				v.passed[q] = 0
			}
		}
	}
	v.advance(false)
}

// Finish ends an offline check: a record still missing below a seal was
// removed, and is the failure.
func (v *Verifier) Finish() *Failure {
	v.advance(true)
	return v.failure
}

// Expect says the gateway is known (from its status, a SIEM's copy of
// its seals, the collector's live state) to have sealed up to epoch
// due-1: if the records given end before that seal, they were cut, and
// the first sequence after the last one given fails.
func (v *Verifier) Expect(due uint64) *Failure {
	v.advance(true)
	if v.failure == nil && v.epoch < due {
		v.fail(v.maxSeq+1, 0, v.epoch, "records end before the seal of epoch %d, which the gateway made: the tail was cut", due-1)
	}
	return v.failure
}

// advance appends every known leaf in order, checking each seal's root
// as its own record is reached.
func (v *Verifier) advance(final bool) {
	if v.first == 0 {
		return
	}
	for v.failure == nil {
		q := v.first + v.tree.Size()
		l := v.pending[q]
		if l == nil || (!l.have && !l.declared) {
			if n, ok := v.passed[q]; ok && n >= GapSeals {
				v.fail(q, 0, v.epoch, "record missing and not declared evicted by %d seals since the backlog passed it", n)
			} else if final && v.sealAbove(q) {
				v.fail(q, 0, v.epoch, "record missing and not declared evicted by any seal")
			}
			return
		}
		if l.head != nil {
			if l.head.Size != v.tree.Size() || l.head.Root != v.tree.Root() {
				// The span since the last good seal, its own record
				// included (only its seal bytes were checked, not the
				// rest of the record).
				from := v.first
				if v.lastSeal != 0 {
					from = v.lastSeal
				}
				v.fail(from, q-1, l.head.Epoch, "root of the seal of epoch %d does not match the records: one of them was changed, removed, inserted or moved", l.head.Epoch)
				return
			}
			v.stats.Seals++
			v.stats.Proven = v.tree.Size()
			v.lastSeal, v.lastHead = q, *l.head
		}
		v.tree.Append(l.hash)
		delete(v.pending, q)
		delete(v.passed, q)
	}
}

// sealAbove says whether a verified seal waits above q.
func (v *Verifier) sealAbove(q uint64) bool {
	for s, l := range v.pending {
		if s > q && l.head != nil {
			return true
		}
	}
	return false
}

// Unsealed is the records received after the last seal that verified:
// not yet proven (a live log's tail, or a log that ended without one).
func (v *Verifier) Unsealed() uint64 {
	n := uint64(0)
	if v.first != 0 {
		n = v.first + v.tree.Size() - v.lastSealOr()
	}
	for _, l := range v.pending {
		if l.have {
			n++
		}
	}
	return n
}

func (v *Verifier) lastSealOr() uint64 {
	if v.lastSeal >= v.first && v.lastSeal != 0 {
		return v.lastSeal
	}
	return v.first
}

// Keys returns the verifier's place in the key chain: the epoch due and
// its public key, for a proof or a saved state.
func (v *Verifier) Keys() (uint64, ed25519.PublicKey) { return v.epoch, bytes.Clone(v.key) }
