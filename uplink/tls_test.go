package uplink

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink/pki"
)

func TestIdentityPicksUpRenewedFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, pki.InitCA(dir, "test", pki.Options{}))
	cert, key, err := pki.IssueGateway(dir, "gw-1", pki.Options{Validity: 24 * time.Hour})
	require.NoError(t, err)
	id := NewIdentity(TLSConfig{CA: filepath.Join(dir, pki.CACertFile), Cert: cert, Key: key})
	own, ca := id.Expiry()
	require.WithinDuration(t, time.Now().Add(24*time.Hour), own, time.Minute)
	require.False(t, ca.IsZero())
	c1, err := id.ClientConfig("localhost")
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS12), c1.MinVersion)
	require.Equal(t, AEADSuites(), c1.CipherSuites)

	// Renewed in place (a new modification time): the next config has it.
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(cert, old, old))
	_, _, err = pki.IssueGateway(dir, "gw-1", pki.Options{Force: true, Validity: 48 * time.Hour})
	require.NoError(t, err)
	c2, err := id.ClientConfig("localhost")
	require.NoError(t, err)
	p1, err := c1.GetClientCertificate(nil)
	require.NoError(t, err)
	p2, err := c2.GetClientCertificate(nil)
	require.NoError(t, err)
	require.NotEqual(t, p1.Certificate[0], p2.Certificate[0])
	own, _ = id.Expiry()
	require.WithinDuration(t, time.Now().Add(48*time.Hour), own, time.Minute)

	// The server side re-reads at each handshake.
	scert, skey, err := pki.IssueCollector(dir, "localhost", nil, pki.Options{})
	require.NoError(t, err)
	sid := NewIdentity(TLSConfig{CA: filepath.Join(dir, pki.CACertFile), Cert: scert, Key: skey})
	sc, err := sid.ServerConfig()
	require.NoError(t, err)
	require.Equal(t, tls.RequireAndVerifyClientCert, sc.ClientAuth)
	before, err := sc.GetConfigForClient(nil)
	require.NoError(t, err)
	require.NoError(t, os.Chtimes(scert, old, old))
	_, _, err = pki.IssueCollector(dir, "localhost", nil, pki.Options{Force: true})
	require.NoError(t, err)
	after, err := sc.GetConfigForClient(nil)
	require.NoError(t, err)
	require.NotEqual(t, before.Certificates[0].Certificate[0], after.Certificates[0].Certificate[0])

	// A half-renewed pair fails loudly rather than serving a stale one.
	require.NoError(t, os.WriteFile(skey, []byte("not a key"), 0o600))
	_, err = sc.GetConfigForClient(nil)
	require.ErrorContains(t, err, "uplink: tls:")
}

func TestCheckOwn(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	require.NoError(t, pki.InitCA(dir, "test", pki.Options{}))
	require.NoError(t, pki.InitCA(other, "other", pki.Options{}))
	past := func() time.Time { return time.Now().Add(-72 * time.Hour) }
	cases := []struct {
		name string
		opts pki.Options
		ca   string
		want Reason
	}{
		{"fine", pki.Options{}, dir, ReasonNone},
		{"expired", pki.Options{Now: past, Validity: time.Hour}, dir, ReasonExpired},
		{"other CA", pki.Options{}, other, ReasonUnknownCA},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Force = true
			cert, key, err := pki.IssueGateway(dir, "gw-1", c.opts)
			require.NoError(t, err)
			r, _ := NewIdentity(TLSConfig{CA: filepath.Join(c.ca, pki.CACertFile), Cert: cert, Key: key}).CheckOwn(time.Now())
			require.Equal(t, c.want, r)
		})
	}
}
