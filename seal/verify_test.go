package seal

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/merkle"
)

// sim is a gateway in miniature: records, a Merkle log, seals with
// evolving keys, evictions declared.
type sim struct {
	t       *testing.T
	keys    *Keys
	pub     []byte
	first   uint64
	tree    merkle.Frontier
	recs    []rec
	evicted []Declared
	sealAt  []int // indexes of seal records in recs
	began   string
}

type rec struct {
	seq  uint64
	data []byte
	seal []byte
}

func newSim(t *testing.T) *sim {
	k, pub := testKeys(t)
	return &sim{t: t, keys: k, pub: pub, first: 1_000_000}
}

func (s *sim) next() uint64 { return s.first + s.tree.Size() }

func (s *sim) record(data string) {
	seq := s.next()
	s.recs = append(s.recs, rec{seq: seq, data: []byte(data)})
	s.tree.Append(merkle.RecordLeaf(seq, []byte(data)))
}

func (s *sim) seal() {
	next, err := s.keys.Prepare()
	require.NoError(s.t, err)
	h := Head{Gateway: "gw-1", Epoch: s.keys.Epoch(), First: s.first, Size: s.tree.Size(), Root: s.tree.Root(),
		NextKey: next, Evicted: s.evicted}
	if len(s.sealAt) == 0 {
		h.Began = "new spool"
	}
	if s.began != "" {
		h.Began, s.began = s.began, ""
	}
	b, err := Sign(&h, s.keys)
	require.NoError(s.t, err)
	require.NoError(s.t, s.keys.Advance())
	seq := s.next()
	s.sealAt = append(s.sealAt, len(s.recs))
	s.recs = append(s.recs, rec{seq: seq, data: b, seal: b})
	s.tree.Append(merkle.RecordLeaf(seq, b))
	s.evicted = nil
}

// evict drops record i as the spool's policy would, declaring it.
func (s *sim) evict(i int) {
	r := s.recs[i]
	s.evicted = append(s.evicted, Declared{Seq: r.seq, Leaf: merkle.RecordLeaf(r.seq, r.data)})
	s.recs[i].data = nil
}

func (s *sim) run(recs []rec) (*Verifier, *Failure) {
	v := NewVerifier("gw-1", s.pub)
	for _, r := range recs {
		if r.data == nil {
			continue
		}
		v.Add(r.seq, merkle.RecordLeaf(r.seq, r.data), r.seal)
	}
	return v, v.Finish()
}

func build(t *testing.T) *sim {
	s := newSim(t)
	for e := range 5 {
		for i := range 10 {
			s.record(fmt.Sprintf("epoch %d record %d", e, i))
		}
		s.seal()
	}
	return s
}

func clone(recs []rec) []rec { return append([]rec(nil), recs...) }

func TestVerifierControl(t *testing.T) {
	s := build(t)
	v, f := s.run(s.recs)
	require.Nil(t, f)
	st := v.Stats()
	require.Equal(t, uint64(5), st.Seals)
	require.Equal(t, uint64(s.recs[s.sealAt[4]].seq-s.first), st.Proven)
	require.Equal(t, uint64(5), v.Epoch())
	// Out of order, as critical records ahead of the backlog: the same.
	rev := clone(s.recs)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	_, f = s.run(rev)
	require.Nil(t, f)
}

func TestVerifierDeclaredEviction(t *testing.T) {
	s := newSim(t)
	for i := range 10 {
		s.record(fmt.Sprint(i))
	}
	s.seal()
	for i := range 10 {
		s.record(fmt.Sprint(i))
	}
	s.evict(3)  // sealed already: declared in the next seal
	s.evict(13) // not yet sealed
	s.seal()
	v, f := s.run(s.recs)
	require.Nil(t, f)
	require.Equal(t, uint64(2), v.Stats().Declared)
}

