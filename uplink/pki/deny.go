package pki

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
)

// DenyFile is the deny list's name in a PKI directory: `weir-collector pki
// revoke` writes it there, and `weir-collector run` reads the one beside
// its CA bundle unless told otherwise.
const DenyFile = "denied.txt"

// Limits on a deny list file.
const (
	maxDenyFile = 16 << 20
	maxDenyLine = 4096
)

// DenyList is a collector's list of revoked gateways: gateway ids (every
// certificate naming the id is refused) and certificate serials (that one
// certificate is, so a gateway can be re-keyed under its id). The file has
// one entry per line, a '#' starting a comment:
//
//	gateway pump-station-3   # revoked 2026-03-01: SD card stolen
//	serial 5f3a0c...         # gateway-pump-station-7.pem, re-keyed
type DenyList struct {
	ids     map[string]bool
	serials map[string]bool
}

// Len is the number of entries.
func (d *DenyList) Len() int {
	if d == nil {
		return 0
	}
	return len(d.ids) + len(d.serials)
}

// Denied reports why the certificate of gateway id is refused, if it is.
func (d *DenyList) Denied(id string, cert *x509.Certificate) (string, bool) {
	if d == nil {
		return "", false
	}
	if d.ids[id] {
		return fmt.Sprintf("gateway %s is revoked", id), true
	}
	if cert != nil && cert.SerialNumber != nil && d.serials[cert.SerialNumber.Text(16)] {
		return fmt.Sprintf("certificate serial %s is revoked", cert.SerialNumber.Text(16)), true
	}
	return "", false
}

// DenyEntry is one line of a deny list.
type DenyEntry struct {
	Kind  string // "gateway" or "serial"
	Value string // a gateway id, or a serial in hex
	Note  string // written as a comment
}

// parseSerial takes a serial in hex, with or without colons or a 0x
// prefix, and returns its canonical form (lower case, no leading zeros).
func parseSerial(s string) (string, error) {
	h := strings.TrimPrefix(strings.ToLower(strings.ReplaceAll(s, ":", "")), "0x")
	if h == "" || len(h) > 40 {
		return "", fmt.Errorf("serial %q: want 1 to 40 hex digits (RFC 5280 serials are at most 20 bytes)", clip(s))
	}
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || n.Sign() < 0 {
		return "", fmt.Errorf("serial %q: not hex", clip(s))
	}
	return n.Text(16), nil
}

func (e DenyEntry) canonical() (DenyEntry, error) {
	switch e.Kind {
	case "gateway":
		if err := ValidateID(e.Value); err != nil {
			return e, err
		}
	case "serial":
		v, err := parseSerial(e.Value)
		if err != nil {
			return e, fmt.Errorf("pki: %w", err)
		}
		e.Value = v
	default:
		return e, fmt.Errorf("pki: deny entry kind %q: want gateway or serial", clip(e.Kind))
	}
	if strings.ContainsAny(e.Note, "\r\n") {
		return e, errors.New("pki: deny entry note: contains a line break")
	}
	return e, nil
}

// ParseDenyList reads a deny list; name is used in errors.
func ParseDenyList(r io.Reader, name string) (*DenyList, error) {
	d := &DenyList{ids: map[string]bool{}, serials: map[string]bool{}}
	sc := bufio.NewScanner(io.LimitReader(r, maxDenyFile+1))
	sc.Buffer(make([]byte, 0, 512), maxDenyLine)
	var size int
	for n := 1; sc.Scan(); n++ {
		size += len(sc.Bytes()) + 1
		if size > maxDenyFile {
			return nil, fmt.Errorf("pki: deny list %s: larger than %d bytes", name, maxDenyFile)
		}
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("pki: deny list %s line %d: want \"gateway ID\" or \"serial HEX\", got %d fields", name, n, len(f))
		}
		e, err := DenyEntry{Kind: f[0], Value: f[1]}.canonical()
		if err != nil {
			return nil, fmt.Errorf("pki: deny list %s line %d: %w", name, n, err)
		}
		if e.Kind == "gateway" {
			d.ids[e.Value] = true
		} else {
			d.serials[e.Value] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pki: deny list %s: %w", name, err)
	}
	return d, nil
}

// ReadDenyList reads the deny list at path; a missing file is an empty
// list.
func ReadDenyList(path string) (*DenyList, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &DenyList{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pki: deny list: %w", err)
	}
	defer f.Close()
	return ParseDenyList(f, path)
}

// Revoke adds entries to the deny list at path (created if missing),
// rewriting it atomically so a collector re-reading it never sees half a
// file. Entries already listed are skipped; it returns how many were
// added.
func Revoke(path string, entries ...DenyEntry) (int, error) {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("pki: deny list: %w", err)
	}
	list, err := ParseDenyList(bytes.NewReader(old), path)
	if err != nil {
		return 0, err
	}
	out := bytes.Clone(old)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	if len(old) == 0 {
		out = append(out, "# Revoked gateways (weir-collector pki revoke): \"gateway ID\" or \"serial HEX\" per line.\n"...)
	}
	added := 0
	for _, e := range entries {
		e, err := e.canonical()
		if err != nil {
			return 0, err
		}
		seen := list.ids
		if e.Kind == "serial" {
			seen = list.serials
		}
		if seen[e.Value] {
			continue
		}
		seen[e.Value] = true
		out = fmt.Appendf(out, "%s %s", e.Kind, e.Value)
		if e.Note != "" {
			out = fmt.Appendf(out, "  # %s", e.Note)
		}
		out = append(out, '\n')
		added++
	}
	if added == 0 {
		return 0, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, fmt.Errorf("pki: deny list %s: %w", path, err)
	}
	if err := writeAtomic(file{path: path, data: out, mode: 0o644}, true); err != nil {
		return 0, err
	}
	return added, nil
}

// SerialOf reads the certificate in the PEM file at path and returns its
// serial in hex and the gateway id it names (empty if none), for revoking
// one certificate.
func SerialOf(path string) (serial, id string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("pki: read certificate %s: %w", path, bare(err))
	}
	block, err := findPEM(data, "CERTIFICATE")
	if err != nil {
		return "", "", fmt.Errorf("pki: read certificate %s: %w", path, err)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", "", fmt.Errorf("pki: read certificate %s: %w", path, err)
	}
	id, _ = GatewayID(cert)
	return cert.SerialNumber.Text(16), id, nil
}
