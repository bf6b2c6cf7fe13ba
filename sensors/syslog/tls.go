package syslog

import (
	"crypto/tls"
	"fmt"

	"github.com/weirgw/weir/uplink"
)

// newTLSConfig makes the listener's TLS configuration with uplink's
// Identity, as the collector's: the files are loaded now, so that a bad
// file fails at start, and loaded again at a handshake only when one of
// them changed (a stat each), so a renewed certificate or CA bundle takes
// effect without a restart while a port scan costs no file reads or key
// parsing. TLS 1.2 with AEAD suites only, or 1.3.
func newTLSConfig(c TLSConfig) (*tls.Config, error) {
	files := uplink.TLSConfig{Cert: c.CertFile, Key: c.KeyFile}
	auth := tls.NoClientCert
	switch c.ClientAuth {
	case ClientAuthRequest:
		files.CA, auth = c.ClientCAFile, tls.VerifyClientCertIfGiven
	case ClientAuthRequire, "":
		files.CA, auth = c.ClientCAFile, tls.RequireAndVerifyClientCert
	}
	cfg, err := uplink.NewIdentity(files).ServerConfigAuth(auth)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file %s, tls.key_file %s, tls.client_ca_file %q: %w", c.CertFile, c.KeyFile, files.CA, err)
	}
	return cfg, nil
}

// peerName is the verified client certificate's subject, "" without one.
func peerName(cs tls.ConnectionState) string {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return ""
	}
	return cs.VerifiedChains[0][0].Subject.String()
}

// authenticated says the peer presented a client certificate that was
// verified against tls.client_ca_file (mutual TLS): with client_auth
// require always, with request only when the client sent one.
func authenticated(cs tls.ConnectionState) bool {
	return len(cs.VerifiedChains) > 0
}