func TestVerifierTampering(t *testing.T) {
	s := build(t)
	seqOf := func(i int) uint64 { return s.recs[i].seq }
	cases := []struct {
		name   string
		tamper func(r []rec) []rec
		seq    uint64 // the exact first failing sequence, or
		within [2]uint64
	}{
		{"record changed", func(r []rec) []rec { r[23].data = []byte("changed"); return r }, 0, [2]uint64{seqOf(s.sealAt[1]), seqOf(s.sealAt[2]) - 1}},
		{"record deleted", func(r []rec) []rec { return append(r[:17:17], r[18:]...) }, seqOf(17), [2]uint64{}},
		{"record inserted (a sequence used twice)", func(r []rec) []rec {
			return append(r[:30:30], append([]rec{{seq: seqOf(29), data: []byte("inserted")}}, r[30:]...)...)
		}, seqOf(29), [2]uint64{}},
		{"two records swapped", func(r []rec) []rec {
			r[40].data, r[41].data = r[41].data, r[40].data
			return r
		}, 0, [2]uint64{seqOf(s.sealAt[2]), seqOf(s.sealAt[3]) - 1}},
		{"seal replayed from an earlier epoch", func(r []rec) []rec {
			r[s.sealAt[3]].data, r[s.sealAt[3]].seal = r[s.sealAt[1]].data, r[s.sealAt[1]].seal
			return r
		}, seqOf(s.sealAt[3]), [2]uint64{}},
		{"record evicted and not declared", func(r []rec) []rec { r[45].data = nil; return r }, seqOf(45), [2]uint64{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, f := s.run(c.tamper(clone(s.recs)))
			require.NotNil(t, f, "tampering not detected")
			t.Log(f)
			require.Equal(t, "gw-1", f.Gateway)
			if c.seq != 0 {
				require.Equal(t, c.seq, f.Seq, f.Error())
				return
			}
			require.Equal(t, c.within[0], f.Seq, f.Error())
			require.Equal(t, c.within[1], f.Upto, f.Error())
		})
	}
}

// A thief holding the gateway's current key forges a seal of an earlier
// epoch: its signature cannot verify with that epoch's key.
func TestVerifierForgedEarlierEpoch(t *testing.T) {
	s := build(t)
	target := s.sealAt[2]
	old, _, _, err := Parse(s.recs[target].seal)
	require.NoError(t, err)
	forged := old
	forged.Evicted = []Declared{{Seq: s.recs[25].seq, Leaf: merkle.RecordLeaf(s.recs[25].seq, s.recs[25].data)}}
	st, err := forged.statement()
	require.NoError(t, err)
	b := append(st, s.keys.Sign(st)...) // the current epoch's key
	recs := clone(s.recs)
	recs[target].data, recs[target].seal = b, b
	recs[25].data = nil // what the forgery hides
	v, f := s.run(recs)
	require.NotNil(t, f)
	require.Equal(t, s.recs[target].seq, f.Seq, f.Error())
	require.Equal(t, uint64(2), f.Epoch)
	require.Contains(t, f.Reason, "signature")
	require.Equal(t, uint64(2), v.Stats().Seals)
}

func TestVerifierTruncatedTail(t *testing.T) {
	s := build(t)
	cut := s.sealAt[3] - 4 // seals 3 and 4 and the records before them gone
	v, f := s.run(clone(s.recs[:cut]))
	require.Nil(t, f, "a cut tail alone is not visible from what is left")
	require.Equal(t, uint64(3), v.Epoch())
	f = v.Expect(5)
	require.NotNil(t, f)
	require.Equal(t, s.recs[cut].seq, f.Seq, f.Error())
}

// Live, the backlog passing a missing record makes it fail once enough
// seals came without declaring it; a declared one never fails.
func TestVerifierLiveGap(t *testing.T) {
	s := build(t)
	v := NewVerifier("gw-1", s.pub)
	missing := s.recs[12].seq
	for i, r := range s.recs {
		if i == 12 {
			continue
		}
		v.Add(r.seq, merkle.RecordLeaf(r.seq, r.data), r.seal)
		v.Passed(r.seq)
	}
	f := v.Failure()
	require.NotNil(t, f)
	require.Equal(t, missing, f.Seq)
}

