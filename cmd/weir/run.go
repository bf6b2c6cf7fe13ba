package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/cmd/internal/runprof"
	"github.com/weirgw/weir/gateway"
)

func newRunCmd(g *globals) *cobra.Command {
	var cpuProfile, blockProfile string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the gateway until SIGINT or SIGTERM; SIGHUP reloads the configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Taken from the first instant: a SIGHUP while the gateway
			// starts waits for it rather than ending the process (what Go
			// does with one nobody asked for).
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			l, err := g.load(cmd)
			if err != nil {
				return err
			}
			log := newLogger(l.Log)
			for _, w := range l.Warnings {
				log.Warn(w)
			}
			log.Info("configuration loaded", "from", l.Source())
			if lim := int64(l.Gateway.MemoryLimit); lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(lim)
			}
			gw, err := gateway.New(l.Config, version, log)
			if err != nil {
				return err
			}
			gw.SetConfigFile(l.File)
			gw.SetFleetBundle(l.Bundle)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			end, err := runprof.Start(cpuProfile, blockProfile)
			if err != nil {
				return err
			}
			defer end(log)
			go reloadOnHUP(ctx, hup, gw, func() (*gateway.Loaded, error) { return g.load(cmd) })
			return gw.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the whole run to this file (for `make bench`'s profiles; off by default)")
	cmd.Flags().StringVar(&blockProfile, "blockprofile", "", "write a pprof block profile (waits of 10 µs and longer) to this file at exit")
	return cmd
}

// reloadOnHUP reads the configuration again at each SIGHUP, as `weir
// run` read it (the same file, the fleet bundle in force, the WEIR_*
// variables), and hands it to the gateway. Signals that arrive during a
// reload make one more after it.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, gw *gateway.Gateway, load func() (*gateway.Loaded, error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		gw.ReloadFrom(ctx, "SIGHUP", load)
	}
}
