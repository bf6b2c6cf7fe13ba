// The required API is built on *dtls.Config, which pion marks deprecated
// in favour of functional options (still the only way to hand a finished
// configuration from the caller to Dial and Listen); it stays through v3.
//lint:file-ignore SA1019 pion's *dtls.Config is this package's API until pion v4

package rudp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/gob"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/weirgw/weir/uplink"
)

// cidLen is the server's connection ID length. It must be constant: pion's
// listener routes datagrams by a CID of this size.
const cidLen = 8

// aeadSuites are the only suites offered: ECDHE for forward secrecy, GCM
// for authenticated encryption; no CBC.
func aeadSuites() []dtls.CipherSuiteID {
	return []dtls.CipherSuiteID{
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	}
}

// identity reads the certificate, key and CA bundle named by c. It runs at
// every handshake, so renewed files take effect without a restart.
func identity(c uplink.TLSConfig) (*tls.Certificate, *x509.CertPool, error) {
	certPEM, err := os.ReadFile(c.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM := []byte(c.KeyPEM)
	if c.Key != "" {
		if keyPEM, err = os.ReadFile(c.Key); err != nil {
			return nil, nil, fmt.Errorf("read key: %w", err)
		}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %s and its key: %w", c.Cert, err)
	}
	pool, err := caPool(c.CA)
	if err != nil {
		return nil, nil, err
	}
	return &pair, pool, nil
}

func caPool(path string) (*x509.CertPool, error) {
	caPEM, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", path)
	}
	return pool, nil
}

// verifyChain checks raw (leaf first) against a freshly read CA bundle.
func verifyChain(caPath string, raw [][]byte, usage x509.ExtKeyUsage, dnsName string) error {
	if len(raw) == 0 {
		return errors.New("peer sent no certificate")
	}
	certs := make([]*x509.Certificate, 0, len(raw))
	for i, r := range raw {
		cert, err := x509.ParseCertificate(r)
		if err != nil {
			return fmt.Errorf("parse peer certificate %d: %w", i, err)
		}
		certs = append(certs, cert)
	}
	roots, err := caPool(caPath)
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, cert := range certs[1:] {
		inter.AddCert(cert)
	}
	_, err = certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       dnsName,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return fmt.Errorf("verify %q: %w", certs[0].Subject.CommonName, err)
	}
	return nil
}

// ClientConfig builds the gateway side's DTLS configuration. The files are
// checked once here so a broken identity fails early, then re-read at each
// handshake.
func ClientConfig(c uplink.TLSConfig, serverName string) (*dtls.Config, error) {
	if _, _, err := identity(c); err != nil {
		return nil, fmt.Errorf("rudp: client identity: %w", err)
	}
	return &dtls.Config{
		CipherSuites:         aeadSuites(),
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		// Flights are resent every Options.FlightInterval (200 ms) without
		// doubling: on these links loss is random, a flight is a few
		// datagrams, and RFC 6347's backoff would fit only five tries in
		// the handshake timeout. The interval is also the cap on how long
		// a gateway dialling a collector that is down (and whose host sends
		// no ICMP) goes without a ClientHello, so the handshake starts
		// within 200 ms of the collector's return. The cost: five
		// ClientHellos a second from each gateway dialling a host that
		// does not answer, and on a path with a longer RTT each flight
		// sent about RTT/200 ms times (the collector answers a repeated
		// flight at most once a second, pion's peer-retransmit limit).
		DisableRetransmitBackoff: true,
		GetClientCertificate: func(*dtls.CertificateRequestInfo) (*tls.Certificate, error) {
			pair, _, err := identity(c)
			if err != nil {
				return nil, fmt.Errorf("rudp: client identity: %w", err)
			}
			return pair, nil
		},
		// Pion's own verification would use a pool fixed at build time;
		// VerifyPeerCertificate below checks the chain and the name
		// against the CA bundle as it is on disk now. Pion still checks
		// that the server holds the certificate's key.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if err := verifyChain(c.CA, raw, x509.ExtKeyUsageServerAuth, serverName); err != nil {
				return fmt.Errorf("rudp: collector certificate: %w", err)
			}
			return nil
		},
		ServerName: serverName,
		// Send the server's connection ID, so it finds this session when
		// our address changes; the client needs none from the server.
		ConnectionIDGenerator: dtls.OnlySendCIDGenerator(),
	}, nil
}

// ServerConfig builds the collector side's DTLS configuration: clients
// must present a certificate that chains to the CA bundle.
func ServerConfig(c uplink.TLSConfig) (*dtls.Config, error) {
	if _, _, err := identity(c); err != nil {
		return nil, fmt.Errorf("rudp: server identity: %w", err)
	}
	return &dtls.Config{
		CipherSuites:             aeadSuites(),
		ExtendedMasterSecret:     dtls.RequireExtendedMasterSecret,
		DisableRetransmitBackoff: true, // see ClientConfig
		GetCertificate: func(*dtls.ClientHelloInfo) (*tls.Certificate, error) {
			pair, _, err := identity(c)
			if err != nil {
				return nil, fmt.Errorf("rudp: server identity: %w", err)
			}
			return pair, nil
		},
		// RequireAnyClientCert makes pion demand a certificate and leave
		// the verification to VerifyPeerCertificate, which reads the CA
		// bundle afresh.
		ClientAuth: dtls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if err := verifyChain(c.CA, raw, x509.ExtKeyUsageClientAuth, ""); err != nil {
				return fmt.Errorf("rudp: gateway certificate: %w", err)
			}
			return nil
		},
		ConnectionIDGenerator: dtls.RandomCIDGenerator(cidLen),
	}, nil
}

