package seal

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/weirgw/weir/merkle"
)

// A verifier's state, saved where collectors sharing a head-end find it
// (the JetStream sink's bucket): a collector taking a gateway over goes on
// from it instead of starting blind in the middle of the log. It is the
// live check's working state, trusted like the head-end that keeps it;
// `weir-collector verify` trusts none of it.
type verifierState struct {
	Version    int               `json:"version"`
	Gateway    string            `json:"gateway"`
	Key        ed25519.PublicKey `json:"key,omitempty"`
	Epoch      uint64            `json:"epoch"`
	Registered bool              `json:"registered"`
	Reg        int               `json:"reg"`
	First      uint64            `json:"first"`
	Tree       []byte            `json:"tree"`
	Stats      Stats             `json:"stats"`
	LastSeal   uint64            `json:"last_seal"`
	LastHead   *Head             `json:"last_head,omitempty"`
	MaxSeq     uint64            `json:"max_seq"`
	LastSig    uint64            `json:"last_sig"`
	NewLogs    []NewLog          `json:"new_logs,omitempty"`
	Failure    *Failure          `json:"failure,omitempty"`
	GaveUp     string            `json:"gave_up,omitempty"`
}

const stateVersion = 1

// Next is the sequence of the next leaf the verifier needs (0 before its
// first seal said where the log begins).
func (v *Verifier) Next() uint64 {
	if v.first == 0 {
		return 0
	}
	return v.first + v.tree.Size()
}

// State returns the verifier's state when it holds nothing out of order
// (no record waits for an earlier one, no seal for an earlier epoch's, no
// gap is counted), and false otherwise: only then is the log's part after
// it exactly the records from Next on. A log that failed or was given up
// is saved as such.
func (v *Verifier) State() ([]byte, bool) {
	done := v.failure != nil || v.gaveUp != ""
	if !done && (v.first == 0 || len(v.pending) != 0 || len(v.parked) != 0 || len(v.passed) != 0) {
		return nil, false
	}
	st := verifierState{Version: stateVersion, Gateway: v.gateway, Key: v.key, Epoch: v.epoch, Registered: v.registered,
		Reg: v.reg, First: v.first, Tree: v.tree.AppendBinary(nil), Stats: v.stats, LastSeal: v.lastSeal,
		MaxSeq: v.maxSeq, LastSig: v.lastSig, NewLogs: v.newLogs, Failure: v.failure, GaveUp: v.gaveUp}
	if v.lastSeal != 0 {
		// Without its evictions (up to 1,000 of them): the state is
		// stored with every batch, and they are checked already.
		h := v.lastHead
		h.Evicted = nil
		st.LastHead = &h
	}
	b, err := json.Marshal(&st)
	if err != nil {
		return nil, false
	}
	return b, true
}

// RestoreVerifier goes on from a saved state with the gateway's registered
// keys as the registry holds them now.
func RestoreVerifier(b []byte, keys []ed25519.PublicKey) (*Verifier, error) {
	var st verifierState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("seal: verifier state: %w", err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("seal: verifier state version %d, this build reads %d", st.Version, stateVersion)
	}
	if st.Key != nil && len(st.Key) != ed25519.PublicKeySize {
		return nil, errors.New("seal: verifier state: a key that is not an Ed25519 public key")
	}
	if st.Reg < 0 || (len(keys) > 0 && st.Reg >= len(keys)) {
		return nil, fmt.Errorf("seal: verifier state: chain of registered key %d, the registry holds %d", st.Reg+1, len(keys))
	}
	var tree merkle.Frontier
	if err := tree.UnmarshalBinary(st.Tree); err != nil {
		return nil, fmt.Errorf("seal: verifier state: %w", err)
	}
	v := NewVerifierKeys(st.Gateway, keys...)
	v.key, v.epoch, v.registered, v.reg = st.Key, st.Epoch, st.Registered, st.Reg
	v.first, v.tree, v.stats, v.lastSeal = st.First, tree, st.Stats, st.LastSeal
	v.maxSeq, v.lastSig, v.newLogs, v.failure, v.gaveUp = st.MaxSeq, st.LastSig, st.NewLogs, st.Failure, st.GaveUp
	if st.LastHead != nil {
		v.lastHead = *st.LastHead
	}
	return v, nil
}
