package main

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/seal"
	"github.com/weirgw/weir/uplink/collector"
)

func newProveCmd() *cobra.Command {
	var (
		sink    string
		keys    string
		gateway string
		seq     uint64
	)
	c := &cobra.Command{
		Use:   "prove --sink FILE --gateway ID --seq N",
		Short: "Print an inclusion proof of one record: the record, its audit path, its seal and the seals' key chain",
		Long: `Builds the proof from the sink alone, once the gateway's log verifies up
to the first seal that covers the record. The proof is a JSON document
that ` + "`weir verify-proof`" + ` checks against the gateway's registered key, with
nothing else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sink == "" || gateway == "" || seq == 0 {
				return errors.New("prove: --sink, --gateway and --seq are required")
			}
			p, err := buildProof(sink, keys, gateway, seq)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(p)
		},
	}
	c.Flags().StringVar(&sink, "sink", "", "JSONL sink holding the record")
	c.Flags().StringVar(&keys, "seal-keys", "", "directory of the gateways' registered seal keys (to check the log before proving)")
	c.Flags().StringVar(&gateway, "gateway", "", "gateway id")
	c.Flags().Uint64Var(&seq, "seq", 0, "sequence of the record")
	return c
}

func buildProof(sink, keys, gateway string, seq uint64) (*seal.Proof, error) {
	f, err := os.Open(sink)
	if err != nil {
		return nil, fmt.Errorf("prove: %w", err)
	}
	defer f.Close()
	pubs, err := collector.ReadSealKeys(keys, gateway)
	if err != nil {
		return nil, err
	}
	v := seal.NewVerifierKeys(gateway, pubs...)
	leaves := map[uint64]merkle.Hash{}
	var record []byte
	type sealRec struct {
		seq   uint64
		b     []byte
		head  seal.Head
		chain int // which chain of seals: a provisioning again begins one
	}
	var seals []sealRec
	err = collector.ScanSink(f, func(sr collector.SinkRecord) error {
		if sr.Gateway != gateway || sr.Record == nil {
			return nil
		}
		if sr.Err != nil && errors.Is(sr.Err, collector.ErrLineEdited) {
			return fmt.Errorf("prove: %w", sr.Err)
		}
		v.Add(sr.Seq, sr.Leaf, sr.Seal)
		leaves[sr.Seq] = sr.Leaf
		if sr.Seq == seq {
			record = sr.Record
		}
		if sr.Seal != nil {
			h, _, _, err := seal.Parse(sr.Seal)
			if err == nil {
				seals = append(seals, sealRec{seq: sr.Seq, b: sr.Seal, head: h})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if record == nil {
		return nil, fmt.Errorf("prove: the sink holds no record %d of %s", seq, gateway)
	}
	if fail := v.Finish(); fail != nil && fail.Seq <= seq {
		return nil, fmt.Errorf("prove: the log fails before the record: %v", fail)
	}
	// Chains in sequence order: each first seal of epoch 0 after the
	// first begins the next one (the gateway provisioned again).
	slices.SortFunc(seals, func(a, b sealRec) int { return cmp.Compare(a.seq, b.seq) })
	chain := 0
	for i := range seals {
		if i > 0 && seals[i].head.Epoch == 0 && seals[i].head.Began != "" {
			chain++
		}
		seals[i].chain = chain
	}
	// The first seal covering the record, and the seals of its chain
	// before it (in epoch order).
	var target *sealRec
	for i := range seals {
		s := &seals[i]
		if s.head.First <= seq && seq < s.head.First+s.head.Size {
			target = s
			break
		}
	}
	if target == nil {
		return nil, fmt.Errorf("prove: no seal in the sink covers record %d of %s yet", seq, gateway)
	}
	byEpoch := map[uint64]sealRec{}
	for _, s := range seals {
		if s.chain == target.chain {
			byEpoch[s.head.Epoch] = s
		}
	}
	p := &seal.Proof{Version: seal.ProofVersion, Gateway: gateway, Seq: seq, Record: record, Index: seq - target.head.First,
		Seal: target.b, SealSeq: target.seq}
	for e := uint64(0); e < target.head.Epoch; e++ {
		s, ok := byEpoch[e]
		if !ok {
			return nil, fmt.Errorf("prove: the seal of epoch %d, a link of the key chain, is not in the sink", e)
		}
		p.Chain = append(p.Chain, s.b)
	}
	for _, s := range seals {
		for _, d := range s.head.Evicted {
			if _, ok := leaves[d.Seq]; !ok {
				leaves[d.Seq] = d.Leaf
			}
		}
	}
	list := make([]merkle.Hash, target.head.Size)
	for i := range list {
		l, ok := leaves[target.head.First+uint64(i)]
		if !ok {
			return nil, fmt.Errorf("prove: record %d, under the same seal, is neither in the sink nor declared evicted", target.head.First+uint64(i))
		}
		list[i] = l
	}
	path, err := merkle.InclusionProof(list, p.Index)
	if err != nil {
		return nil, err
	}
	for _, h := range path {
		p.Path = append(p.Path, hex.EncodeToString(h[:]))
	}
	return p, nil
}
