package pki

import (
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseDenyList(t *testing.T) {
	d, err := ParseDenyList(strings.NewReader(`# revoked
gateway pump-station-3   # SD card stolen

serial 0A:1b:FF  # re-keyed
serial 0x00ff
`), "denied.txt")
	require.NoError(t, err)
	require.Equal(t, 3, d.Len())
	why, denied := d.Denied("pump-station-3", nil)
	require.True(t, denied)
	require.Equal(t, "gateway pump-station-3 is revoked", why)
	_, denied = d.Denied("pump-station-4", &x509.Certificate{SerialNumber: big.NewInt(0x0a1bff)})
	require.True(t, denied, "serial compared as a number, whatever its spelling")
	_, denied = d.Denied("pump-station-4", &x509.Certificate{SerialNumber: big.NewInt(0xff)})
	require.True(t, denied)
	_, denied = d.Denied("pump-station-4", &x509.Certificate{SerialNumber: big.NewInt(0x100)})
	require.False(t, denied)
	var none *DenyList
	_, denied = none.Denied("x", nil)
	require.False(t, denied)

	for in, want := range map[string]string{
		"gateway":                              "line 1: want \"gateway ID\" or \"serial HEX\", got 1 fields",
		"gateway a b":                          "got 3 fields",
		"host gw1":                             `deny entry kind "host": want gateway or serial`,
		"gateway ../x":                         `line 1: pki: gateway id "../x": character '/'`,
		"# ok\nserial xyz":                     `line 2: pki: serial "xyz": not hex`,
		"serial " + strings.Repeat("f", 41):    "want 1 to 40 hex digits",
		"gateway " + strings.Repeat("x", 5000): "token too long",
	} {
		_, err := ParseDenyList(strings.NewReader(in), "denied.txt")
		require.ErrorContains(t, err, want, in)
		require.ErrorContains(t, err, "denied.txt")
	}
}

func TestRevoke(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, InitCA(dir, "test", testOpts()))
	cert, _, err := IssueGateway(dir, "gw-7", testOpts())
	require.NoError(t, err)
	serial, id, err := SerialOf(cert)
	require.NoError(t, err)
	require.Equal(t, "gw-7", id)

	path := filepath.Join(dir, DenyFile)
	d, err := ReadDenyList(path)
	require.NoError(t, err, "a missing list is empty")
	require.Zero(t, d.Len())

	n, err := Revoke(path, DenyEntry{Kind: "gateway", Value: "gw-1", Note: "stolen"}, DenyEntry{Kind: "serial", Value: serial})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = Revoke(path, DenyEntry{Kind: "gateway", Value: "gw-1"}, DenyEntry{Kind: "serial", Value: "0x" + strings.ToUpper(serial)})
	require.NoError(t, err)
	require.Zero(t, n, "already listed")
	_, err = Revoke(path, DenyEntry{Kind: "gateway", Value: "bad id"})
	require.ErrorContains(t, err, "character ' '")

	d, err = ReadDenyList(path)
	require.NoError(t, err)
	require.Equal(t, 2, d.Len())
	_, denied := d.Denied("gw-1", nil)
	require.True(t, denied)
	c := readCert(t, cert)
	why, denied := d.Denied("gw-7", c)
	require.True(t, denied)
	require.Contains(t, why, serial)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), "gateway gw-1  # stolen\n")
}
