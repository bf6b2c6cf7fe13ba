package sender

import (
	"context"
	"crypto/x509"
	"log/slog"
	"time"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/rudp"
)

// dtlsTransport dials endpoints with transport: dtls through uplink/rudp:
// a reliable ordered stream over pion/dtls/v3 with Connection IDs, so a
// session survives the gateway's address changing. The CA bundle and the
// key pair are re-read at each handshake by rudp's configuration.
type dtlsTransport struct {
	mtu     int
	timeout time.Duration
	log     *slog.Logger
}

func (t dtlsTransport) Dial(ctx context.Context, ep uplink.Endpoint, id *uplink.Identity) (Link, error) {
	cfg, err := rudp.ClientConfig(id.Config(), ep.Server())
	if err != nil {
		return nil, err
	}
	c, err := rudp.Dial(ctx, ep.Address, cfg, rudp.Options{MTU: t.mtu, HandshakeTimeout: t.timeout, Logger: t.log})
	if err != nil {
		return nil, err
	}
	return dtlsLink{c}, nil
}

type dtlsLink struct{ *rudp.Conn }

func (l dtlsLink) PeerCertificates() []*x509.Certificate { return l.Conn.PeerCertificates() }

func (l dtlsLink) Describe() string {
	st := l.State()
	s := st.Version + ", " + st.CipherSuite
	if st.ConnectionID {
		s += ", connection id"
	}
	return s
}

func (l dtlsLink) Segments() (SegmentStats, bool) {
	st := l.Stats()
	return SegmentStats{Sent: st.SegmentsSent, Retransmitted: st.SegmentsRetransmitted, SRTT: st.SRTT, RTTVar: st.RTTVar, Source: "rudp"}, true
}
