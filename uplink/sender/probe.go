package sender

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/weirgw/weir/uplink"
)

// ProbeResult is what `weir test output` prints for one endpoint.
type ProbeResult struct {
	Endpoint   string              `json:"endpoint"`
	Negotiated string              `json:"negotiated,omitempty"`
	Chain      []*x509.Certificate `json:"-"`
	Highest    uint64              `json:"collector_seq"`
	RTTs       []time.Duration     `json:"rtts,omitempty"`
	Reason     uplink.Reason       `json:"reason,omitempty"`
	Err        error               `json:"-"`
}

// Probe connects to ep as gateway, completes the handshake and
// Hello/Welcome, and measures the round trip of pings Ping/Pong exchanges.
// It sends no Data. Hello.Floor is 0, which claims nothing.
func Probe(ctx context.Context, cfg uplink.Config, gateway string, ep uplink.Endpoint, pings int) *ProbeResult {
	res := &ProbeResult{Endpoint: ep.Name()}
	s := &Sender{cfg: cfg, gateway: gateway, bootID: "probe", id: uplink.NewIdentity(cfg.TLS), transports: DefaultTransports(cfg, slog.New(slog.DiscardHandler))}
	fail := func(err error) *ProbeResult {
		err = s.explain(err)
		res.Err, res.Reason = err, uplink.Classify(err)
		return res
	}
	link, err := s.transports.dial(ctx, ep, s.id, cfg.ConnectTimeout)
	if err != nil {
		return fail(err)
	}
	defer link.Close()
	res.Negotiated, res.Chain = link.Describe(), link.PeerCertificates()
	welcome, br, err := s.greet(link, 0, nil)
	if err != nil {
		return fail(fmt.Errorf("uplink: %s: %w", ep.Name(), err))
	}
	res.Highest = welcome.Highest
	w := frameWriter{conn: link, timeout: cfg.ConnectTimeout}
	for i := range pings {
		start := time.Now()
		if err := w.write(&uplink.Ping{Nonce: uint64(i + 1)}); err != nil {
			return fail(fmt.Errorf("uplink: %s: send ping: %w", ep.Name(), err))
		}
		_ = link.SetReadDeadline(time.Now().Add(cfg.ConnectTimeout))
		m, err := readMessage(br, nil)
		if err != nil {
			return fail(fmt.Errorf("uplink: %s: await pong: %w", ep.Name(), err))
		}
		if p, ok := m.(*uplink.Pong); !ok || p.Nonce != uint64(i+1) {
			return fail(fmt.Errorf("uplink: %s answered ping with %s", ep.Name(), msgName(m)))
		}
		res.RTTs = append(res.RTTs, time.Since(start))
	}
	return res
}
