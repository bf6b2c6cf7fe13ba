package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/seal"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector"
)

// loadSeals rebuilds the live check from the JSONL sink at start.
func loadSeals(c *collector.SealCheck, sink string) error {
	f, err := os.Open(sink)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("seal check: %w", err)
	}
	defer f.Close()
	start := time.Now()
	if err := c.LoadSink(f); err != nil {
		return fmt.Errorf("seal check: read %s: %w", sink, err)
	}
	for _, st := range c.Status() {
		if st.Failure != nil {
			fmt.Fprintf(os.Stderr, "seal check: %v\n", st.Failure)
		}
	}
	_ = start
	return nil
}

// verifyReport is one gateway's result of `weir-collector verify`.
type verifyReport struct {
	Gateway    string        `json:"gateway"`
	Registered bool          `json:"registered"`
	Records    uint64        `json:"records"`
	Proven     uint64        `json:"proven"`
	Declared   uint64        `json:"gaps_declared"`
	Seals      uint64        `json:"seals_checked"`
	Unsealed   uint64        `json:"unsealed"`
	Epoch      uint64        `json:"epoch_due"`
	Failure    *seal.Failure `json:"failure,omitempty"`
	NewLogs    []seal.NewLog `json:"new_logs,omitempty"` // chains begun by a later registered key
}

