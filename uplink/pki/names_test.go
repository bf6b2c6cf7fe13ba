package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// certWith makes a parsed self-signed certificate with the given CommonName
// and URI SANs, as a peer might present it.
func certWith(t *testing.T, cn string, uris ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    testNow,
		NotAfter:     testNow.AddDate(1, 0, 0),
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}

func TestGatewayID(t *testing.T) {
	tests := []struct {
		name    string
		cn      string
		uris    []string
		want    string
		wantErr string
	}{
		{name: "URI SAN and CN", cn: "gw1", uris: []string{"urn:weir:gateway:gw1"}, want: "gw1"},
		{name: "URI SAN wins over CN", cn: "something else", uris: []string{"urn:weir:gateway:gw-7"}, want: "gw-7"},
		{name: "URI SAN without CN", uris: []string{"urn:weir:gateway:gw.2"}, want: "gw.2"},
		{name: "CN only", cn: "line3_gw", wantErr: "pki: gateway id: certificate has no urn:weir:gateway URI SAN (the common name is not used)"},
		{name: "URN case-insensitive prefix", uris: []string{"URN:Weir:gateway:GW9"}, want: "GW9"},
		{name: "other URI SANs ignored", cn: "gw1", uris: []string{"spiffe://plant/gw2", "urn:weir:collector:c1", "urn:weir:gateway:gw3"}, want: "gw3"},
		{name: "non-gateway URI, no fallback to CN", cn: "gw4", uris: []string{"urn:weir:collector:c1"}, wantErr: "no urn:weir:gateway URI SAN"},
		{name: "two URI SANs", cn: "gw1", uris: []string{"urn:weir:gateway:gw1", "urn:weir:gateway:gw2"}, wantErr: "pki: gateway id: certificate has 2 urn:weir:gateway URI SANs, want one"},
		{name: "same URI SAN twice", uris: []string{"urn:weir:gateway:gw1", "urn:weir:gateway:gw1"}, wantErr: "has 2 urn:weir:gateway URI SANs"},
		{name: "neither", wantErr: "pki: gateway id: certificate has no urn:weir:gateway URI SAN"},
		{name: "empty id in URI", cn: "gw1", uris: []string{"urn:weir:gateway:"}, wantErr: "pki: gateway id: empty"},
		{name: "invalid id in URI", cn: "gw1", uris: []string{"urn:weir:gateway:.hidden"}, wantErr: `pki: gateway id ".hidden": must not start with '.'`},
		{name: "encoded slash in URI", uris: []string{"urn:weir:gateway:a%2Fb"}, wantErr: `pki: gateway id "a%2Fb": character '%'`},
		{name: "query in URI", uris: []string{"urn:weir:gateway:gw1?x=1"}, wantErr: "has a query or fragment"},
		{name: "fragment in URI", uris: []string{"urn:weir:gateway:gw1#x"}, wantErr: "has a query or fragment"},
		{name: "invalid CN", cn: "gw 1", wantErr: "no urn:weir:gateway URI SAN"},
		{name: "traversal CN", cn: "../../etc/passwd", wantErr: "no urn:weir:gateway URI SAN"},
		{name: "traversal in URI", uris: []string{"urn:weir:gateway:../../etc/passwd"}, wantErr: `pki: gateway id "../../etc/passwd": character '/'`},
		{name: "other namespace", uris: []string{"urn:weird:gateway:gw1"}, wantErr: "no urn:weir:gateway URI SAN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := GatewayID(certWith(t, tt.cn, tt.uris...))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Empty(t, id)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, id)
		})
	}

	_, err := GatewayID(nil)
	require.ErrorContains(t, err, "pki: gateway id: no certificate")
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id      string
		wantErr string
	}{
		{id: "a"},
		{id: "gw-01"},
		{id: "Plant1.Line2_gw-3"},
		{id: "a..b"},
		{id: "_x"},
		{id: "9"},
		{id: strings.Repeat("x", 64)},
		{id: "", wantErr: "pki: gateway id: empty"},
		{id: strings.Repeat("x", 65), wantErr: "65 characters, at most 64 allowed"},
		{id: ".x", wantErr: `pki: gateway id ".x": must not start with '.'`},
		{id: ".", wantErr: "must not start with '.'"},
		{id: "..", wantErr: "must not start with '.'"},
		{id: "-x", wantErr: "must not start with '-'"},
		{id: "a/b", wantErr: `character '/' at offset 1`},
		{id: `a\b`, wantErr: `character '\\' at offset 1`},
		{id: "a b", wantErr: "character ' '"},
		{id: "a:b", wantErr: "character ':'"},
		{id: "gw\n1", wantErr: `"gw\n1": character '\n'`},
		{id: "gw\x00", wantErr: `character '\x00'`},
		{id: "grüße", wantErr: "character 'ü' at offset 2"},
		{id: strings.Repeat("é", 40), wantErr: "character 'é' at offset 0"},
		{id: strings.Repeat("y", 500), wantErr: strings.Repeat("y", 80) + `..."`},
	}
	for _, tt := range tests {
		name := tt.id
		if len(name) > 20 {
			name = name[:20]
		}
		t.Run(name, func(t *testing.T) {
			err := ValidateID(tt.id)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.True(t, strings.HasPrefix(err.Error(), "pki: "), err.Error())
		})
	}
}

