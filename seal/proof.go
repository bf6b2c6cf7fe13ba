package seal

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/weirgw/weir/merkle"
)

// Proof shows that one record is in a gateway's log, under a seal whose
// signature chain starts at the gateway's registered key: the record's
// bytes, its audit path to the seal's root, the seal, and the seals of
// every earlier epoch (each names the next epoch's key). It needs nothing
// else to check: no collector, no database, no network.
type Proof struct {
	Version int      `json:"version"`
	Gateway string   `json:"gateway"`
	Seq     uint64   `json:"seq"`
	Record  []byte   `json:"record_base64"`
	Index   uint64   `json:"leaf_index"`
	Path    []string `json:"audit_path"` // hex, nearest the leaf first
	Seal    []byte   `json:"seal_base64"`
	SealSeq uint64   `json:"seal_seq"`
	Chain   [][]byte `json:"key_chain_base64"` // seals of epochs 0 .. the proof seal's - 1
}

// ProofVersion is the version this build writes and reads.
const ProofVersion = 1

// Proven is what a proof established.
type Proven struct {
	Head Head // the seal the record is under
}

// Verify checks the proof against the key the gateway was provisioned
// with (epoch 0's).
func (p *Proof) Verify(registered ed25519.PublicKey) (Proven, error) {
	if p.Version != ProofVersion {
		return Proven{}, fmt.Errorf("seal: proof version %d, this build reads %d", p.Version, ProofVersion)
	}
	if len(registered) != ed25519.PublicKeySize {
		return Proven{}, errors.New("seal: proof: the registered key is not an Ed25519 public key")
	}
	key := registered
	for i, b := range p.Chain {
		h, err := Open(b, key)
		if err != nil {
			return Proven{}, fmt.Errorf("seal: proof: key chain at epoch %d: %w", i, err)
		}
		if h.Epoch != uint64(i) || h.Gateway != p.Gateway {
			return Proven{}, fmt.Errorf("seal: proof: key chain link %d is the seal of epoch %d of %q", i, h.Epoch, h.Gateway)
		}
		key = h.NextKey
	}
	h, err := Open(p.Seal, key)
	if err != nil {
		return Proven{}, fmt.Errorf("seal: proof: the seal: %w", err)
	}
	if h.Epoch != uint64(len(p.Chain)) || h.Gateway != p.Gateway {
		return Proven{}, fmt.Errorf("seal: proof: the seal is of epoch %d of %q, after a chain of %d", h.Epoch, h.Gateway, len(p.Chain))
	}
	if h.First+h.Size != p.SealSeq {
		return Proven{}, fmt.Errorf("seal: proof: the seal covers up to %d but says it is record %d", h.First+h.Size-1, p.SealSeq)
	}
	if p.Seq < h.First || p.Seq-h.First != p.Index {
		return Proven{}, fmt.Errorf("seal: proof: record %d is not leaf %d of a log beginning at %d", p.Seq, p.Index, h.First)
	}
	path := make([]merkle.Hash, len(p.Path))
	for i, s := range p.Path {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != len(merkle.Hash{}) {
			return Proven{}, fmt.Errorf("seal: proof: audit path entry %d is not a hash", i)
		}
		copy(path[i][:], b)
	}
	if err := merkle.VerifyInclusion(p.Index, h.Size, merkle.RecordLeaf(p.Seq, p.Record), path, h.Root); err != nil {
		return Proven{}, fmt.Errorf("seal: proof: record %d: %w", p.Seq, err)
	}
	return Proven{Head: h}, nil
}
