package main

import (
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
)

func newRunCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the gateway until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return gw.Run(ctx)
		},
	}
}
