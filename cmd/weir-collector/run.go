package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/rudp"
)

func newRunCmd() *cobra.Command {
	var (
		listen     string
		listenDTLS string
		mtu        int
		tc         uplink.TLSConfig
		sink       string
		cfg        = collector.DefaultConfig()
		debug      bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Accept gateways over mutual TLS (TCP) and DTLS (UDP) and write their records to a JSONL sink",
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
			if listen == "" && listenDTLS == "" {
				errs = append(errs, errors.New("listen, listen-dtls: at least one is needed"))
			}
			if cfg.MaxConns < 1 {
				errs = append(errs, fmt.Errorf("max-conns: %d must be at least 1", cfg.MaxConns))
			}
			if cfg.HandshakeTimeout <= 0 || cfg.IdleTimeout <= 0 {
				errs = append(errs, errors.New("handshake-timeout, idle-timeout: must be positive"))
			}
			if err := errors.Join(errs...); err != nil {
				return fmt.Errorf("flags: %w", err)
			}
			// The identity's files are re-read (when changed) at every
			// handshake: renewed certificates need no restart.
			serverTLS, err := uplink.ServerTLS(tc)
			if err != nil {
				return err
			}
			s, err := collector.OpenJSONL(sink, log)
			if err != nil {
				return err
			}
			defer s.Close()
			srv := collector.NewServer(cfg, serverTLS, s, log)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)

			var lns []func(context.Context) error
			if listen != "" {
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return fmt.Errorf("listen %s: %w", listen, err)
				}
				log.Info("collector listening", "transport", "tls", "addr", ln.Addr().String(), "sink", sink)
				lns = append(lns, func(ctx context.Context) error { return srv.Serve(ctx, ln) })
			}
			if listenDTLS != "" {
				dc, err := rudp.ServerConfig(tc)
				if err != nil {
					return err
				}
				ln, err := rudp.Listen(listenDTLS, dc, rudp.Options{MTU: mtu, HandshakeTimeout: cfg.HandshakeTimeout,
					IdleTimeout: cfg.IdleTimeout, Logger: log,
					OnHandshakeError: srv.HandshakeRefused("dtls")})
				if err != nil {
					return fmt.Errorf("listen-dtls %s: %w", listenDTLS, err)
				}
				log.Info("collector listening", "transport", "dtls", "addr", ln.Addr().String(), "sink", sink)
				lns = append(lns, func(ctx context.Context) error { return srv.ServeSecure(ctx, ln, "dtls") })
			}
			var wg sync.WaitGroup
			for _, serve := range lns {
				wg.Go(func() {
					if err := serve(ctx); err != nil {
						cancel(err)
					}
				})
			}
			wg.Wait()
			log.Info("collector stopped")
			if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:7443", "TCP address to accept gateways on over TLS (loopback unless you say otherwise; empty: off)")
	f.StringVar(&listenDTLS, "listen-dtls", "", "UDP address to accept gateways on over DTLS, e.g. 127.0.0.1:7444 (empty: off)")
	f.IntVar(&mtu, "dtls-mtu", 1200, "DTLS: bytes of UDP payload per datagram")
	f.StringVar(&tc.CA, "ca", "", "CA bundle that signed the gateways' certificates")
	f.StringVar(&tc.Cert, "cert", "", "collector certificate (PEM)")
	f.StringVar(&tc.Key, "key", "", "collector private key (PEM)")
	f.StringVar(&sink, "sink", "", "JSONL file the records are appended to (fsynced before each ack)")
	f.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "most gateway sessions at once")
	f.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", cfg.HandshakeTimeout, "handshake plus Hello must complete within this")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "close a session silent for this long")
	f.BoolVar(&debug, "debug", false, "debug logging")
	return cmd
}
