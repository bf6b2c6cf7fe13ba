package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestInitCA(t *testing.T) {
	dir := newPKI(t)
	requireMode(t, dir, 0o700)
	requireMode(t, filepath.Join(dir, CAKeyFile), 0o600)
	requireMode(t, filepath.Join(dir, CACertFile), 0o644)
	requireNoTemp(t, dir)

	ca := readCert(t, filepath.Join(dir, CACertFile))
	require.Equal(t, "Weir CA test", ca.Subject.CommonName)
	require.Equal(t, ca.Subject.String(), ca.Issuer.String())
	require.NoError(t, ca.CheckSignatureFrom(ca))
	require.True(t, ca.BasicConstraintsValid)
	require.True(t, ca.IsCA)
	require.Equal(t, 0, ca.MaxPathLen)
	require.True(t, ca.MaxPathLenZero)
	require.Equal(t, x509.KeyUsageCertSign|x509.KeyUsageCRLSign, ca.KeyUsage)
	require.Len(t, ca.SubjectKeyId, 20)
	require.Equal(t, ca.SubjectKeyId, ca.AuthorityKeyId)
	require.Equal(t, testNow.Add(-5*time.Minute), ca.NotBefore)
	require.Equal(t, testNow.AddDate(10, 0, 0), ca.NotAfter)
	pub, ok := ca.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok, "CA key is %T", ca.PublicKey)
	require.Equal(t, elliptic.P256(), pub.Curve)

	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	require.NoError(t, err)
	block, _ := pem.Decode(keyPEM)
	require.NotNil(t, block)
	require.Equal(t, "PRIVATE KEY", block.Type)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	require.True(t, pub.Equal(key.(*ecdsa.PrivateKey).Public()))
}

