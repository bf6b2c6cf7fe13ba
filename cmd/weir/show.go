package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// newShowCmd makes a command that fetches one view from the running
// daemon's admin socket and prints it, as text or --json, once or every
// --watch interval until interrupted.
func newShowCmd[T any](g *globals, use, short string,
	fetch func(ctx context.Context, socket string) (T, error), print func(io.Writer, T)) *cobra.Command {
	var (
		socket string
		asJSON bool
		watch  time.Duration
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			socket, err := g.socket(cmd, socket)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			for {
				qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				v, err := fetch(qctx, socket)
				cancel()
				if err != nil {
					return err
				}
				if asJSON {
					if err := writeJSON(out, v, true); err != nil {
						return err
					}
				} else {
					print(out, v)
				}
				if watch <= 0 {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(watch):
					printf(out, "\n")
				}
			}
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "admin socket (default: from the configuration)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&watch, "watch", 0, "print again every interval until interrupted (e.g. 2s)")
	return cmd
}
