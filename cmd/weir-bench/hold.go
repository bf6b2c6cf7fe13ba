package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/spool"
)

// newHoldCmd is the child of benchHold: one phase per process, so each
// phase's peak RSS is its own.
func newHoldCmd() *cobra.Command {
	var (
		dir     string
		phase   string
		backlog int64
	)
	cmd := &cobra.Command{
		Use:    "hold",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(64 << 20) // gateway.memory_limit's default
			}
			mem := startMemSampler()
			s, err := open(dir)
			if err != nil {
				return err
			}
			defer s.Close()
			entries := make([]spool.Entry, 1000)
			for i := range entries {
				entries[i] = spool.Entry{Data: make([]byte, recordSize)}
			}
			ctx := context.Background()
			start := time.Now()
			switch phase {
			case "fill":
				for s.Stats().Bytes < backlog {
					if _, err := s.Append(ctx, entries, nil); err != nil {
						return err
					}
				}
				st := s.Stats()
				fmt.Printf("  fill:   %d records in %s (%.0f records/s), %s on disk\n          %s\n",
					st.Records, time.Since(start).Round(time.Second), float64(st.Records)/time.Since(start).Seconds(),
					spool.ByteSize(st.DiskBytes), mem.report())
			case "steady":
				opened := time.Since(start)
				// 10k records/s: 100 records every 10 ms, read and acked as fast.
				small := entries[:100]
				cursor := s.Stats().AckedUpTo + 1
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for range 1000 {
					<-tick.C
					first, err := s.Append(ctx, small, nil)
					if err != nil {
						return err
					}
					// Ack as many of the oldest as were added, so the backlog holds.
					recs, err := s.Read(cursor, len(small), 0)
					if err != nil {
						return err
					}
					if len(recs) > 0 {
						cursor = recs[len(recs)-1].Seq + 1
						if err := s.Ack(recs[len(recs)-1].Seq); err != nil {
							return err
						}
					}
					_ = first
				}
				st := s.Stats()
				fmt.Printf("  steady: opened in %s, 10k records/s for 10 s over %d held records (%s)\n          %s\n",
					opened.Round(time.Millisecond), st.Records, spool.ByteSize(st.Bytes), mem.report())
			default:
				return fmt.Errorf("--phase %q: want fill or steady", phase)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "spool directory")
	cmd.Flags().StringVar(&phase, "phase", "fill", "fill or steady")
	cmd.Flags().Int64Var(&backlog, "backlog", 1<<30, "bytes of record data to hold")
	return cmd
}