func TestProof(t *testing.T) {
	s := build(t)
	var leaves []merkle.Hash
	for _, r := range s.recs {
		leaves = append(leaves, merkle.RecordLeaf(r.seq, r.data))
	}
	target := 25 // under the seal of epoch 2
	sealIdx := s.sealAt[2]
	path, err := merkle.InclusionProof(leaves[:sealIdx], uint64(target))
	require.NoError(t, err)
	p := Proof{Version: ProofVersion, Gateway: "gw-1", Seq: s.recs[target].seq, Record: s.recs[target].data, Index: uint64(target),
		Seal: s.recs[sealIdx].seal, SealSeq: s.recs[sealIdx].seq}
	for _, h := range path {
		p.Path = append(p.Path, fmt.Sprintf("%x", h))
	}
	for _, i := range s.sealAt[:2] {
		p.Chain = append(p.Chain, s.recs[i].seal)
	}
	got, err := p.Verify(s.pub)
	require.NoError(t, err)
	require.Equal(t, uint64(2), got.Head.Epoch)

	bad := p
	bad.Record = []byte("changed")
	_, err = bad.Verify(s.pub)
	require.ErrorIs(t, err, merkle.ErrProof)
	bad = p
	bad.Chain = bad.Chain[1:]
	_, err = bad.Verify(s.pub)
	require.Error(t, err, "a chain missing a link")
	_, err = p.Verify(s.keys.Public())
	require.Error(t, err, "another key")
	bad = p
	bad.Seq++
	_, err = bad.Verify(s.pub)
	require.Error(t, err)
}

// A gateway that never seals (or a check begun mid-log) is bounded: the
// verifier gives up, with no failure.
func TestVerifierLimit(t *testing.T) {
	v := NewVerifier("gw-1", nil)
	v.Limit(100)
	for i := range 500 {
		require.Nil(t, v.Add(uint64(1000+i), merkle.LeafHash([]byte{byte(i)}), nil))
	}
	require.Contains(t, v.GaveUp(), "no seal yet")
	require.Nil(t, v.Finish())
	require.Empty(t, v.pending)
}

// FuzzProof: whatever a proof file holds, checking it never panics and
// never passes without the key's chain.
func FuzzProof(f *testing.F) {
	f.Add([]byte(`{"version":1,"gateway":"gw-1","seq":5,"record_base64":"AA==","leaf_index":0,"audit_path":["00"],"seal_base64":"V0VJUlNFQUwx","seal_seq":6,"key_chain_base64":["V0VJUlNFQUwx"]}`))
	f.Add([]byte(`{}`))
	pub := make([]byte, 32)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Proof
		if json.Unmarshal(b, &p) != nil {
			return
		}
		if _, err := p.Verify(pub); err == nil {
			t.Fatal("a proof passed with a key that signs nothing")
		}
	})
}

// reprovision gives the sim a new key, as pki issue-gateway --force does:
// its next seal begins a new chain over the same log.
func (s *sim) reprovision() []byte {
	k, pub := testKeys(s.t)
	s.keys, s.began = k, "new seal key (provisioned again)"
	return pub
}

// A gateway provisioned again: the registry holds both keys in order; the
// new chain continues the log and is reported as a new log, not a
// failure. Without the second key, with a key not registered, or with
// the keys in the wrong order, it fails at the new chain's first seal.
func TestVerifierReprovisioned(t *testing.T) {
	s := build(t)
	oldLast := s.recs[s.sealAt[4]].seq
	for i := range 7 {
		s.record(fmt.Sprintf("unsealed before the new key %d", i))
	}
	pub2 := s.reprovision()
	for e := range 3 {
		for i := range 10 {
			s.record(fmt.Sprintf("new key epoch %d record %d", e, i))
		}
		s.seal()
	}
	newFirst := s.recs[s.sealAt[5]].seq
	feed := func(v *Verifier, recs []rec) *Failure {
		for _, r := range recs {
			v.Add(r.seq, merkle.RecordLeaf(r.seq, r.data), r.seal)
		}
		return v.Finish()
	}

	v := NewVerifierKeys("gw-1", s.pub, pub2)
	require.Nil(t, feed(v, s.recs))
	require.Equal(t, []NewLog{{Seq: oldLast + 1, SealSeq: newFirst, Key: 2, Keys: 2, Reason: "new seal key (provisioned again)"}}, v.NewLogs())
	require.Equal(t, "new log started at sequence "+fmt.Sprint(oldLast+1)+" (re-provisioned: registered key 2 of 2, first seal at "+
		fmt.Sprint(newFirst)+": new seal key (provisioned again))", v.NewLogs()[0].String())
	require.Equal(t, uint64(8), v.Stats().Seals)
	require.Equal(t, uint64(3), v.Epoch())

	// Live, the second key registered while the check runs.
	v = NewVerifierKeys("gw-1", s.pub)
	for i, r := range s.recs {
		if i == s.sealAt[5] {
			v.AddKeys([]ed25519.PublicKey{s.pub, pub2})
		}
		v.Add(r.seq, merkle.RecordLeaf(r.seq, r.data), r.seal)
	}
	require.Nil(t, v.Finish())
	require.Len(t, v.NewLogs(), 1)

	_, stranger := testKeys(t)
	for name, keys := range map[string][]ed25519.PublicKey{
		"old key only":      {s.pub},
		"a stranger's key":  {s.pub, stranger},
		"keys out of order": {pub2, s.pub},
	} {
		v := NewVerifierKeys("gw-1", keys...)
		f := feed(v, s.recs)
		require.NotNil(t, f, name)
		require.Equal(t, newFirst, f.Seq, "%s: %v", name, f)
	}

	// After the new chain, the old chain's first seal replayed: it is
	// signed by a key registered before the one in force.
	recs := clone(s.recs)
	replay := recs[s.sealAt[0]].seal
	last := recs[len(recs)-1].seq
	recs = append(recs, rec{seq: last + 1, data: replay, seal: replay})
	v = NewVerifierKeys("gw-1", s.pub, pub2)
	f := feed(v, recs)
	require.NotNil(t, f)
	require.Equal(t, last+1, f.Seq, f.Error())
}

