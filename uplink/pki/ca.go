package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// InitCA creates dir (0700) and a new CA in it: an ECDSA P-256 key and a
// self-signed certificate with CommonName "Weir CA <name>", allowed to sign
// leaf certificates only (MaxPathLen 0).
func InitCA(dir, name string, opts Options) error {
	if err := opts.validate(); err != nil {
		return err
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return fmt.Errorf("pki: CA name %q: contains a control character", name)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: create %s: %w", dir, err)
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if !opts.Force {
		if err := refuseExisting(certPath, keyPath); err != nil {
			return err
		}
	}

	key, keyPEM, err := newKey()
	if err != nil {
		return err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return err
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := opts.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: strings.TrimSpace("Weir CA " + name)},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              opts.notAfter(now, caYears),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
		AuthorityKeyId:        skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("pki: create CA certificate: %w", err)
	}
	return writeFiles(opts.Force,
		file{path: keyPath, data: keyPEM, mode: 0o600},
		file{path: certPath, data: certPEM(der), mode: 0o644},
	)
}

// authority is a CA loaded from a PKI directory.
type authority struct {
	cert     *x509.Certificate
	key      crypto.Signer
	certPath string
}

// loadCA reads and checks the CA certificate and key in dir.
func loadCA(dir string) (*authority, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)

	data, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA certificate %s: %w", certPath, bare(err))
	}
	block, err := findPEM(data, "CERTIFICATE")
	if err != nil {
		return nil, fmt.Errorf("pki: read CA certificate %s: %w", certPath, err)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA certificate %s: %w", certPath, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("pki: CA certificate %s: not a CA (no basic constraints CA or no certificate-sign key usage)", certPath)
	}

	data, err = os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key %s: %w", keyPath, bare(err))
	}
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key %s: %w", keyPath, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: CA key %s does not belong to certificate %s", keyPath, certPath)
	}
	return &authority{cert: cert, key: key, certPath: certPath}, nil
}

// findPEM returns the first PEM block of one of the given types.
func findPEM(data []byte, types ...string) (*pem.Block, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("no PEM block of type %s", strings.Join(types, " or "))
		}
		for _, t := range types {
			if block.Type == t {
				return block, nil
			}
		}
	}
}

// parseKey reads a PKCS#8 key, or a SEC 1 EC key as openssl writes it.
func parseKey(data []byte) (crypto.Signer, error) {
	block, err := findPEM(data, "PRIVATE KEY", "EC PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	if block.Type == "EC PRIVATE KEY" {
		return x509.ParseECPrivateKey(block.Bytes)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", key)
	}
	return signer, nil
}

// bare drops the path from a file system error whose message names the
// path already.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
