package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/siem/output"
	"github.com/weirgw/weir/uplink/siem/outputs"
)

// openJetStream connects the JetStream sink, with TLS to NATS when a CA
// is given.
func openJetStream(ctx context.Context, opt collector.JetStreamOptions, tc uplink.TLSConfig, maxRanges int, log *slog.Logger) (*collector.JetStream, error) {
	if opt.Name == "" {
		opt.Name, _ = os.Hostname()
	}
	opt.MaxRanges = maxRanges
	var err error
	if opt.TLS, err = natsTLS(tc); err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	log.Info("collector sink", "jetstream", opt.URLs, "stream", opt.Stream, "bucket", opt.Bucket, "replicas", opt.Replicas)
	return collector.OpenJetStream(octx, opt, log)
}

// natsTLS is the TLS to NATS the --jetstream-ca, -cert and -key flags
// give (nil: plain).
func natsTLS(tc uplink.TLSConfig) (*tls.Config, error) {
	if tc.CA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(tc.CA)
	if err != nil {
		return nil, fmt.Errorf("jetstream-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("jetstream-ca: %s holds no certificate", tc.CA)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if tc.Cert != "" {
		pair, err := tls.LoadX509KeyPair(tc.Cert, tc.Key)
		if err != nil {
			return nil, fmt.Errorf("jetstream-cert, jetstream-key: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// connectNATS connects a reader of the stream (verify), not a sink.
func connectNATS(opt collector.JetStreamOptions, tc uplink.TLSConfig, what string) (*nats.Conn, error) {
	nopts := []nats.Option{nats.Name("weir-collector " + what)}
	if opt.CredsFile != "" {
		nopts = append(nopts, nats.UserCredentials(opt.CredsFile))
	}
	t, err := natsTLS(tc)
	if err != nil {
		return nil, err
	}
	if t != nil {
		nopts = append(nopts, nats.Secure(t))
	}
	nc, err := nats.Connect(opt.URLs, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%s: connect %s: %w", what, opt.URLs, err)
	}
	return nc, nil
}

// forwarding is the collector's SIEM outputs: a spool every record the
// sink takes is kept in too, and a runner per output off it.
type forwarding struct {
	sink  collector.Sink
	sp    *spool.Spool
	runs  []func(context.Context) error
	close func()
}

// outputsFile is the --outputs file: the gateway's outputs key.
type outputsFile struct {
	Outputs []yaml.Node `yaml:"outputs"`
}

// openForwarding reads the outputs file (nothing when path is empty) and
// wraps sink so every record it takes is forwarded.
func openForwarding(path, dir, sink string, inner collector.Sink, log *slog.Logger) (*forwarding, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	var f outputsFile
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("outputs %s: %w", path, err)
	}
	var cfgs []outputs.Config
	var errs []error
	for i, n := range f.Outputs {
		// Each item onto its defaults, refusing keys the schema lacks
		// (a yaml.Node's own Decode would not).
		c := outputs.DefaultConfig()
		item, err := yaml.Marshal(&n)
		if err == nil {
			d := yaml.NewDecoder(bytes.NewReader(item))
			d.KnownFields(true)
			err = d.Decode(&c)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("outputs[%d]: %w", i, err))
			continue
		}
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("outputs[%d]: %w", i, err))
		}
		cfgs = append(cfgs, c)
	}
	if len(cfgs) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no outputs"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("outputs %s: %w", path, err)
	}
	if dir == "" {
		dir = "forward-spool"
		if sink != "" {
			dir = filepath.Join(filepath.Dir(sink), "forward-spool")
		}
	}
	sp, err := spool.Open(spool.Options{Dir: dir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("forward-spool: %w", err)
	}
	fw := &forwarding{sp: sp, sink: collector.NewForward(inner, sp, 30*time.Second)}
	gate := output.NewGate(sp, log.With("part", "outputs"))
	var targets []output.Target
	fw.close = func() {
		for _, t := range targets {
			t.Close()
		}
		sp.Close()
	}
	for _, c := range cfgs {
		v, err := gate.Output(c.Name)
		if err != nil {
			fw.close()
			return nil, err
		}
		t, err := outputs.Build(c, filepath.Dir(dir), log)
		if err != nil {
			fw.close()
			return nil, err
		}
		targets = append(targets, t)
		r := output.NewRunner(c.Name, t, v, c.Batching(), log.With("part", "output"))
		r.SetDecode(func(rec spool.Record, e *event.Event) error { return collector.DecodeForwarded(rec.Data, e) })
		fw.runs = append(fw.runs, r.Run)
		log.Info("forwarding", "output", c.Name, "type", c.Type, "format", c.Format, "spool", dir)
	}
	fw.runs = append(fw.runs, func(ctx context.Context) error { return gate.Run(ctx, time.Second) })
	return fw, nil
}
