package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSConfig names the files of one side's mutual-TLS identity.
type TLSConfig struct {
	CA     string `mapstructure:"ca" yaml:"ca"`           // CA bundle that signed the peer
	Cert   string `mapstructure:"cert" yaml:"cert"`       // own certificate chain (PEM)
	Key    string `mapstructure:"key" yaml:"key"`         // own private key file (PEM)
	KeyPEM string `mapstructure:"key_pem" yaml:"key_pem"` // the key inline, e.g. from WEIR_UPLINK_TLS_KEY_PEM; a secret
}

// Validate checks that an identity is named, without reading files.
func (c TLSConfig) Validate() error {
	var errs []error
	if c.CA == "" {
		errs = append(errs, errors.New("ca: required"))
	}
	if c.Cert == "" {
		errs = append(errs, errors.New("cert: required"))
	}
	if c.Key == "" && c.KeyPEM == "" {
		errs = append(errs, errors.New("key: required (or key_pem)"))
	}
	if c.Key != "" && c.KeyPEM != "" {
		errs = append(errs, errors.New("key, key_pem: set one, not both"))
	}
	return errors.Join(errs...)
}

// AEADSuites are the TLS 1.2 suites allowed: AEAD with forward secrecy
// only. TLS 1.3's suites are all of that kind and are not configurable.
func AEADSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// Identity is a TLSConfig's files, loaded and reloaded when any of them
// changes (size or modification time, checked with a stat at each
// handshake), so renewed certificates, keys and CA bundles are used from
// the next handshake on without a restart. Safe for concurrent use.
type Identity struct {
	cfg TLSConfig

	mu     sync.Mutex
	stamps [3]stamp
	loaded bool
	pair   tls.Certificate
	pool   *x509.CertPool
	leaf   *x509.Certificate
	cas    []*x509.Certificate
}

type stamp struct {
	mod  time.Time
	size int64
}

// NewIdentity reads nothing until first used.
func NewIdentity(c TLSConfig) *Identity { return &Identity{cfg: c} }

func statFile(path string) stamp {
	if path == "" {
		return stamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{size: -1}
	}
	return stamp{mod: fi.ModTime(), size: fi.Size()}
}

// current returns the loaded identity, reloading it when a file changed.
// A reload that fails keeps nothing stale: the error is returned, so a
// half-renewed pair (new certificate, old key) fails the handshake loudly
// until both are in place.
func (id *Identity) current() (tls.Certificate, *x509.CertPool, error) {
	st := [3]stamp{statFile(id.cfg.CA), statFile(id.cfg.Cert), statFile(id.cfg.Key)}
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.loaded && st == id.stamps {
		return id.pair, id.pool, nil
	}
	pair, pool, cas, err := id.cfg.load()
	if err != nil {
		id.loaded = false
		return tls.Certificate{}, nil, fmt.Errorf("uplink: tls: %w", err)
	}
	id.pair, id.pool, id.cas, id.stamps, id.loaded = pair, pool, cas, st, true
	id.leaf = pair.Leaf
	return pair, pool, nil
}

// Expiry reports when the own certificate and the earliest CA in the bundle
// expire (zero if they cannot be read).
func (id *Identity) Expiry() (own, ca time.Time) {
	if _, _, err := id.current(); err != nil {
		return time.Time{}, time.Time{}
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.leaf != nil {
		own = id.leaf.NotAfter
	}
	for _, c := range id.cas {
		if ca.IsZero() || c.NotAfter.Before(ca) {
			ca = c.NotAfter
		}
	}
	return own, ca
}

// Leaf is the own certificate as loaded now.
func (id *Identity) Leaf() (*x509.Certificate, error) {
	if _, _, err := id.current(); err != nil {
		return nil, err
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.leaf, nil
}

// ClientConfig is the gateway side's configuration for one handshake.
func (id *Identity) ClientConfig(serverName string) (*tls.Config, error) {
	pair, pool, err := id.current()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: AEADSuites(),
		// Always present the certificate. Given Certificates, crypto/tls
		// withholds one the server's CA list does not name, and the
		// collector could only log "no certificate" instead of why it is
		// wrong (signed by another CA).
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil },
		RootCAs:              pool,
		ServerName:           serverName,
	}, nil
}