func TestValidateHost(t *testing.T) {
	tests := []struct {
		host    string
		wantErr string
	}{
		{host: "collector"},
		{host: "collector.example.net"},
		{host: "Head-End_1.plant"},
		{host: "10.0.0.1"},
		{host: "::1"},
		{host: "fd00::17"},
		{host: "", wantErr: "pki: collector host: empty"},
		{host: "a/b", wantErr: "contains a path separator"},
		{host: "/etc", wantErr: "contains a path separator"},
		{host: `a\b`, wantErr: "contains a path separator"},
		{host: ".", wantErr: "empty label"},
		{host: "..", wantErr: "empty label"},
		{host: "a..b", wantErr: "empty label"},
		{host: "trailing.", wantErr: "empty label"},
		{host: "-lead", wantErr: `label "-lead" starts or ends with '-'`},
		{host: "*.example.net", wantErr: "character '*'"},
		{host: "fe80::1%eth0", wantErr: "character ':'"},
		{host: "[::1]", wantErr: "character '['"},
		{host: "host name", wantErr: "character ' '"},
		{host: strings.Repeat("a", 64), wantErr: "longer than 63 characters"},
		{host: strings.Repeat("a.", 127) + "ab", wantErr: "longer than 253 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			err := validateHost(tt.host)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.True(t, strings.HasPrefix(err.Error(), "pki: collector host"), err.Error())
		})
	}
}

func TestFileNames(t *testing.T) {
	cert, key := GatewayFiles("/etc/weir/pki", "gw1")
	require.Equal(t, "/etc/weir/pki/gateway-gw1.pem", cert)
	require.Equal(t, "/etc/weir/pki/gateway-gw1-key.pem", key)
	cert, key = CollectorFiles("/etc/weir/pki", "head.example")
	require.Equal(t, "/etc/weir/pki/collector-head.example.pem", cert)
	require.Equal(t, "/etc/weir/pki/collector-head.example-key.pem", key)
}

// FuzzGatewayID feeds URI SANs and common names as a peer's certificate
// carries them (crypto/x509 parses URI SANs with url.Parse) to GatewayID.
// It must never panic; an id it returns passes ValidateID, came from the
// URI, and issues back to a URI SAN naming the same id.
func FuzzGatewayID(f *testing.F) {
	for _, s := range [][2]string{
		{"urn:weir:gateway:gw1", ""},
		{"URN:Weir:gateway:GW9", "gw9"},
		{"urn:weir:gateway:a%2Fb", ""},
		{"urn:weir:gateway:gw1?x=1", ""},
		{"urn:weir:gateway:gw1#frag", ""},
		{"urn:weir:gateway:../../etc/passwd", ""},
		{"urn:weir:collector:c1", "gw4"},
		{"spiffe://plant/gw2", "gw2"},
		{"", "cn-only"},
	} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, uri, cn string, twice bool) {
		cert := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
		if u, err := url.Parse(uri); err == nil && uri != "" {
			cert.URIs = append(cert.URIs, u)
			if twice {
				cert.URIs = append(cert.URIs, u)
			}
		}
		id, err := GatewayID(cert)
		if err != nil {
			if id != "" {
				t.Fatalf("error %v with id %q", err, id)
			}
			return
		}
		if twice {
			t.Fatalf("two gateway URI SANs gave id %q", id)
		}
		if verr := ValidateID(id); verr != nil {
			t.Fatalf("returned id %q fails ValidateID: %v", id, verr)
		}
		if !strings.Contains(uri, id) {
			t.Fatalf("id %q is not in URI %q", id, uri)
		}
		again, err := GatewayID(&x509.Certificate{URIs: []*url.URL{gatewayURI(id)}})
		if err != nil || again != id {
			t.Fatalf("id %q issued as %s reads back as %q, %v", id, gatewayURI(id), again, err)
		}
	})
}