func TestIssue(t *testing.T) {
	dir := newPKI(t)
	pool := caPool(t, dir)
	ca := readCert(t, filepath.Join(dir, CACertFile))

	tests := []struct {
		name      string
		issue     func() (string, string, error)
		wantCert  string
		wantKey   string
		usage     x509.ExtKeyUsage
		wrong     x509.ExtKeyUsage
		check     func(t *testing.T, c *x509.Certificate)
		verifyDNS string
	}{
		{
			name:     "gateway",
			issue:    func() (string, string, error) { return IssueGateway(dir, "plant1-line2.gw_7", testOpts()) },
			wantCert: "gateway-plant1-line2.gw_7.pem",
			wantKey:  "gateway-plant1-line2.gw_7-key.pem",
			usage:    x509.ExtKeyUsageClientAuth,
			wrong:    x509.ExtKeyUsageServerAuth,
			check: func(t *testing.T, c *x509.Certificate) {
				require.Equal(t, "plant1-line2.gw_7", c.Subject.CommonName)
				require.Equal(t, []*url.URL{{Scheme: "urn", Opaque: "weir:gateway:plant1-line2.gw_7"}}, c.URIs)
				require.Equal(t, "urn:weir:gateway:plant1-line2.gw_7", c.URIs[0].String())
				require.Empty(t, c.DNSNames)
				require.Empty(t, c.IPAddresses)
				id, err := GatewayID(c)
				require.NoError(t, err)
				require.Equal(t, "plant1-line2.gw_7", id)
			},
		},
		{
			name: "collector",
			issue: func() (string, string, error) {
				return IssueCollector(dir, "collector.example.net",
					[]string{"localhost", "127.0.0.1", "::1", "LOCALHOST", "127.0.0.1", "head-end"}, testOpts())
			},
			wantCert:  "collector-collector.example.net.pem",
			wantKey:   "collector-collector.example.net-key.pem",
			usage:     x509.ExtKeyUsageServerAuth,
			wrong:     x509.ExtKeyUsageClientAuth,
			verifyDNS: "head-end",
			check: func(t *testing.T, c *x509.Certificate) {
				require.Equal(t, "collector.example.net", c.Subject.CommonName)
				require.Equal(t, []string{"collector.example.net", "localhost", "head-end"}, c.DNSNames)
				require.Len(t, c.IPAddresses, 2)
				require.True(t, c.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")))
				require.True(t, c.IPAddresses[1].Equal(net.IPv6loopback))
				require.Empty(t, c.URIs)
				require.NoError(t, c.VerifyHostname("127.0.0.1"))
				require.NoError(t, c.VerifyHostname("collector.example.net"))
				require.Error(t, c.VerifyHostname("other.example.net"))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPath, keyPath, err := tt.issue()
			require.NoError(t, err)
			require.Equal(t, filepath.Join(dir, tt.wantCert), certPath)
			require.Equal(t, filepath.Join(dir, tt.wantKey), keyPath)
			requireMode(t, keyPath, 0o600)
			requireMode(t, certPath, 0o644)
			requireNoTemp(t, dir)

			c := readCert(t, certPath)
			tt.check(t, c)
			require.False(t, c.IsCA)
			require.True(t, c.BasicConstraintsValid)
			require.Equal(t, x509.KeyUsageDigitalSignature, c.KeyUsage)
			require.Equal(t, []x509.ExtKeyUsage{tt.usage}, c.ExtKeyUsage)
			require.Len(t, c.SubjectKeyId, 20)
			require.NotEqual(t, ca.SubjectKeyId, c.SubjectKeyId)
			require.Equal(t, ca.SubjectKeyId, c.AuthorityKeyId)
			require.Equal(t, testNow.Add(-5*time.Minute), c.NotBefore)
			require.Equal(t, testNow.AddDate(2, 0, 0), c.NotAfter)
			require.Positive(t, c.SerialNumber.Sign())
			require.LessOrEqual(t, c.SerialNumber.BitLen(), 128)
			require.NotEqual(t, ca.SerialNumber, c.SerialNumber)

			chains, err := c.Verify(x509.VerifyOptions{
				Roots:       pool,
				CurrentTime: testNow,
				KeyUsages:   []x509.ExtKeyUsage{tt.usage},
				DNSName:     tt.verifyDNS,
			})
			require.NoError(t, err)
			require.Len(t, chains, 1)
			require.Len(t, chains[0], 2)

			_, err = c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{tt.wrong}})
			require.Error(t, err, "certificate verified for the wrong usage")
			_, err = c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: testNow.AddDate(3, 0, 0), KeyUsages: []x509.ExtKeyUsage{tt.usage}})
			require.Error(t, err, "certificate verified after it expired")
			_, err = c.Verify(x509.VerifyOptions{Roots: x509.NewCertPool(), CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{tt.usage}})
			require.Error(t, err, "certificate verified without its CA")

			keyPEM, err := os.ReadFile(keyPath)
			require.NoError(t, err)
			block, _ := pem.Decode(keyPEM)
			require.NotNil(t, block)
			require.Equal(t, "PRIVATE KEY", block.Type)
			key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			require.NoError(t, err)
			require.True(t, c.PublicKey.(*ecdsa.PublicKey).Equal(key.(*ecdsa.PrivateKey).Public()))
		})
	}
}

func TestValidity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	opts := testOpts()
	opts.Validity = 365 * 24 * time.Hour
	require.NoError(t, InitCA(dir, "short", opts))
	ca := readCert(t, filepath.Join(dir, CACertFile))
	require.Equal(t, testNow.Add(opts.Validity), ca.NotAfter)

	tests := []struct {
		name     string
		validity time.Duration
		want     time.Time
	}{
		{"explicit", 30 * 24 * time.Hour, testNow.Add(30 * 24 * time.Hour)},
		{"default clamped to CA", 0, ca.NotAfter},
		{"explicit clamped to CA", 5 * 365 * 24 * time.Hour, ca.NotAfter},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOpts()
			o.Validity = tt.validity
			certPath, _, err := IssueGateway(dir, "gw"+string(rune('a'+i)), o)
			require.NoError(t, err)
			require.Equal(t, tt.want, readCert(t, certPath).NotAfter)
		})
	}

	t.Run("negative", func(t *testing.T) {
		o := testOpts()
		o.Validity = -time.Hour
		_, _, err := IssueGateway(dir, "neg", o)
		require.ErrorContains(t, err, "pki: validity -1h0m0s: must not be negative")
		require.ErrorContains(t, InitCA(t.TempDir(), "x", o), "must not be negative")
	})

	t.Run("CA expired", func(t *testing.T) {
		o := Options{Now: func() time.Time { return ca.NotAfter.Add(time.Second) }}
		_, _, err := IssueGateway(dir, "late", o)
		require.ErrorContains(t, err, "pki: CA certificate "+filepath.Join(dir, CACertFile)+" expired at 2027-03-01T12:00:00Z")
	})
}

