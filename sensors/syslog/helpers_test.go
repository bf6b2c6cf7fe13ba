package syslog

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// fakeSink collects records. While blocked, Emit waits (a slow spool).
type fakeSink struct {
	mu      sync.Mutex
	evs     []event.Event
	calls   int
	gate    chan struct{} // when not nil, Emit waits for it to be closed
	arrived chan struct{} // signalled after every Emit
}

func newFakeSink() *fakeSink { return &fakeSink{arrived: make(chan struct{}, 1)} }

func (f *fakeSink) Emit(ctx context.Context, evs []event.Event, cps []spool.Checkpoint) error {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(evs) > maxBatch {
		panic("batch too large")
	}
	f.mu.Lock()
	for _, e := range evs {
		e.Fields = append([]event.Field(nil), e.Fields...)
		f.evs = append(f.evs, e)
	}
	f.calls++
	f.mu.Unlock()
	select {
	case f.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (f *fakeSink) events() []event.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]event.Event(nil), f.evs...)
}

// waitFor waits until cond holds over the records, failing after 10 s.
func (f *fakeSink) waitFor(t *testing.T, what string, cond func([]event.Event) bool) []event.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		evs := f.events()
		if cond(evs) {
			return evs
		}
		select {
		case <-f.arrived:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; have %d records", what, len(evs))
		}
	}
}

func countWith(evs []event.Event, key, val string) int {
	n := 0
	for _, e := range evs {
		if fieldMap(e.Fields)[key].String() == val {
			n++
		}
	}
	return n
}

func findMessage(evs []event.Event, msg string) *event.Event {
	for i := range evs {
		if evs[i].Message == msg {
			return &evs[i]
		}
	}
	return nil
}

// startServer runs a server on cfg with a fake sink until the test ends.
func startServer(t *testing.T, cfg Config) (*Server, *fakeSink) {
	t.Helper()
	s, err := New(cfg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, s.Listen(ctx))
	sink := newFakeSink()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return s, sink
}

// loopbackConfig has every listener on an ephemeral loopback port and no
// rate limit.
func loopbackConfig(t *testing.T, pki *testPKI) Config {
	cfg := DefaultConfig()
	cfg.UDP.Listen, cfg.TCP.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.RateLimit = RateLimitConfig{}
	cfg.Timezone = "UTC"
	if pki != nil {
		cfg.TLS = TLSConfig{Listen: "127.0.0.1:0", CertFile: pki.serverCert, KeyFile: pki.serverKey,
			ClientCAFile: pki.caCert, ClientAuth: ClientAuthRequire}
	}
	return cfg
}

// testPKI is a CA, a server certificate for localhost and 127.0.0.1, and
// a client certificate (CN plc7), ECDSA P-256, as PEM files.
type testPKI struct {
	dir                           string
	caCert, serverCert, serverKey string
	clientCert, clientKey         string
	caPool                        *x509.CertPool
	client                        tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "weir test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err = x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p.caCert = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	p.caPool = x509.NewCertPool()
	p.caPool.AddCert(ca)

	issue := func(name string, serial int64, usage x509.ExtKeyUsage, dns []string, ips []net.IP) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: dns, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "PRIVATE KEY", kder)
	}
	p.serverCert, p.serverKey = issue("localhost", 2, x509.ExtKeyUsageServerAuth, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.clientCert, p.clientKey = issue("plc7", 3, x509.ExtKeyUsageClientAuth, []string{"plc7"}, nil)
	p.client, err = tls.LoadX509KeyPair(p.clientCert, p.clientKey)
	require.NoError(t, err)
	return p
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

func (p *testPKI) clientConfig(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: p.caPool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if withCert {
		c.Certificates = []tls.Certificate{p.client}
	}
	return c
}
