package sender

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/weirgw/weir/uplink"
)

// Link is one authenticated connection to a collector, whatever carries
// it. The protocol runs over it as a byte stream.
type Link interface {
	net.Conn
	// PeerCertificates is the collector's chain, leaf first.
	PeerCertificates() []*x509.Certificate
	// Describe names the negotiated protocol and cipher suite.
	Describe() string
	// Segments reads the transport's own counters: segments sent and
	// retransmitted, and its RTT estimate. ok is false when the transport
	// cannot tell (the RTT then comes from Ping/Pong).
	Segments() (s SegmentStats, ok bool)
}

// SegmentStats are a transport's counters for one connection.
type SegmentStats struct {
	Sent, Retransmitted uint64
	SRTT, RTTVar        time.Duration // zero: unknown
	Source              string        // "tcp_info", "rudp"
}

// Transport dials one kind of endpoint. The identity is read at every
// dial (cheap when unchanged), so renewed files take effect at the next
// handshake.
type Transport interface {
	Dial(ctx context.Context, ep uplink.Endpoint, id *uplink.Identity) (Link, error)
}

// Transports maps each endpoint transport to its dialer.
type Transports map[uplink.Transport]Transport

// DefaultTransports are the transports built into this binary, tuned by cfg.
func DefaultTransports(cfg uplink.Config, log *slog.Logger) Transports {
	return Transports{
		uplink.TransportTLS:  tlsTransport{},
		uplink.TransportDTLS: dtlsTransport{mtu: cfg.DTLSMTU, timeout: cfg.ConnectTimeout, log: log},
	}
}

func (ts Transports) dial(ctx context.Context, ep uplink.Endpoint, id *uplink.Identity, timeout time.Duration) (Link, error) {
	t, ok := ts[ep.Proto()]
	if !ok {
		return nil, fmt.Errorf("uplink: %s: transport %q is not built into this binary", ep.Name(), ep.Proto())
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	l, err := t.Dial(dctx, ep, id)
	if err != nil {
		return nil, fmt.Errorf("uplink: connect to %s: %w", ep.Name(), err)
	}
	return l, nil
}

type tlsTransport struct{}

func (tlsTransport) Dial(ctx context.Context, ep uplink.Endpoint, id *uplink.Identity) (Link, error) {
	tc, err := id.ClientConfig(ep.Server())
	if err != nil {
		return nil, err
	}
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: tc}
	c, err := d.DialContext(ctx, "tcp", ep.Address)
	if err != nil {
		return nil, err
	}
	return tlsLink{c.(*tls.Conn)}, nil
}

type tlsLink struct{ *tls.Conn }

func (l tlsLink) PeerCertificates() []*x509.Certificate { return l.ConnectionState().PeerCertificates }

func (l tlsLink) Describe() string {
	st := l.ConnectionState()
	return tls.VersionName(st.Version) + ", " + tls.CipherSuiteName(st.CipherSuite)
}

func (l tlsLink) Segments() (SegmentStats, bool) {
	tcp, ok := l.NetConn().(*net.TCPConn)
	if !ok {
		return SegmentStats{}, false
	}
	return tcpInfo(tcp)
}