func TestDefaultClock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	before := time.Now().Truncate(time.Second)
	require.NoError(t, InitCA(dir, "", Options{}))
	ca := readCert(t, filepath.Join(dir, CACertFile))
	require.Equal(t, "Weir CA", ca.Subject.CommonName)
	require.False(t, ca.NotBefore.Before(before.Add(-5*time.Minute)))
	require.False(t, ca.NotBefore.After(time.Now().Add(-5*time.Minute)))
}

func TestRefuseOverwrite(t *testing.T) {
	dir := newPKI(t)
	gwCert, gwKey := GatewayFiles(dir, "gw1")
	colCert, colKey := CollectorFiles(dir, "collector")

	tests := []struct {
		name  string
		run   func(opts Options) error
		files []string // the files the call writes, key first
	}{
		{
			name:  "CA",
			run:   func(o Options) error { return InitCA(dir, "test", o) },
			files: []string{filepath.Join(dir, CAKeyFile), filepath.Join(dir, CACertFile)},
		},
		{
			name:  "gateway",
			run:   func(o Options) error { _, _, err := IssueGateway(dir, "gw1", o); return err },
			files: []string{gwKey, gwCert},
		},
		{
			name:  "collector",
			run:   func(o Options) error { _, _, err := IssueCollector(dir, "collector", nil, o); return err },
			files: []string{colKey, colCert},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "CA" {
				require.NoError(t, tt.run(testOpts()))
			}
			before := make([][]byte, len(tt.files))
			for i, f := range tt.files {
				var err error
				before[i], err = os.ReadFile(f)
				require.NoError(t, err)
			}

			err := tt.run(testOpts())
			require.ErrorIs(t, err, fs.ErrExist)
			require.ErrorContains(t, err, "pki: ")
			require.True(t, strings.Contains(err.Error(), tt.files[0]) || strings.Contains(err.Error(), tt.files[1]), "error names no file: %v", err)
			for i, f := range tt.files {
				after, err := os.ReadFile(f)
				require.NoError(t, err)
				require.Equal(t, before[i], after, "%s changed without force", f)
			}

			// Only one of the two files present still blocks.
			require.NoError(t, os.Remove(tt.files[0]))
			err = tt.run(testOpts())
			require.ErrorIs(t, err, fs.ErrExist)
			require.ErrorContains(t, err, tt.files[1])
			_, err = os.Stat(tt.files[0])
			require.ErrorIs(t, err, fs.ErrNotExist, "key written although the call was refused")

			o := testOpts()
			o.Force = true
			require.NoError(t, tt.run(o))
			for i, f := range tt.files {
				after, err := os.ReadFile(f)
				require.NoError(t, err)
				require.NotEqual(t, before[i], after, "%s not replaced with force", f)
			}
			requireMode(t, tt.files[0], 0o600)
			requireMode(t, tt.files[1], 0o644)
			requireNoTemp(t, dir)
		})
	}
}

func TestForceReplacesLooseKeyMode(t *testing.T) {
	dir := newPKI(t)
	certPath, keyPath := GatewayFiles(dir, "gw1")
	require.NoError(t, os.WriteFile(keyPath, []byte("old"), 0o644))
	require.NoError(t, os.Chmod(keyPath, 0o644))
	o := testOpts()
	o.Force = true
	_, _, err := IssueGateway(dir, "gw1", o)
	require.NoError(t, err)
	requireMode(t, keyPath, 0o600)
	requireMode(t, certPath, 0o644)
}