// A verifier's saved state goes on as the verifier would: the rest of the
// log after it verifies (and fails where it should), and a state is only
// given when nothing waits out of order.
func TestVerifierState(t *testing.T) {
	s := build(t)
	cut := s.sealAt[2] + 1 // just after the third seal
	v := NewVerifierKeys("gw-1", s.pub)
	for _, r := range s.recs[:cut] {
		v.Add(r.seq, merkle.RecordLeaf(r.seq, r.data), r.seal)
	}
	b, ok := v.State()
	require.True(t, ok)
	require.Less(t, len(b), 2048)
	w, err := RestoreVerifier(b, []ed25519.PublicKey{s.pub})
	require.NoError(t, err)
	require.Equal(t, v.Stats(), w.Stats())
	require.Equal(t, v.Next(), w.Next())
	for _, r := range s.recs[cut:] {
		w.Add(r.seq, merkle.RecordLeaf(r.seq, r.data), r.seal)
	}
	require.Nil(t, w.Finish())
	require.Equal(t, uint64(5), w.Stats().Seals)

	// The rest changed: the restored verifier fails at the span.
	w, err = RestoreVerifier(b, []ed25519.PublicKey{s.pub})
	require.NoError(t, err)
	for i, r := range s.recs[cut:] {
		data := r.data
		if i == 3 {
			data = []byte("changed")
		}
		w.Add(r.seq, merkle.RecordLeaf(r.seq, data), r.seal)
	}
	f := w.Finish()
	require.NotNil(t, f)
	require.Equal(t, s.recs[s.sealAt[2]].seq, f.Seq, f.Error())

	// Out of order: no state.
	v = NewVerifierKeys("gw-1", s.pub)
	for _, r := range s.recs[:cut] {
		if r.seq != s.recs[5].seq {
			v.Add(r.seq, merkle.RecordLeaf(r.seq, r.data), r.seal)
		}
	}
	_, ok = v.State()
	require.False(t, ok)

	_, err = RestoreVerifier([]byte(`{"version":9}`), nil)
	require.Error(t, err)
	_, err = RestoreVerifier([]byte(`{"version":1,"tree":"AQ=="}`), nil)
	require.Error(t, err)
}

// A state read back from the head-end's bucket never panics the
// verifier, whatever it holds, nor the records and seals given after it.
func FuzzVerifierState(f *testing.F) {
	f.Add([]byte(`{"version":1,"gateway":"gw-1","epoch":0,"first":5,"tree":"AQAAAAAAAAAA"}`), []byte("x"))
	f.Add([]byte(`{"version":1,"gateway":"gw-1","epoch":3,"reg":0,"first":5,"tree":"AQAAAAAAAAAA","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`), []byte("WEIRSEAL1"))
	f.Add([]byte(`{"version":1,"gateway":"gw-1","first":0,"tree":"AQAAAAAAAAAB","reg":-1}`), []byte{})
	f.Fuzz(func(t *testing.T, state, sealBytes []byte) {
		v, err := RestoreVerifier(state, nil)
		if err != nil {
			return
		}
		next := v.Next()
		v.Add(next, merkle.RecordLeaf(next, []byte("r")), nil)
		v.Add(next+1, merkle.RecordLeaf(next+1, sealBytes), sealBytes)
		v.Passed(next + 3)
		_ = v.Finish()
		_, _ = v.State()
		_ = v.Unsealed()
	})
}