// ServerConfig is the collector side's configuration: client certificates
// signed by the CA are required, and every handshake takes the files as
// they are then (GetConfigForClient).
func (id *Identity) ServerConfig() (*tls.Config, error) {
	return id.ServerConfigAuth(tls.RequireAndVerifyClientCert)
}

// ServerConfigAuth is ServerConfig with another client certificate policy
// (a syslog listener may take senders without one).
func (id *Identity) ServerConfigAuth(auth tls.ClientAuthType) (*tls.Config, error) {
	build := func() (*tls.Config, error) {
		pair, pool, err := id.current()
		if err != nil {
			return nil, err
		}
		return &tls.Config{
			MinVersion:   tls.VersionTLS12,
			CipherSuites: AEADSuites(),
			Certificates: []tls.Certificate{pair},
			ClientCAs:    pool,
			ClientAuth:   auth,
		}, nil
	}
	base, err := build()
	if err != nil {
		return nil, err
	}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return build() }
	return base, nil
}

func (c TLSConfig) load() (tls.Certificate, *x509.CertPool, []*x509.Certificate, error) {
	certPEM, err := os.ReadFile(c.Cert)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM := []byte(c.KeyPEM)
	if c.Key != "" {
		if keyPEM, err = os.ReadFile(c.Key); err != nil {
			return tls.Certificate{}, nil, nil, fmt.Errorf("read key: %w", err)
		}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("certificate %s and its key: %w", c.Cert, err)
	}
	if c.CA == "" {
		// A server that does not verify clients (syslog's client_auth
		// none); the uplink's configuration always names a CA.
		return pair, nil, nil, nil
	}
	caPEM, err := os.ReadFile(c.CA)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	var cas []*x509.Certificate
	for rest := caPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return tls.Certificate{}, nil, nil, fmt.Errorf("CA bundle %s: %w", c.CA, err)
		}
		pool.AddCert(cert)
		cas = append(cas, cert)
	}
	if len(cas) == 0 {
		return tls.Certificate{}, nil, nil, fmt.Errorf("CA bundle %s holds no PEM certificate", c.CA)
	}
	return pair, pool, cas, nil
}

// ClientTLS builds the gateway side's configuration from the files as they
// are now.
func ClientTLS(c TLSConfig, serverName string) (*tls.Config, error) {
	return NewIdentity(c).ClientConfig(serverName)
}

// ServerTLS builds the collector side's configuration; it re-reads the
// files (when changed) at every handshake.
func ServerTLS(c TLSConfig) (*tls.Config, error) {
	return NewIdentity(c).ServerConfig()
}

// Config is the file names the identity reads.
func (id *Identity) Config() TLSConfig { return id.cfg }

// CheckOwn says what is wrong with the own certificate at now, if anything
// the peer would refuse: expired or not yet valid, or not signed by the CA
// bundle (the usual deployment has one CA for both sides). It helps explain
// a peer's bare "bad certificate" alert.
func (id *Identity) CheckOwn(now time.Time) (Reason, error) {
	if _, _, err := id.current(); err != nil {
		return ReasonOther, err
	}
	id.mu.Lock()
	leaf, pool := id.leaf, id.pool
	id.mu.Unlock()
	if leaf == nil {
		return ReasonNone, nil
	}
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return ReasonExpired, fmt.Errorf("own certificate %s is valid %s to %s", id.cfg.Cert,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
			return ReasonUnknownCA, fmt.Errorf("own certificate %s is not signed by a CA in %s", id.cfg.Cert, id.cfg.CA)
		}
	}
	return ReasonNone, nil
}
