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
			// The registry holds a key a line, one per provisioning of
			// the gateway: the proof's chain starts at one of them.
			var pubs []ed25519.PublicKey
			for _, line := range strings.Split(key, "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				pub, err := hex.DecodeString(line)
				if err != nil || len(pub) != ed25519.PublicKeySize {
					return fmt.Errorf("verify-proof: the key is not %d bytes of hex", ed25519.PublicKeySize)
				}
				pubs = append(pubs, pub)
			}
			if len(pubs) == 0 {
				return errors.New("verify-proof: no key given")
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
			var got seal.Proven
			which := 0
			for i, pub := range pubs {
				if got, err = p.Verify(pub); err == nil {
					which = i + 1
					break
				}
			}
			if err != nil {
				// The error of the newest key: a proof of the newest log
				// is the usual case.
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
			if len(pubs) > 1 {
				printf(out, "key: registered key %d of %d (the gateway was provisioned %d times)\n", which, len(pubs), len(pubs))
			}
			printf(out, "record: %s\n", termSafe(rec, false))
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "the gateway's registered seal key, hex")
	c.Flags().StringVar(&keyFile, "key-file", "", "file holding the gateway's registered seal keys (<id>.pub: one a line, one per provisioning)")
	return c
}