func newVerifyCmd() *cobra.Command {
	var (
		sink    string
		keys    string
		gateway string
		expect  uint64
		jsonOut bool
		jsURLs  string
		jsOpt   = collector.DefaultJetStreamOptions()
		jsTLS   uplink.TLSConfig
		export  string
	)
	c := &cobra.Command{
		Use:   "verify --sink FILE | --jetstream URLS [--jetstream-stream NAME]",
		Short: "Recompute every gateway's Merkle log from a JSONL sink or a JetStream stream and check its seals",
		Long: `Reads the sink (trusting nothing the collector wrote but the records' own
bytes), recomputes each gateway's Merkle log and checks every seal: the
signature chain from the gateway's registered key (--seal-keys), each
root, the declared evictions. It reports, per gateway, the records proven,
the gaps the gateway declared (evicted or expired by its spool's policy),
the seals checked and the first sequence that fails. A line whose JSON
was edited away from its record's bytes fails at its own sequence; a
record changed together with its bytes fails its seal's root, named as the
span since the last good seal. A cut tail is visible only against an
epoch known from elsewhere (--expect-epoch: the gateway's weir status, a
SIEM's newest seal). With --jetstream the records are read from the
stream the collectors sharing a head-end write (every message, from the
first), each checked the same way. Exit status 1 when a log fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			given := 0
			for _, f := range []string{sink, jsURLs, export} {
				if f != "" {
					given++
				}
			}
			if given != 1 {
				return errors.New("verify: one of --sink, --jetstream and --siem-export is required")
			}
			if expect != 0 && gateway == "" {
				return errors.New("verify: --expect-epoch needs --gateway")
			}
			var scan func(func(collector.SinkRecord) error) error
			var est *exportScan
			switch {
			case export != "":
				f, err := os.Open(export)
				if err != nil {
					return fmt.Errorf("verify: %w", err)
				}
				defer f.Close()
				est = &exportScan{}
				scan = func(fn func(collector.SinkRecord) error) error { return scanSIEMExport(f, est, fn) }
			case sink != "":
				f, err := os.Open(sink)
				if err != nil {
					return fmt.Errorf("verify: %w", err)
				}
				defer f.Close()
				scan = func(fn func(collector.SinkRecord) error) error { return collector.ScanSink(f, fn) }
			default:
				jsOpt.URLs = jsURLs
				nc, err := connectNATS(jsOpt, jsTLS, "verify")
				if err != nil {
					return err
				}
				defer nc.Close()
				scan = func(fn func(collector.SinkRecord) error) error {
					return collector.ScanJetStream(cmd.Context(), nc, jsOpt.Stream, fn)
				}
			}
			reports, err := verifyScan(scan, keys, gateway, expect)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if est != nil && !jsonOut {
				fmt.Fprintf(out, "siem export: %d lines, %d not Weir records, %d duplicates, %d unreadable%s\n",
					est.lines, est.other, est.duplicates, est.unreadable, firstErr(est.firstErr))
				fmt.Fprintln(out, "leaves and seals checked; the records' contents are not (an export holds no record bytes: check one with weir-collector prove and weir verify-proof)")
			}
			failed := false
			for _, r := range reports {
				failed = failed || r.Failure != nil
			}
			if jsonOut {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(reports); err != nil {
					return err
				}
			} else {
				for _, r := range reports {
					key := "registered key"
					if !r.Registered {
						key = "no registered key: first seal taken on trust"
					}
					fmt.Fprintf(out, "%s: %d records, %d proven, %d gaps declared, %d seals checked, %d after the last seal (%s)\n",
						r.Gateway, r.Records, r.Proven, r.Declared, r.Seals, r.Unsealed, key)
					for _, n := range r.NewLogs {
						fmt.Fprintf(out, "  %v\n", n)
					}
					if r.Failure != nil {
						fmt.Fprintf(out, "  TAMPERED: %v\n", r.Failure)
					}
				}
			}
			if failed {
				return errSilentExit
			}
			return nil
		},
	}
	c.Flags().StringVar(&sink, "sink", "", "JSONL sink to verify")
	c.Flags().StringVar(&export, "siem-export", "", "an ECS export of a SIEM (a JSON document a line, as sent or under _source): its leaves and seals are checked, not the records' contents")
	c.Flags().StringVar(&jsURLs, "jetstream", "", "NATS URLs of the JetStream cluster whose stream to verify instead of --sink")
	c.Flags().StringVar(&jsOpt.Stream, "jetstream-stream", jsOpt.Stream, "the stream the collectors write")
	c.Flags().StringVar(&jsOpt.CredsFile, "jetstream-creds", "", "NATS credentials file (JWT and NKey seed)")
	c.Flags().StringVar(&jsTLS.CA, "jetstream-ca", "", "CA of the NATS servers (turns TLS on)")
	c.Flags().StringVar(&jsTLS.Cert, "jetstream-cert", "", "client certificate for NATS (with --jetstream-key)")
	c.Flags().StringVar(&jsTLS.Key, "jetstream-key", "", "client key for NATS")
	c.Flags().StringVar(&keys, "seal-keys", "", "directory of the gateways' registered seal keys, <id>.pub (empty: first seals on trust)")
	c.Flags().StringVar(&gateway, "gateway", "", "verify this gateway only")
	c.Flags().Uint64Var(&expect, "expect-epoch", 0, "the gateway is known to have sealed epoch N-1: fail if the sink ends before it")
	c.Flags().BoolVar(&jsonOut, "json", false, "print the reports as JSON")
	return c
}

func firstErr(s string) string {
	if s == "" {
		return ""
	}
	return " (first: " + s + ")"
}

// verifyScan checks every gateway's log in what scan reads.
func verifyScan(scan func(func(collector.SinkRecord) error) error, keys, only string, expect uint64) ([]verifyReport, error) {
	vs := map[string]*seal.Verifier{}
	lineFail := map[string]*seal.Failure{}
	err := scan(func(sr collector.SinkRecord) error {
		if sr.Gateway == "" {
			return nil // a line that is not JSON: a torn tail the collector cuts at open
		}
		if only != "" && sr.Gateway != only {
			return nil
		}
		v := vs[sr.Gateway]
		if v == nil {
			pubs, err := collector.ReadSealKeys(keys, sr.Gateway)
			if err != nil {
				return err
			}
			v = seal.NewVerifierKeys(sr.Gateway, pubs...)
			vs[sr.Gateway] = v
		}
		if sr.Err != nil && errors.Is(sr.Err, collector.ErrLineEdited) {
			// The line says something its record does not: it fails here,
			// whatever the seals say.
			if f := lineFail[sr.Gateway]; f == nil || sr.Seq < f.Seq {
				lineFail[sr.Gateway] = &seal.Failure{Gateway: sr.Gateway, Epoch: v.Epoch(), Seq: sr.Seq, Reason: sr.Err.Error()}
			}
		}
		if sr.Record != nil {
			v.Add(sr.Seq, sr.Leaf, sr.Seal)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	var out []verifyReport
	for id, v := range vs {
		f := v.Finish()
		if expect != 0 && id == only {
			f = v.Expect(expect)
		}
		// An edited line is exact; a root that does not match names a
		// span: the line wins when it falls in it or before it.
		if lf := lineFail[id]; lf != nil && (f == nil || lf.Seq <= max(f.Seq, f.Upto)) {
			f = lf
		}
		st := v.Stats()
		out = append(out, verifyReport{Gateway: id, Registered: v.Registered(), Records: st.Records, Proven: st.Proven,
			Declared: st.Declared, Seals: st.Seals, Unsealed: v.Unsealed(), Epoch: v.Epoch(), Failure: f, NewLogs: v.NewLogs()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Gateway < out[j].Gateway })
	return out, nil
}
