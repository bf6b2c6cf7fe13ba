package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/weirgw/weir/cmd/internal/runprof"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/pki"
	"github.com/weirgw/weir/uplink/rudp"
)

func newRunCmd() *cobra.Command {
	var (
		listen         string
		listenDTLS     string
		listenMetrics  string
		mtu            int
		dtlsHandshakes int
		dtlsPerPrefix  int
		tc             uplink.TLSConfig
		sink           string
		denyList       string
		quarantineDir  string
		cfg            = collector.DefaultConfig()
		debug          bool
		noQuarantine   bool
		jsOpt          = collector.DefaultJetStreamOptions()
		jsTLS          uplink.TLSConfig
		outputsFile    string
		sealKeys       string
		statusFile     string
		forwardSpool   string
		fleetDir       string
		fleetCheck     time.Duration
		uiFlags        = newUIFlags()
		cpuProfile     string
		blockProfile   string
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
			if sink == "" && jsOpt.URLs == "" {
				errs = append(errs, errors.New("sink, jetstream: one is required"))
			}
			if sink != "" && jsOpt.URLs != "" {
				errs = append(errs, errors.New("sink, jetstream: one, not both"))
			}
			if listen == "" && listenDTLS == "" {
				errs = append(errs, errors.New("listen, listen-dtls: at least one is needed"))
			}
			if dtlsHandshakes < 1 || dtlsPerPrefix < 1 || dtlsPerPrefix > dtlsHandshakes {
				errs = append(errs, fmt.Errorf("dtls-handshakes %d, dtls-handshakes-per-prefix %d: both at least 1, the second not above the first",
					dtlsHandshakes, dtlsPerPrefix))
			}
			// The deny list lives beside the CA bundle unless named:
			// `weir-collector pki revoke --dir` writes it there.
			cfg.DenyList = denyList
			if cfg.DenyList == "" && tc.CA != "" {
				cfg.DenyList = filepath.Join(filepath.Dir(tc.CA), pki.DenyFile)
			}
			cfg.QuarantineDir = quarantineDir
			if cfg.QuarantineDir == "" && sink != "" {
				cfg.QuarantineDir = filepath.Join(filepath.Dir(sink), "quarantine")
			}
			if cfg.QuarantineDir == "" && jsOpt.URLs != "" {
				cfg.QuarantineDir = "quarantine"
			}
			if noQuarantine {
				cfg.QuarantineDir = ""
			}
			if err := cfg.Validate(); err != nil {
				errs = append(errs, err)
			}
			if err := uiFlags.validate(tc.CA); err != nil {
				errs = append(errs, err)
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
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			end, err := runprof.Start(cpuProfile, blockProfile)
			if err != nil {
				return err
			}
			defer end(log)
			ctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			var s collector.Sink
			var js *collector.JetStream
			if jsOpt.URLs != "" {
				js, err = openJetStream(ctx, jsOpt, jsTLS, cfg.MaxRanges, log)
				if err != nil {
					return err
				}
				defer js.Close()
				s = js
			} else {
				j, err := collector.OpenJSONLRanges(sink, log, cfg.MaxRanges)
				if err != nil {
					return err
				}
				defer j.Close()
				s = j
			}
			var fleetPage *fleetUI
			if uiFlags.on() {
				if fleetPage, err = uiFlags.start(s, sink, log); err != nil {
					return err
				}
				s = fleetPage.sink
			}
			fwd, err := openForwarding(outputsFile, forwardSpool, sink, s, log)
			if err != nil {
				return err
			}
			if fwd != nil {
				defer fwd.close()
				s = fwd.sink
			}
			srv := collector.NewServer(cfg, serverTLS, s, log)
			if sealKeys == "" && tc.CA != "" {
				sealKeys = filepath.Join(filepath.Dir(tc.CA), sealKeysDir)
			}
			seals := collector.NewSealCheck(sealKeys, log)
			if sink != "" {
				// The check is rebuilt from the sink: the logs' state is
				// the records themselves.
				if err := loadSeals(seals, sink); err != nil {
					return err
				}
			} else {
				// On JetStream each gateway's check is kept with its
				// resume state and the stream after it: the collector
				// that serves a gateway goes on from there.
				seals.Share(js)
			}
			srv.CheckSeals(seals)
			if fleetPage != nil {
				fleetPage.srv.ShowSeals(seals.Line)
			}

			var lns []func(context.Context) error
			if statusFile == "" {
				statusFile = defaultStatusFile(sink)
			}
			lns = append(lns, func(ctx context.Context) error { return runStatus(ctx, statusFile, seals, log) })
			if fleetDir != "" {
				b, err := collector.OpenBundles(fleetDir, fleetCheck, log)
				if err != nil {
					return err
				}
				srv.UseBundles(b)
				lns = append(lns, b.Run)
				log.Info("configuration bundles served", "fleet_dir", fleetDir)
			}

			if listenMetrics != "" {
				reg := prometheus.NewRegistry()
				if err := srv.Register(reg); err != nil {
					return err
				}
				for _, c := range seals.Collectors() {
					if err := reg.Register(c); err != nil {
						return err
					}
				}
				if fleetPage != nil {
					if err := fleetPage.register(reg); err != nil {
						return err
					}
				}
				ln, err := net.Listen("tcp", listenMetrics)
				if err != nil {
					return fmt.Errorf("listen-metrics %s: %w", listenMetrics, err)
				}
				log.Info("metrics listening", "addr", ln.Addr().String())
				lns = append(lns, func(ctx context.Context) error { return serveMetrics(ctx, ln, reg) })
			}
			if listen != "" {
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return fmt.Errorf("listen %s: %w", listen, err)
				}
				log.Info("collector listening", "transport", "tls", "addr", ln.Addr().String(), "sink", sink,
					"deny_list", cfg.DenyList, "quarantine", cfg.QuarantineDir)
				lns = append(lns, func(ctx context.Context) error { return srv.Serve(ctx, ln) })
			}
			if listenDTLS != "" {
				dc, err := rudp.ServerConfig(tc)
				if err != nil {
					return err
				}
				ln, err := rudp.Listen(listenDTLS, dc, rudp.Options{MTU: mtu, HandshakeTimeout: cfg.HandshakeTimeout,
					IdleTimeout: cfg.IdleTimeout, Logger: log, HandshakeBudget: dtlsHandshakes, HandshakesPerPrefix: dtlsPerPrefix,
					OnHandshakeError: srv.HandshakeRefused("dtls")})
				if err != nil {
					return fmt.Errorf("listen-dtls %s: %w", listenDTLS, err)
				}
				log.Info("collector listening", "transport", "dtls", "addr", ln.Addr().String(), "sink", sink)
				lns = append(lns, func(ctx context.Context) error { return srv.ServeSecure(ctx, ln, "dtls") })
			}
			if fwd != nil {
				lns = append(lns, fwd.runs...)
			}
			if fleetPage != nil {
				lns = append(lns, fleetPage.runs...)
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
	f.StringVar(&listenMetrics, "listen-metrics", "", "TCP address of the Prometheus /metrics endpoint, e.g. 127.0.0.1:9465 (empty: off; no authentication, keep it on loopback or a management network)")
	f.IntVar(&mtu, "dtls-mtu", 1200, "DTLS: bytes of UDP payload per datagram")
	f.IntVar(&dtlsHandshakes, "dtls-handshakes", 128, "DTLS: most handshakes under way at once")
	f.IntVar(&dtlsPerPrefix, "dtls-handshakes-per-prefix", 16, "DTLS: most handshakes under way from one IPv4 /24 or IPv6 /48")
	f.StringVar(&tc.CA, "ca", "", "CA bundle that signed the gateways' certificates")
	f.StringVar(&tc.Cert, "cert", "", "collector certificate (PEM)")
	f.StringVar(&tc.Key, "key", "", "collector private key (PEM)")
	f.StringVar(&sink, "sink", "", "JSONL file the records are appended to (fsynced before each ack)")
	f.StringVar(&sealKeys, "seal-keys", "", "directory of the gateways' registered seal keys, <id>.pub (default: "+sealKeysDir+" beside --ca)")
	f.StringVar(&statusFile, "status-file", "", "state file written every 2s for weir-collector status (default: "+statusFileName+" beside --sink, or in the working directory)")
	f.StringVar(&denyList, "deny", "", "deny list of revoked gateway ids and certificate serials, re-read when it changes (default: "+pki.DenyFile+" beside --ca; a missing file denies nothing)")
	f.StringVar(&quarantineDir, "quarantine", "", "directory keeping the frames sessions failed on, for analysis (default: quarantine beside --sink)")
	f.BoolVar(&noQuarantine, "no-quarantine", false, "keep no frames")
	f.IntVar(&cfg.QuarantineMaxFiles, "quarantine-max-files", cfg.QuarantineMaxFiles, "most frames kept in the quarantine directory (each cut to 1 MiB)")
	f.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "most gateway sessions at once (taken after authentication)")
	f.IntVar(&cfg.MaxSessionsPerGateway, "max-sessions-per-gateway", cfg.MaxSessionsPerGateway, "most sessions of one gateway id at once")
	f.IntVar(&cfg.MaxHandshakes, "max-handshakes", cfg.MaxHandshakes, "TLS: most handshakes under way at once (before authentication)")
	f.IntVar(&cfg.MaxHandshakesPerAddr, "max-handshakes-per-addr", cfg.MaxHandshakesPerAddr, "TLS: most handshakes under way from one IP address (IPv6: one /64)")
	f.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", cfg.HandshakeTimeout, "the handshake, then the Hello, must each complete within this")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "close a session silent for this long")
	f.DurationVar(&cfg.MaxSessionAge, "max-session-age", cfg.MaxSessionAge, "end a session this old (it reconnects); a session also ends at its certificate's expiry")
	f.IntVar(&cfg.MaxBatchRecords, "max-batch-records", cfg.MaxBatchRecords, "most records per batch a gateway may send (it may ask for fewer)")
	f.IntVar(&cfg.MaxBatchBytes, "max-batch-bytes", cfg.MaxBatchBytes, "most record bytes per batch a gateway may send (it may ask for fewer)")
	f.IntVar(&cfg.MemoryBudget, "memory-budget", cfg.MemoryBudget, "bytes held across sessions for frames being read and payloads being decoded")
	f.DurationVar(&cfg.BudgetWait, "budget-wait", cfg.BudgetWait, "how long a session waits for the memory budget before it is refused as busy")
	f.DurationVar(&cfg.DenyCheck, "deny-check", cfg.DenyCheck, "how often open sessions are checked against the deny list")
	f.IntVar(&cfg.MaxRanges, "max-ranges", cfg.MaxRanges, "most dedupe ranges kept per gateway")
	f.DurationVar(&cfg.LogEvery, "log-every", cfg.LogEvery, "refusal logs: at most --log-burst lines of each kind per this")
	f.IntVar(&cfg.LogBurst, "log-burst", cfg.LogBurst, "refusal logs: lines of each kind per --log-every")
	f.StringVar(&jsOpt.URLs, "jetstream", "", "NATS URLs of a JetStream cluster to write records to instead of --sink, e.g. nats://n1:4222,nats://n2:4222,nats://n3:4222; several collectors may share it")
	f.StringVar(&jsOpt.Name, "jetstream-name", "", "this collector's name in NATS and in the ids of its own records (default: the host name)")
	f.StringVar(&jsOpt.Stream, "jetstream-stream", jsOpt.Stream, "JetStream stream the records land in")
	f.StringVar(&jsOpt.SubjectPrefix, "jetstream-subject-prefix", jsOpt.SubjectPrefix, "records go to <prefix>.<gateway>.<kind>")
	f.StringVar(&jsOpt.Bucket, "jetstream-bucket", jsOpt.Bucket, "key-value bucket of every gateway's resume state")
	f.IntVar(&jsOpt.Replicas, "jetstream-replicas", jsOpt.Replicas, "replicas of the stream and the bucket (1 for a single server)")
	f.DurationVar(&jsOpt.Duplicates, "jetstream-duplicates", jsOpt.Duplicates, "JetStream's duplicate window: a gateway resending within it after a collector crash is deduped by message id")
	f.DurationVar(&jsOpt.Timeout, "jetstream-timeout", jsOpt.Timeout, "for publish acknowledgements and state updates; past it the batch is refused and the gateway resends")
	f.StringVar(&jsOpt.CredsFile, "jetstream-creds", "", "NATS credentials file (JWT and NKey seed)")
	f.StringVar(&jsTLS.CA, "jetstream-ca", "", "CA of the NATS servers (turns TLS on)")
	f.StringVar(&jsTLS.Cert, "jetstream-cert", "", "client certificate for NATS (with --jetstream-key)")
	f.StringVar(&jsTLS.Key, "jetstream-key", "", "client key for NATS")
	f.StringVar(&outputsFile, "outputs", "", "YAML file of SIEM outputs to forward every record to (the gateway's outputs: schema)")
	f.StringVar(&forwardSpool, "forward-spool", "", "spool directory holding records until every output has them (default: forward-spool beside --sink, or ./forward-spool)")
	f.StringVar(&fleetDir, "fleet-dir", "", "directory of configuration bundles to offer gateways (weir-collector fleet push writes it; empty: none offered)")
	f.DurationVar(&fleetCheck, "fleet-check", time.Second, "how often --fleet-dir is read again for new pushes")
	uiFlags.register(f)
	f.BoolVar(&debug, "debug", false, "debug logging")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the whole run to this file (for `make bench`'s profiles; off by default)")
	f.StringVar(&blockProfile, "blockprofile", "", "write a pprof block profile (waits of 10 µs and longer) to this file at exit")
	return cmd
}

// serveMetrics serves /metrics on ln, with the timeouts and header limit
// an unauthenticated listener needs.
func serveMetrics(ctx context.Context, ln net.Listener, reg *prometheus.Registry) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 15 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 8 << 10}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	})
	defer stop()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
