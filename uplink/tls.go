package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
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

// Only AEAD suites with forward secrecy; TLS 1.3's suites are all of that
// kind and are not configurable.
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func (c TLSConfig) load() (tls.Certificate, *x509.CertPool, error) {
	certPEM, err := os.ReadFile(c.Cert)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM := []byte(c.KeyPEM)
	if c.Key != "" {
		if keyPEM, err = os.ReadFile(c.Key); err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("read key: %w", err)
		}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("certificate %s and its key: %w", c.Cert, err)
	}
	caPEM, err := os.ReadFile(c.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, fmt.Errorf("CA bundle %s holds no PEM certificate", c.CA)
	}
	return pair, pool, nil
}

// ClientTLS builds the gateway side's configuration. The files are read on
// each call, and the sender calls it for every connection, so renewed
// certificates are used from the next handshake on without a restart.
func ClientTLS(c TLSConfig, serverName string) (*tls.Config, error) {
	pair, pool, err := c.load()
	if err != nil {
		return nil, fmt.Errorf("uplink: tls: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: aeadSuites,
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ServerName:   serverName,
	}, nil
}

// ServerTLS builds the collector side's configuration: client certificates
// signed by the CA are required.
func ServerTLS(c TLSConfig) (*tls.Config, error) {
	pair, pool, err := c.load()
	if err != nil {
		return nil, fmt.Errorf("uplink: tls: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: aeadSuites,
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}
