package pki

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFleetKeyFiles(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath, pub, err := NewFleetKey(dir, Options{})
	require.NoError(t, err)
	fi, err := os.Stat(keyPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the private key is its owner's alone")
	fi, err = os.Stat(pubPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	priv, err := LoadFleetKey(keyPath)
	require.NoError(t, err)
	require.True(t, pub.Equal(priv.Public()))
	read, err := ReadFleetKey(pubPath)
	require.NoError(t, err)
	require.True(t, pub.Equal(read))
	line, err := os.ReadFile(pubPath)
	require.NoError(t, err)
	read, err = ReadFleetKey(string(line))
	require.NoError(t, err, "the line itself is a key")
	require.True(t, pub.Equal(read))

	_, _, _, err = NewFleetKey(dir, Options{})
	require.ErrorContains(t, err, "already exists (force overwrites it)")
	_, _, pub2, err := NewFleetKey(dir, Options{Force: true})
	require.NoError(t, err)
	require.False(t, pub.Equal(pub2))

	require.NoError(t, os.Chmod(keyPath, 0o640))
	_, err = LoadFleetKey(keyPath)
	require.ErrorContains(t, err, "readable by others (mode 0640); chmod 600")

	for _, bad := range []string{"", "ed25519:", "ed25519:AAAA", "rsa:AAAA", strings.Repeat("x", 200)} {
		_, err := ParseFleetKey(bad)
		require.Error(t, err, bad)
	}
}

const testBundle = `# pump stations of the north
version: 7
target:
  gateways: [pump-3]
  labels: {site: north}
config:
  inputs:
    files:
      - {name: app, paths: [/var/log/app.log]}
`

func testKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	return pub, priv
}

func TestBundleSignAndOpen(t *testing.T) {
	pub, priv := testKey(t)
	other, otherPriv := testKey(t)
	signed, err := SignBundle([]byte(testBundle), priv)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(signed, []byte(testBundle)), "the document is kept as written")

	b, id, err := OpenBundle(signed, []ed25519.PublicKey{other, pub})
	require.NoError(t, err)
	require.Equal(t, FleetKeyID(pub), id)
	require.Equal(t, uint64(7), b.Version)
	require.Equal(t, Target{Gateways: []string{"pump-3"}, Labels: map[string]string{"site": "north"}}, b.Target)
	require.NotNil(t, b.Config)
	require.True(t, b.Target.Matches("pump-3", nil))
	require.True(t, b.Target.Matches("pump-9", map[string]string{"site": "north", "x": "y"}))
	require.False(t, b.Target.Matches("pump-9", map[string]string{"site": "south"}))

	_, err = SignBundle(signed, priv)
	require.ErrorContains(t, err, "signed already")

	byOther, err := SignBundle([]byte(testBundle), otherPriv)
	require.NoError(t, err)
	flip := func(i int) []byte { c := bytes.Clone(signed); c[i] ^= 1; return c }
	cases := []struct {
		name string
		raw  []byte
		want error
		text string
	}{
		{"unknown key", byOther, ErrUnknownKey, "pinned: " + FleetKeyID(pub)},
		{"version changed", bytes.Replace(signed, []byte("version: 7"), []byte("version: 8"), 1), ErrBadSignature, ""},
		{"target changed", bytes.Replace(signed, []byte("pump-3"), []byte("pump-4"), 1), ErrBadSignature, ""},
		{"a byte of the body", flip(40), ErrBadSignature, ""},
		{"a comment added", append([]byte("# hi\n"), signed...), ErrBadSignature, ""},
		{"unsigned", []byte(testBundle), errNotSigned, ""},
		{"no final newline", signed[:len(signed)-1], errNotSigned, ""},
		{"too large", append(bytes.Repeat([]byte("#\n"), MaxBundleBytes/2), signed...), ErrBundleTooLarge, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := OpenBundle(c.raw, []ed25519.PublicKey{pub})
			require.ErrorIs(t, err, c.want)
			require.ErrorContains(t, err, c.text)
		})
	}
	_, _, err = OpenBundle(signed, nil)
	require.ErrorContains(t, err, "pinned: none")
	garbled := bytes.Replace(signed, []byte("# weir-signature: ed25519 "), []byte("# weir-signature: rsa "), 1)
	_, _, err = OpenBundle(garbled, []ed25519.PublicKey{pub})
	require.ErrorContains(t, err, "want ed25519")
}