func TestLoadCAErrors(t *testing.T) {
	other := newPKI(t)
	otherKey, err := os.ReadFile(filepath.Join(other, CAKeyFile))
	require.NoError(t, err)
	leafCert, _, err := IssueGateway(other, "gw", testOpts())
	require.NoError(t, err)
	leafPEM, err := os.ReadFile(leafCert)
	require.NoError(t, err)

	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    string // with %s for dir
	}{
		{
			name:    "no directory",
			prepare: func(t *testing.T, dir string) { require.NoError(t, os.RemoveAll(dir)) },
			want:    "pki: read CA certificate %s/ca.pem: no such file or directory",
		},
		{
			name:    "missing key",
			prepare: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, CAKeyFile))) },
			want:    "pki: read CA key %s/ca-key.pem: no such file or directory",
		},
		{
			name: "garbage key",
			prepare: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("not a key"), 0o600))
			},
			want: "pki: read CA key %s/ca-key.pem: no PEM block of type PRIVATE KEY or EC PRIVATE KEY",
		},
		{
			name: "corrupt key",
			prepare: func(t *testing.T, dir string) {
				data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x00}})
				require.NoError(t, os.WriteFile(filepath.Join(dir, CAKeyFile), data, 0o600))
			},
			want: "pki: read CA key %s/ca-key.pem: asn1:",
		},
		{
			name: "garbage certificate",
			prepare: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, CACertFile), []byte("junk"), 0o644))
			},
			want: "pki: read CA certificate %s/ca.pem: no PEM block of type CERTIFICATE",
		},
		{
			name: "corrupt certificate",
			prepare: func(t *testing.T, dir string) {
				data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})
				require.NoError(t, os.WriteFile(filepath.Join(dir, CACertFile), data, 0o644))
			},
			want: "pki: read CA certificate %s/ca.pem: x509:",
		},
		{
			name: "key of another CA",
			prepare: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, CAKeyFile), otherKey, 0o600))
			},
			want: "pki: CA key %[1]s/ca-key.pem does not belong to certificate %[1]s/ca.pem",
		},
		{
			name: "leaf as CA",
			prepare: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, CACertFile), leafPEM, 0o644))
			},
			want: "pki: CA certificate %s/ca.pem: not a CA",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newPKI(t)
			tt.prepare(t, dir)
			_, _, err := IssueGateway(dir, "gw1", testOpts())
			require.ErrorContains(t, err, sprintfDir(tt.want, dir))
			_, _, err = IssueCollector(dir, "collector", nil, testOpts())
			require.ErrorContains(t, err, sprintfDir(tt.want, dir))
			cert, key := GatewayFiles(dir, "gw1")
			for _, f := range []string{cert, key} {
				_, err := os.Stat(f)
				require.ErrorIs(t, err, fs.ErrNotExist)
			}
		})
	}
}

func sprintfDir(format, dir string) string {
	return strings.NewReplacer("%[1]s", dir, "%s", dir).Replace(format)
}

func TestLoadCASEC1Key(t *testing.T) {
	// A CA key as openssl writes it ("EC PRIVATE KEY", with parameters first).
	dir := newPKI(t)
	keyPath := filepath.Join(dir, CAKeyFile)
	data, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	sec1, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	require.NoError(t, err)
	out := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...)
	require.NoError(t, os.WriteFile(keyPath, out, 0o600))

	certPath, _, err := IssueGateway(dir, "gw1", testOpts())
	require.NoError(t, err)
	_, err = readCert(t, certPath).Verify(x509.VerifyOptions{
		Roots: caPool(t, dir), CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	require.NoError(t, err)
}

func TestIssueRejectsBadNames(t *testing.T) {
	dir := newPKI(t)
	tests := []struct {
		name  string
		issue func() error
		want  string
	}{
		{"gateway empty", func() error { _, _, err := IssueGateway(dir, "", testOpts()); return err }, "pki: gateway id: empty"},
		{"gateway traversal", func() error { _, _, err := IssueGateway(dir, "../x", testOpts()); return err }, `pki: gateway id "../x"`},
		{"collector empty", func() error { _, _, err := IssueCollector(dir, "", nil, testOpts()); return err }, "pki: collector host: empty"},
		{"collector slash", func() error { _, _, err := IssueCollector(dir, "a/b", nil, testOpts()); return err }, `pki: collector host "a/b": contains a path separator`},
		{"collector backslash", func() error { _, _, err := IssueCollector(dir, `a\b`, nil, testOpts()); return err }, "contains a path separator"},
		{"collector dotdot", func() error { _, _, err := IssueCollector(dir, "..", nil, testOpts()); return err }, `pki: collector host "..": empty label`},
		{"collector bad extra", func() error {
			_, _, err := IssueCollector(dir, "ok", []string{"fine", "bad name"}, testOpts())
			return err
		}, `pki: collector host "bad name": character ' ' is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorContains(t, tt.issue(), tt.want)
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "only the CA files may exist")
	_, err = os.Stat(filepath.Join(filepath.Dir(dir), "x.pem"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}
