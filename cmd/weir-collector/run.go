package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector"
)

func newRunCmd() *cobra.Command {
	var (
		listen string
		tc     uplink.TLSConfig
		sink   string
		cfg    = collector.DefaultConfig()
		debug  bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Accept gateways over mutual TLS and write their records to a JSONL sink",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			var errs []error
			if err := tc.Validate(); err != nil {
				errs = append(errs, err)
			}
			if sink == "" {
				errs = append(errs, errors.New("sink: required"))
			}
			if cfg.MaxConns < 1 {
				errs = append(errs, fmt.Errorf("max-conns: %d must be at least 1", cfg.MaxConns))
			}
			if err := errors.Join(errs...); err != nil {
				return fmt.Errorf("flags: %w", err)
			}
			serverTLS, err := uplink.ServerTLS(tc)
			if err != nil {
				return err
			}
			s, err := collector.OpenJSONL(sink, log)
			if err != nil {
				return err
			}
			defer s.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen %s: %w", listen, err)
			}
			log.Info("collector listening", "addr", ln.Addr().String(), "sink", sink)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = collector.NewServer(cfg, serverTLS, s, log).Serve(ctx, ln)
			log.Info("collector stopped")
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:7443", "address to accept gateways on (loopback unless you say otherwise)")
	f.StringVar(&tc.CA, "ca", "", "CA bundle that signed the gateways' certificates")
	f.StringVar(&tc.Cert, "cert", "", "collector certificate (PEM)")
	f.StringVar(&tc.Key, "key", "", "collector private key (PEM)")
	f.StringVar(&sink, "sink", "", "JSONL file the records are appended to (fsynced before each ack)")
	f.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "most gateway sessions at once")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "close a session silent for this long")
	f.BoolVar(&debug, "debug", false, "debug logging")
	return cmd
}