func TestParseBundle(t *testing.T) {
	for _, c := range []struct {
		name, doc, want string
	}{
		{"invalid YAML", "version: 7\ntarget: {gateways: [a]\n", "invalid YAML"},
		{"tab", "version: 7\n\ttarget: x\n", "invalid YAML"},
		{"empty", "", "the bundle is empty"},
		{"two documents", "version: 1\n---\nversion: 2\n", "one document"},
		{"a list", "- a\n", "not a mapping"},
		{"no version", "target: {gateways: [a]}\n", "no version"},
		{"version zero", "version: 0\ntarget: {gateways: [a]}\n", "whole number from 1"},
		{"version text", "version: \"7\"\ntarget: {gateways: [a]}\n", "whole number from 1"},
		{"no target", "version: 1\nconfig: {}\n", "no target"},
		{"bad id", "version: 1\ntarget: {gateways: [\"a b\"]}\n", "not a gateway id"},
		{"unknown key", "version: 1\ntarget: {gateways: [a]}\nextra: 1\n", `unknown key "extra"`},
		{"config a list", "version: 1\ntarget: {gateways: [a]}\nconfig: [1]\n", "want a mapping"},
		{"alias", "version: 1\ntarget: {gateways: [a]}\nconfig: {a: &x {b: 1}, c: *x}\n", "anchors, aliases and merge keys"},
		{"merge key", "version: 1\ntarget: {gateways: [a]}\nconfig: {a: {<<: {b: 1}}}\n", "anchors, aliases and merge keys"},
		{"twice", "version: 1\nversion: 2\ntarget: {gateways: [a]}\n", "given twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseBundle([]byte(c.doc))
			require.ErrorContains(t, err, c.want)
		})
	}
	b, err := ParseBundle([]byte("version: 3\ntarget: {labels: {site: x}}\nconfig:\n"))
	require.NoError(t, err)
	require.Nil(t, b.Config, "no configuration: the local file alone")
}

func TestParseTarget(t *testing.T) {
	tg, err := ParseTarget("gw-1, gw-2,site=north")
	require.NoError(t, err)
	require.Equal(t, Target{Gateways: []string{"gw-1", "gw-2"}, Labels: map[string]string{"site": "north"}}, tg)
	require.Equal(t, "gw-1,gw-2,site=north", tg.String())
	for _, bad := range []string{"", ",", "=x", "a=", "bad id!"} {
		_, err := ParseTarget(bad)
		require.Error(t, err, bad)
	}
}

// FuzzOpenBundle: whatever a collector sends as a bundle, opening it
// never panics, and nothing but the key's own signature opens.
func FuzzOpenBundle(f *testing.F) {
	pub, priv, err := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		f.Fatal(err)
	}
	signed, err := SignBundle([]byte(testBundle), priv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add([]byte(testBundle))
	f.Add([]byte("# weir-signature: ed25519 0011223344556677 AAAA\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, _, err := OpenBundle(raw, []ed25519.PublicKey{pub})
		if err == nil && !bytes.Equal(raw, signed) {
			// ed25519 signatures are not malleable (RFC 8032 checks S),
			// so only the bundle signed opens.
			t.Fatalf("a bundle never signed opened: %q", raw)
		}
		if err == nil && b.Version != 7 {
			t.Fatalf("version %d", b.Version)
		}
		_, _ = ParseBundle(raw)
		if s, err := ParseSigned(raw); err == nil && filepath.Base(s.KeyID) != s.KeyID {
			t.Fatalf("key id %q", s.KeyID)
		}
	})
}
