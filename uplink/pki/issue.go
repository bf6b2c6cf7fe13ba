package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// IssueGateway issues a client certificate for gateway id, signed by the CA
// in dir: CommonName id, URI SAN urn:weir:gateway:<id>, extended key usage
// client authentication. The certificate never outlives the CA.
func IssueGateway(dir, id string, opts Options) (certPath, keyPath string, err error) {
	if err := ValidateID(id); err != nil {
		return "", "", err
	}
	certPath, keyPath = GatewayFiles(dir, id)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: id},
		URIs:        []*url.URL{gatewayURI(id)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := issue(dir, tmpl, certPath, keyPath, opts); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// IssueCollector issues a server certificate for host and the extra names,
// signed by the CA in dir: CommonName host, a DNS SAN for each name and an IP
// SAN for each IP literal, extended key usage server authentication. The
// certificate never outlives the CA.
func IssueCollector(dir, host string, extra []string, opts Options) (certPath, keyPath string, err error) {
	dnsNames, ips, err := subjectAltNames(host, extra)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = CollectorFiles(dir, host)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: host},
		DNSNames:    dnsNames,
		IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if err := issue(dir, tmpl, certPath, keyPath, opts); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// issue completes tmpl with a new key, serial and validity, signs it with
// the CA in dir and writes the key and certificate.
func issue(dir string, tmpl *x509.Certificate, certPath, keyPath string, opts Options) error {
	if err := opts.validate(); err != nil {
		return err
	}
	ca, err := loadCA(dir)
	if err != nil {
		return err
	}
	if !opts.Force {
		if err := refuseExisting(certPath, keyPath); err != nil {
			return err
		}
	}
	now := opts.now()
	if !now.Before(ca.cert.NotAfter) {
		return fmt.Errorf("pki: CA certificate %s expired at %s", ca.certPath, ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	notAfter := opts.notAfter(now, leafYears)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}

	key, keyPEM, err := newKey()
	if err != nil {
		return err
	}
	if tmpl.SubjectKeyId, err = subjectKeyID(key.Public()); err != nil {
		return err
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return err
	}
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = notAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	tmpl.AuthorityKeyId = ca.cert.SubjectKeyId

	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return fmt.Errorf("pki: sign %s: %w", certPath, err)
	}
	return writeFiles(opts.Force,
		file{path: keyPath, data: keyPEM, mode: 0o600},
		file{path: certPath, data: certPEM(der), mode: 0o644},
	)
}

// subjectAltNames validates the collector's names and splits them into DNS
// names and IP addresses, dropping duplicates.
func subjectAltNames(host string, extra []string) ([]string, []net.IP, error) {
	var (
		dnsNames []string
		ips      []net.IP
	)
next:
	for _, h := range append([]string{host}, extra...) {
		if err := validateHost(h); err != nil {
			return nil, nil, err
		}
		if ip := net.ParseIP(h); ip != nil {
			for _, seen := range ips {
				if seen.Equal(ip) {
					continue next
				}
			}
			ips = append(ips, ip)
			continue
		}
		for _, seen := range dnsNames {
			if strings.EqualFold(seen, h) {
				continue next
			}
		}
		dnsNames = append(dnsNames, h)
	}
	return dnsNames, ips, nil
}
