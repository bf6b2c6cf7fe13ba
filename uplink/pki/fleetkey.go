package pki

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Files of the fleet key in a PKI directory: the private key signs
// configuration bundles (weir-collector fleet sign) and belongs offline
// like the CA key; the public key is pinned in every gateway's file.
const (
	FleetKeyFile = "fleet-key.pem"
	FleetPubFile = "fleet-key.pub"
)

// fleetKeyPrefix starts a fleet public key written as text.
const fleetKeyPrefix = "ed25519:"

// NewFleetKey generates an ed25519 fleet key in dir: the private key
// (PKCS#8 PEM, mode 0600) and the public key as one line (mode 0644),
// the form a gateway's fleet.keys takes. Existing files are kept unless
// opts.Force.
func NewFleetKey(dir string, opts Options) (keyPath, pubPath string, pub ed25519.PublicKey, err error) {
	keyPath, pubPath = filepath.Join(dir, FleetKeyFile), filepath.Join(dir, FleetPubFile)
	if !opts.Force {
		if err := refuseExisting(keyPath, pubPath); err != nil {
			return "", "", nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", nil, fmt.Errorf("pki: %s: %w", dir, err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", nil, fmt.Errorf("pki: generate fleet key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", nil, fmt.Errorf("pki: encode fleet key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := writeFiles(opts.Force,
		file{path: keyPath, data: keyPEM, mode: 0o600},
		file{path: pubPath, data: []byte(FormatFleetKey(pub) + "\n"), mode: 0o644}); err != nil {
		return "", "", nil, err
	}
	return keyPath, pubPath, pub, nil
}

// LoadFleetKey reads a fleet private key. A file others can read is
// refused: whoever holds the key configures the fleet.
func LoadFleetKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("pki: fleet key %s: %w", path, bare(err))
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("pki: fleet key %s: readable by others (mode %04o); chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: fleet key %s: %w", path, bare(err))
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("pki: fleet key %s: no PRIVATE KEY PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: fleet key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: fleet key %s: a %T, not an ed25519 key", path, k)
	}
	return priv, nil
}

// FormatFleetKey writes a fleet public key as text: ed25519:<base64>.
func FormatFleetKey(pub ed25519.PublicKey) string {
	return fleetKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParseFleetKey reads a fleet public key written by FormatFleetKey, or
// the file holding it (fleet-key.pub).
func ParseFleetKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, fleetKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%q is not an ed25519 public key (ed25519:<base64>, as weir-collector pki fleet-key writes it)", clip(s))
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q is not an ed25519 public key: want %d bytes in base64", clip(s), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// ReadFleetKey reads a public key from a file, or takes s as the key
// itself when it is one.
func ReadFleetKey(s string) (ed25519.PublicKey, error) {
	if strings.HasPrefix(strings.TrimSpace(s), fleetKeyPrefix) {
		return ParseFleetKey(s)
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return nil, fmt.Errorf("pki: fleet public key %s: %w", s, bare(err))
	}
	pub, err := ParseFleetKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("pki: fleet public key %s: %w", s, err)
	}
	return pub, nil
}

// FleetKeyID names a fleet public key in signatures and messages: the
// first 8 bytes of its SHA-256, in hex.
func FleetKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

var errNotSigned = errors.New("not a signed bundle: its last line is not a weir-signature")
