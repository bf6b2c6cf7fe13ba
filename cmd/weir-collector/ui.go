package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/collector/fleet"
	"github.com/weirgw/weir/uplink/collector/ui"
)

// uiFlags are the fleet page's flags (--ui-*).
type uiFlags struct {
	cfg   ui.Config
	opts  fleet.Options
	store string
	sites string
}

func newUIFlags() *uiFlags {
	return &uiFlags{cfg: ui.DefaultConfig(), opts: fleet.DefaultOptions()}
}

func (u *uiFlags) register(f *pflag.FlagSet) {
	f.StringVar(&u.cfg.Listen, "ui-listen", "", "TCP address of the fleet page, e.g. 127.0.0.1:7480 (empty: off); beyond loopback it needs --ui-cert/--ui-key and --ui-client-ca or --ui-token-file")
	f.StringVar(&u.cfg.Cert, "ui-cert", "", "TLS certificate of the fleet page (PEM; re-read when renewed)")
	f.StringVar(&u.cfg.Key, "ui-key", "", "TLS key of the fleet page")
	f.StringVar(&u.cfg.ClientCA, "ui-client-ca", "", "CA of the operators' browser certificates (not the gateways' --ca); a certificate naming a gateway is refused")
	f.StringVar(&u.cfg.TokenFile, "ui-token-file", "", "file holding the fleet page's bearer token (mode 0600, at least 16 bytes; re-read when it changes); browsers log in once at /login")
	f.StringVar(&u.store, "ui-store", "", "directory of the fleet store: per-gateway series and state, rebuilt from the sink if lost (default: fleet beside --sink, or ./fleet)")
	f.StringVar(&u.sites, "ui-sites", "", "YAML file of each gateway's site fields (gateway-id: {site: ..., region: ...}), re-read when it changes")
	f.DurationVar(&u.opts.Stale, "ui-stale", u.opts.Stale, "a gateway with no batch written for this long is shown silent")
	f.DurationVar(&u.opts.AlertWindow, "ui-alert-window", u.opts.AlertWindow, "an alert record counts as firing for this long")
	f.IntVar(&u.opts.MaxGateways, "ui-max-gateways", u.opts.MaxGateways, "most gateways the fleet store tracks; records of more are counted and dropped")
	f.IntVar(&u.cfg.PageSize, "ui-page-size", u.cfg.PageSize, "rows per fleet page unless the page asks for another (at most 1000)")
	f.IntVar(&u.cfg.MaxConns, "ui-max-conns", u.cfg.MaxConns, "most connections to the fleet page at once (before authentication)")
	f.IntVar(&u.cfg.MaxConnsPerAddr, "ui-max-conns-per-addr", u.cfg.MaxConnsPerAddr, "most connections to the fleet page from one address (IPv6: one /64)")
	f.IntVar(&u.cfg.MaxInFlight, "ui-max-in-flight", u.cfg.MaxInFlight, "most pages drawn at once; more wait 2s, then get 503")
}

func (u *uiFlags) on() bool { return u.cfg.Listen != "" }

// validate checks the flags; gatewayCA is --ca, refused as --ui-client-ca.
func (u *uiFlags) validate(gatewayCA string) error {
	if !u.on() {
		return nil
	}
	u.cfg.GatewayCA = gatewayCA
	return errors.Join(u.cfg.Validate(), u.opts.Validate())
}

// fleetUI is the running page: the sink to serve (tapped when it is not
// a JSONL sink) and what to run beside the listeners.
type fleetUI struct {
	sink  collector.Sink
	srv   *ui.Server
	store *fleet.Store
	runs  []func(context.Context) error
}

// start opens the store, wires it to the sink and builds the server.
func (u *uiFlags) start(sink collector.Sink, sinkPath string, log *slog.Logger) (*fleetUI, error) {
	dir := u.store
	if dir == "" {
		dir = "fleet"
		if sinkPath != "" {
			dir = filepath.Join(filepath.Dir(sinkPath), "fleet")
		}
	}
	u.opts.Dir, u.opts.Log = dir, log
	st, err := fleet.Open(u.opts)
	if err != nil {
		return nil, fmt.Errorf("ui-store: %w", err)
	}
	f := &fleetUI{sink: sink, store: st}
	switch j := sink.(type) {
	case *collector.JSONL:
		abs, err := filepath.Abs(j.Path())
		if err != nil {
			return nil, fmt.Errorf("sink: %w", err)
		}
		src := "jsonl:" + abs
		end := j.Observe(st.Written(src))
		if from := st.NeedsRebuild(src); from < end {
			f.runs = append(f.runs, func(ctx context.Context) error {
				if err := st.ReplayJSONL(ctx, src, j.Path(), from, end); err != nil && ctx.Err() == nil {
					log.Error("fleet store: rebuild from the sink stopped; the page shows what came since", "err", err)
				}
				return nil
			})
		}
	case *collector.JetStream:
		// Every collector on the stream follows all of it, so each page
		// shows the whole fleet; the stream is what the store is rebuilt
		// from.
		js, stream, prefix := j.Stream()
		f.runs = append(f.runs, func(ctx context.Context) error { return st.Follow(ctx, js, stream, prefix) })
	default:
		f.sink = fleet.NewTap(sink, st)
	}
	if u.sites != "" {
		if err := ui.LoadSites(canceled(), u.sites, st, time.Second, log); err != nil {
			return nil, err
		}
		f.runs = append(f.runs, func(ctx context.Context) error { return ui.LoadSites(ctx, u.sites, st, 10*time.Second, log) })
	}
	if f.srv, err = ui.New(u.cfg, st, log); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", u.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("ui-listen %s: %w", u.cfg.Listen, err)
	}
	scheme := "http"
	if u.cfg.Cert != "" {
		scheme = "https"
	}
	log.Info("fleet page listening", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String()+"/", "store", dir)
	f.runs = append(f.runs, st.Run, func(ctx context.Context) error { return f.srv.Serve(ctx, ln) })
	return f, nil
}

func (f *fleetUI) register(reg prometheus.Registerer) error { return f.srv.Register(reg) }

// canceled is a context already done: LoadSites then reads once.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
