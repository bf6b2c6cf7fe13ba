package ui

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a leaf: a server's for names, or a client's, optionally
// naming a gateway the way pki.IssueGateway does.
func (ca *testCA) issue(t *testing.T, cn string, server bool, uris ...string) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	for _, u := range uris {
		pu, err := url.Parse(u)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePair(t *testing.T, dir, name string, c tls.Certificate) (string, string) {
	certPath, keyPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	require.NoError(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644))
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return certPath, keyPath
}

// The page exposed beyond loopback: TLS, an operator's certificate
// required, a gateway's refused even when the operators' CA signed it,
// and connections past the per-address bound closed before a byte.
func TestExposedWithClientCertificates(t *testing.T) {
	now := time.Now()
	s := testStore(t, now)
	feedHealthy(s, "gw-1", now, 0)
	dir := t.TempDir()
	serverCA, operators := newTestCA(t, "head-end"), newTestCA(t, "operators")
	certPath, keyPath := writePair(t, dir, "server", serverCA.issue(t, "fleet", true))
	opsPath := filepath.Join(dir, "operators.pem")
	require.NoError(t, os.WriteFile(opsPath, operators.pem, 0o644))

	cfg := DefaultConfig()
	cfg.Listen, cfg.Cert, cfg.Key, cfg.ClientCA = "0.0.0.0:0", certPath, keyPath, opsPath
	cfg.MaxConnsPerAddr = 3
	require.NoError(t, cfg.Validate())
	srv, err := New(cfg, s, nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	roots := x509.NewCertPool()
	roots.AddCert(serverCA.cert)
	get := func(client *tls.Certificate) (int, error) {
		tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if client != nil {
			tc.Certificates = []tls.Certificate{*client}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
		defer c.CloseIdleConnections()
		resp, err := c.Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	_, err = get(nil)
	assert.Error(t, err, "no certificate, no page")
	stranger := newTestCA(t, "stranger").issue(t, "someone", false)
	_, err = get(&stranger)
	assert.Error(t, err, "a certificate of another CA")
	op := operators.issue(t, "operator-anna", false)
	code, err := get(&op)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	gw := operators.issue(t, "gw-1", false, "urn:weir:gateway:gw-1")
	code, err = get(&gw)
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, code, "a gateway's certificate")

	// Three idle connections from one address hold its share; a fourth
	// is closed at once.
	open := func() int {
		srv.lim.mu.Lock()
		defer srv.lim.mu.Unlock()
		return srv.lim.n
	}
	require.Eventually(t, func() bool { return open() == 0 }, 5*time.Second, 10*time.Millisecond, "the clients' connections closed")
	var idle []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		idle = append(idle, c)
	}
	require.Eventually(t, func() bool { return open() == 3 }, 5*time.Second, 10*time.Millisecond)
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "closed before its handshake")
	c.Close()
	for _, c := range idle {
		c.Close()
	}
	require.Eventually(t, func() bool { return open() == 0 }, 5*time.Second, 10*time.Millisecond)
	code, err = get(&op)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "the address's share comes back")
}
