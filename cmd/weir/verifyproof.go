package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/seal"
)

// maxProofFile bounds the proof read (its key chain grows one seal per
// epoch).
const maxProofFile = 256 << 20

func newVerifyProofCmd() *cobra.Command {
	var key, keyFile string
	c := &cobra.Command{
		Use:   "verify-proof FILE",
		Short: "Check an inclusion proof (weir-collector prove) against the gateway's registered seal key, offline",
		Long: `Checks, with nothing but the proof and the gateway's registered key (the
<id>.pub that weir-collector pki issue-gateway wrote): the key chain from
that key through every earlier epoch's seal, the seal's signature, and the
record's audit path to the seal's root. Prints the record and the seal.
Exit status 1 when the proof does not hold.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (key == "") == (keyFile == "") {
				return errors.New("verify-proof: give the gateway's registered key: --key HEX or --key-file FILE")
			}
			if keyFile != "" {
				b, err := os.ReadFile(keyFile)
				if err != nil {
					return fmt.Errorf("verify-proof: --key-file: %w", err)
				}
				key = string(b)
			}
			pub, err := hex.DecodeString(strings.TrimSpace(key))
			if err != nil || len(pub) != ed25519.PublicKeySize {
				return fmt.Errorf("verify-proof: the key is not %d bytes of hex", ed25519.PublicKeySize)
			}
			fi, err := os.Stat(args[0])
			if err != nil {
				return fmt.Errorf("verify-proof: %w", err)
			}
			if fi.Size() > maxProofFile {
				return fmt.Errorf("verify-proof: %s is %d bytes, more than the %d a proof may be", args[0], fi.Size(), maxProofFile)
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("verify-proof: %w", err)
			}
			var p seal.Proof
			if err := json.Unmarshal(b, &p); err != nil {
				return fmt.Errorf("verify-proof: %s: %w", args[0], err)
			}
			got, err := p.Verify(pub)
			if err != nil {
				return fmt.Errorf("verify-proof: NOT PROVEN: %w", err)
			}
			out := cmd.OutOrStdout()
			var ev event.Event
			rec := "(the record's bytes do not decode)"
			if ev.UnmarshalBinary(p.Record) == nil {
				ev.Seq, ev.Gateway = p.Seq, p.Gateway
				if j, err := json.Marshal(&ev); err == nil {
					rec = string(j)
				}
			}
			h := got.Head
			printf(out, "proven: record %d of gateway %s is leaf %d of the log sealed at epoch %d (%d records from %d, root %x, sealed %s)\n",
				p.Seq, termSafe(p.Gateway, false), p.Index, h.Epoch, h.Size, h.First, h.Root, time.Unix(0, h.Time).UTC().Format(time.RFC3339Nano))
			printf(out, "record: %s\n", termSafe(rec, false))
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "the gateway's registered seal key, hex")
	c.Flags().StringVar(&keyFile, "key-file", "", "file holding the gateway's registered seal key (<id>.pub)")
	return c
}