// tune copies cfg with the MTU and handshake flight interval of opt,
// unless cfg sets its own.
func tune(cfg *dtls.Config, opt Options) *dtls.Config {
	c := *cfg
	if c.MTU == 0 {
		c.MTU = opt.MTU
	}
	if c.FlightInterval == 0 {
		c.FlightInterval = opt.FlightInterval
	}
	return &c
}

// withVerdict wraps the peer verification of a client's config so its
// verdict is kept: pion sometimes reports a refused certificate as the
// alert that raced it ("DecodeError"), and the reason is what operators
// need.
func withVerdict(c *dtls.Config) (*dtls.Config, *verdict) {
	v := &verdict{}
	if inner := c.VerifyPeerCertificate; inner != nil {
		c.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
			err := inner(raw, chains)
			v.set(err)
			return err
		}
	}
	return c, v
}

// verdict keeps the first peer-verification error of a handshake.
type verdict struct {
	mu  sync.Mutex
	err error
}

func (v *verdict) set(err error) {
	v.mu.Lock()
	if v.err == nil {
		v.err = err
	}
	v.mu.Unlock()
}

// explain prefers the verification error to the one the handshake
// returned.
func (v *verdict) explain(err error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err != nil && !errors.Is(err, v.err) {
		return v.err
	}
	return err
}

// Dial opens a DTLS session to addr and returns the stream over it once
// the handshake is done.
func Dial(ctx context.Context, addr string, cfg *dtls.Config, opt Options) (*Conn, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("rudp: resolve %s: %w", addr, err)
	}
	network := "udp4"
	if raddr.IP.To4() == nil {
		network = "udp6"
	}
	pc, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("rudp: dial %s: %w", addr, err)
	}
	sizeBuffers(pc, 4<<20)
	// A refusal ends the handshake at once; once the session is up, ICMP
	// errors are not listened for (the collector restarting is lost
	// datagrams, and the idle timeout decides).
	rctx, refuse := context.WithCancelCause(ctx)
	defer refuse(nil)
	recvErrors(pc, network == "udp6", true)
	rc := &refusalConn{UDPConn: pc, refused: func(err error) {
		refuse(fmt.Errorf("nothing listens there (ICMP port unreachable): %w", err))
	}}
	tuned, v := withVerdict(tune(cfg, opt))
	dc, err := dtls.Client(rc, raddr, tuned)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("rudp: dial %s: %w", addr, err)
	}
	hctx, cancel := context.WithTimeout(rctx, opt.HandshakeTimeout)
	defer cancel()
	start := time.Now()
	if err := dc.HandshakeContext(hctx); err != nil {
		dc.Close()
		pc.Close()
		if cause := context.Cause(rctx); cause != nil && ctx.Err() == nil {
			err = cause
		}
		return nil, fmt.Errorf("rudp: handshake with %s: %w", addr, v.explain(err))
	}
	recvErrors(pc, network == "udp6", false)
	return newDTLSConn(dc, opt, time.Since(start)), nil
}

// newDTLSConn starts the engine over a handshaken session. The handshake
// took at least two round trips, so half its duration seeds the RTT
// estimate: without it the first timeout and loss-detection wait are the
// 1 s of RFC 6298, long on a link where the first flight's acks were lost.
func newDTLSConn(dc *dtls.Conn, opt Options, handshake time.Duration) *Conn {
	c := newConn(dc, opt)
	c.dtls = dc
	if seed := handshake / 2; seed > 0 && seed < initialRTO {
		c.mu.Lock()
		c.rtt.sample(seed, time.Now())
		c.mu.Unlock()
	}
	// Fixed by the handshake; read once, since reading it means
	// serialising the session state.
	if st, ok := dc.ConnectionState(); ok {
		c.cid = connectionIDInUse(&st)
	}
	return c
}

// ConnState describes a session's security parameters.
type ConnState struct {
	Version          string // "DTLS 1.2"
	CipherSuite      string
	ConnectionID     bool // records carry a connection ID, so the session survives the client's address changing
	PeerCertificates []*x509.Certificate
}

// PeerCertificates returns the peer's certificate chain, leaf first; nil
// over a connection without DTLS.
func (c *Conn) PeerCertificates() []*x509.Certificate {
	if c.dtls == nil {
		return nil
	}
	st, ok := c.dtls.ConnectionState()
	if !ok {
		return nil
	}
	return parseChain(st.PeerCertificates)
}

func parseChain(raw [][]byte) []*x509.Certificate {
	var out []*x509.Certificate
	for _, r := range raw {
		cert, err := x509.ParseCertificate(r)
		if err != nil {
			return out // verified at the handshake; cannot fail here
		}
		out = append(out, cert)
	}
	return out
}

// State reports the negotiated parameters.
func (c *Conn) State() ConnState {
	if c.dtls == nil {
		return ConnState{}
	}
	st, ok := c.dtls.ConnectionState()
	if !ok {
		return ConnState{}
	}
	cs := ConnState{
		Version:          "DTLS 1.2", // the only version pion speaks
		CipherSuite:      dtls.CipherSuiteName(st.CipherSuiteID),
		PeerCertificates: parseChain(st.PeerCertificates),
	}
	cs.ConnectionID = c.cid
	return cs
}

// connectionIDInUse reports whether either direction's records carry a
// connection ID. Pion keeps the negotiated IDs unexported; its snapshot
// encoding is the one place that exposes them, so decode just those fields.
func connectionIDInUse(st *dtls.State) bool {
	b, err := st.MarshalBinary()
	if err != nil {
		return false
	}
	var ids struct{ LocalConnectionID, RemoteConnectionID []byte }
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&ids); err != nil {
		return false
	}
	return len(ids.LocalConnectionID) > 0 || len(ids.RemoteConnectionID) > 0
}
