package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

const maxIDLen = 64

// gatewayURI is the URI SAN naming gateway id: urn:weir:gateway:<id>.
func gatewayURI(id string) *url.URL {
	return &url.URL{Scheme: "urn", Opaque: "weir:gateway:" + id}
}

// gatewayURIID returns the id in a urn:weir:gateway:<id> URI, and false for
// any other URI. The scheme and namespace compare case-insensitively, as URN
// syntax has it.
func gatewayURIID(u *url.URL) (string, bool) {
	if !strings.EqualFold(u.Scheme, "urn") {
		return "", false
	}
	nid, nss, ok := strings.Cut(u.Opaque, ":")
	if !ok || !strings.EqualFold(nid, "weir") {
		return "", false
	}
	return strings.CutPrefix(nss, "gateway:")
}

// GatewayID returns the gateway id a client certificate names: the id in its
// one urn:weir:gateway:<id> URI SAN. The CommonName is never used: it is
// free text that other tooling (a CA not made for Weir, a collector's own
// certificate signed by the same CA) fills in, so a certificate without the
// URI SAN names no gateway. The id must pass ValidateID. The certificate is
// expected to be verified already, e.g. by the TLS handshake.
func GatewayID(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", errors.New("pki: gateway id: no certificate")
	}
	var (
		id    string
		found int
	)
	for _, u := range cert.URIs {
		uid, ok := gatewayURIID(u)
		if !ok {
			continue
		}
		found++
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return "", fmt.Errorf("pki: gateway id: URI SAN %q has a query or fragment", clip(u.String()))
		}
		id = uid
	}
	switch {
	case found > 1:
		return "", fmt.Errorf("pki: gateway id: certificate has %d urn:weir:gateway URI SANs, want one", found)
	case found == 0:
		return "", errors.New("pki: gateway id: certificate has no urn:weir:gateway URI SAN (the common name is not used)")
	}
	if err := ValidateID(id); err != nil {
		return "", err
	}
	return id, nil
}

// ValidateID checks a gateway id: 1 to 64 characters of [A-Za-z0-9._-], not
// starting with '.' or '-'. Ids become file names and appear in logs.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("pki: gateway id: empty")
	}
	for i, r := range id {
		if !idChar(r) {
			return fmt.Errorf("pki: gateway id %q: character %q at offset %d is not one of A-Z a-z 0-9 . _ -", clip(id), r, i)
		}
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("pki: gateway id %q: %d characters, at most %d allowed", clip(id), len(id), maxIDLen)
	}
	if id[0] == '.' || id[0] == '-' {
		return fmt.Errorf("pki: gateway id %q: must not start with %q", id, id[0])
	}
	return nil
}

func idChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// validateHost checks a collector name: an IP literal or a DNS name of
// letters, digits, '-' and '_'. Host names become file names, so path
// separators and dot segments are out.
func validateHost(h string) error {
	switch {
	case h == "":
		return errors.New("pki: collector host: empty")
	case strings.ContainsAny(h, `/\`):
		return fmt.Errorf("pki: collector host %q: contains a path separator", clip(h))
	case net.ParseIP(h) != nil:
		return nil
	case len(h) > 253:
		return fmt.Errorf("pki: collector host %q: longer than 253 characters", clip(h))
	}
	for label := range strings.SplitSeq(h, ".") {
		if err := validateLabel(label); err != nil {
			return fmt.Errorf("pki: collector host %q: %w", clip(h), err)
		}
	}
	return nil
}

func validateLabel(label string) error {
	switch {
	case label == "":
		return errors.New("empty label")
	case len(label) > 63:
		return fmt.Errorf("label %q longer than 63 characters", label)
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Errorf("label %q starts or ends with '-'", label)
	}
	for _, r := range label {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("character %q is not allowed in a host name", r)
		}
	}
	return nil
}

// clip shortens untrusted text quoted in errors, which end up in logs.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
