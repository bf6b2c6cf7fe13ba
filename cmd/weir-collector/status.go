package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/uplink/collector"
)

// statusFileName is the collector's state file, beside the sink unless
// --status-file names another.
const statusFileName = "collector-status.json"

// statusEvery is how often a running collector writes its state file.
const statusEvery = 2 * time.Second

// collectorStatus is what `weir-collector run` writes and
// `weir-collector status` reads: the collector is a daemon with no admin
// socket, and a file needs no listener.
type collectorStatus struct {
	Written time.Time             `json:"written"`
	PID     int                   `json:"pid"`
	Seals   []collector.SealState `json:"seals"` // the live check, per gateway, failed ones first
}

// defaultStatusFile is beside the JSONL sink, or in the working
// directory when the records go to JetStream.
func defaultStatusFile(sink string) string {
	if sink != "" {
		return filepath.Join(filepath.Dir(sink), statusFileName)
	}
	return statusFileName
}

// writeStatus replaces path with the check's state (written, then
// renamed: a reader never sees half of it). It skips the write when
// nothing changed but the time.
func writeStatus(path string, seals *collector.SealCheck, last []byte) ([]byte, error) {
	st := seals.Status()
	body, err := json.Marshal(st)
	if err != nil {
		return last, err
	}
	if bytes.Equal(body, last) {
		return last, nil
	}
	b, err := json.MarshalIndent(collectorStatus{Written: time.Now().UTC(), PID: os.Getpid(), Seals: st}, "", "  ")
	if err != nil {
		return last, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return last, fmt.Errorf("status file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return last, fmt.Errorf("status file %s: %w", path, err)
	}
	return body, nil
}

// runStatus writes the state file every statusEvery until ctx ends.
func runStatus(ctx context.Context, path string, seals *collector.SealCheck, log *slog.Logger) error {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	var last []byte
	var err error
	told := false
	for {
		// Not fatal: the records are what matters. Said once until a
		// write succeeds again.
		if last, err = writeStatus(path, seals, last); err != nil && !told {
			log.Warn("status file not written", "path", path, "err", err)
		}
		told = err != nil
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func readStatus(path string) (*collectorStatus, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	var st collectorStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("status: %s: %w", path, err)
	}
	return &st, nil
}

func newStatusCmd() *cobra.Command {
	var (
		file    string
		sink    string
		asJSON  bool
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "status",
		Short: "The running collector's state: the live check of every gateway's Merkle log",
		Long: `Reads the state file a running collector writes every 2 s (--status-file
of run; by default ` + statusFileName + ` beside --sink, or in the working
directory with --jetstream). Per gateway: the seals checked, the last
verified epoch and tree size, and a failure with its first failing
sequence. Exit status 1 when a gateway's log failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				file = defaultStatusFile(sink)
			}
			st, err := readStatus(file)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("status: no state file %s: is the collector running with this --sink or --status-file?", file)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(st); err != nil {
					return err
				}
			} else {
				printStatus(out, st, time.Now(), timeout)
			}
			for _, s := range st.Seals {
				if s.Failure != nil {
					return errSilentExit
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&file, "status-file", "", "the collector's state file (default: "+statusFileName+" beside --sink)")
	c.Flags().StringVar(&sink, "sink", "", "the collector's JSONL sink, to find the state file beside it")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().DurationVar(&timeout, "stale", 10*time.Second, "say the state is stale when the file is older than this")
	return c
}

func printStatus(w io.Writer, st *collectorStatus, now time.Time, stale time.Duration) {
	age := now.Sub(st.Written).Round(time.Second)
	note := ""
	if age > stale {
		note = " (stale: the collector may not be running)"
	}
	fmt.Fprintf(w, "collector pid %d, state written %s ago%s\n", st.PID, age, note)
	if len(st.Seals) == 0 {
		fmt.Fprintln(w, "seal check: no gateway's log seen yet")
	}
	for _, s := range st.Seals {
		fmt.Fprintf(w, "seal check %s: %s\n", safe(s.Gateway), s)
	}
}
