package collector

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

func signedBundle(t *testing.T, key ed25519.PrivateKey, version uint64, target string) []byte {
	t.Helper()
	raw, err := pki.SignBundle([]byte(fmt.Sprintf("version: %d\ntarget: %s\nconfig:\n  telemetry_interval: 1m\n", version, target)), key)
	require.NoError(t, err)
	return raw
}

func TestBundleLimitsAgree(t *testing.T) {
	require.Equal(t, uplink.MaxBundleBytes, pki.MaxBundleBytes)
}

func TestPushBundle(t *testing.T) {
	dir := t.TempDir()
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	_, otherKey, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	now := time.Now()

	raw := signedBundle(t, key, 3, "{gateways: [gw-1]}")
	p, err := PushBundle(dir, raw, pki.Target{}, pub, now)
	require.NoError(t, err)
	require.Equal(t, uint64(3), p.Version)
	require.Equal(t, "gw-1", p.Target, "the bundle's own target")
	require.Equal(t, pki.FleetKeyID(pub), p.KeyID)
	_, err = PushBundle(dir, signedBundle(t, key, 4, "{labels: {site: north}}"), pki.Target{Gateways: []string{"gw-2"}}, nil, now)
	require.NoError(t, err)
	pushes, err := ReadPushes(dir)
	require.NoError(t, err)
	require.Len(t, pushes, 2)
	got, ok := DesiredFor(pushes, "gw-1", nil)
	require.True(t, ok)
	require.Equal(t, uint64(3), got.Version)
	got, ok = DesiredFor(pushes, "gw-2", nil)
	require.True(t, ok)
	require.Equal(t, uint64(4), got.Version, "the push's target, not the bundle's")
	_, ok = DesiredFor(pushes, "gw-3", map[string]string{"site": "north"})
	require.False(t, ok)

	for _, c := range []struct {
		name string
		raw  []byte
		pub  ed25519.PublicKey
		want string
	}{
		{"over the limit", append(bytes.Repeat([]byte("#\n"), uplink.MaxBundleBytes/2), raw...), nil, "over the 262144-byte limit"},
		{"unsigned", []byte("version: 5\ntarget: {gateways: [gw-1]}\n"), nil, "sign it with weir-collector fleet sign"},
		{"another key", signedBundle(t, otherKey, 5, "{gateways: [gw-1]}"), pub, "does not pin"},
		{"not a bundle", mustSign(t, key, "just: text\n"), nil, "unknown key \"just\""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := PushBundle(dir, c.raw, pki.Target{}, c.pub, now)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func mustSign(t *testing.T, key ed25519.PrivateKey, doc string) []byte {
	raw, err := pki.SignBundle([]byte(doc), key)
	require.NoError(t, err)
	return raw
}

// TestBundlesOfferedAndPulled drives version 4 sessions by hand: a
// gateway that reports an older configuration is offered the bundle
// pushed for it, pulls it and gets it whole; a push made while the
// session is open is offered on it; a gateway the target does not
// select, or one that has the version, is offered nothing; a version 3
// session gets no configuration messages and may send none; pulls and
// control frames are bounded.
func TestBundlesOfferedAndPulled(t *testing.T) {
	dir := t.TempDir()
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	v3 := signedBundle(t, key, 3, "{gateways: [gw-1]}")
	_, err = PushBundle(dir, v3, pki.Target{}, pub, time.Now())
	require.NoError(t, err)
	b, err := OpenBundles(dir, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	tb := newTestbedWith(t, DefaultConfig(), func(s *Server) { s.UseBundles(b) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	c := tb.dial("gw-1")
	c.send(hello("gw-1", 0))
	m, err := c.recv()
	require.NoError(t, err)
	require.Equal(t, uint64(4), m.(*uplink.Welcome).Version)
	c.send(&uplink.ConfigStatus{Applied: 2, Highest: 2, Version: 2, Result: uplink.ConfigApplied, Labels: []uplink.Label{{Key: "site", Value: "north"}}})
	m, err = c.recv()
	require.NoError(t, err)
	offer := m.(*uplink.ConfigOffer)
	require.Equal(t, uplink.ConfigOffer{Version: 3, Size: uint64(len(v3)), Digest: uplink.DigestOf(v3)}, *offer)
	c.send(&uplink.ConfigPull{Version: 3, Digest: offer.Digest})
	m, err = c.recv()
	require.NoError(t, err)
	require.Equal(t, v3, m.(*uplink.ConfigBundle).Bundle)

	// A push for the gateway's label while its session is open.
	v4 := signedBundle(t, key, 4, "{labels: {site: north}}")
	_, err = PushBundle(dir, v4, pki.Target{}, pub, time.Now())
	require.NoError(t, err)
	m, err = c.recv()
	require.NoError(t, err)
	require.Equal(t, uint64(4), m.(*uplink.ConfigOffer).Version)
	// Once the gateway has it, nothing more is offered.
	c.send(&uplink.ConfigStatus{Applied: 4, Highest: 4, Version: 4, Result: uplink.ConfigApplied, Labels: []uplink.Label{{Key: "site", Value: "north"}}},
		&uplink.Ping{Nonce: 9})
	m, err = c.recv()
	require.NoError(t, err)
	require.Equal(t, &uplink.Pong{Nonce: 9}, m)
	require.Eventually(t, func() bool {
		r, err := ReadReports(dir)
		return err == nil && r["gw-1"].Applied == 4 && r["gw-1"].Sent == 3 && r["gw-1"].Offered == 4 && r["gw-1"].Labels["site"] == "north"
	}, 5*time.Second, 20*time.Millisecond, "status.json says what gw-1 runs and was sent")

	// A pull of something not held gets the current offer again; more
	// pulls than a session may make end it.
	for range 3 {
		c.send(&uplink.ConfigPull{Version: 9})
	}
	c.send(&uplink.ConfigPull{Version: 4, Digest: uplink.DigestOf(v4)}, &uplink.ConfigPull{Version: 4, Digest: uplink.DigestOf(v4)})
	require.Contains(t, c.expectError(uplink.ErrProtocol).Message, "too many configuration pulls")

	// Not selected: nothing offered.
	c2 := tb.dial("gw-2")
	c2.send(hello("gw-2", 0))
	_, err = c2.recv()
	require.NoError(t, err)
	c2.send(&uplink.ConfigStatus{}, &uplink.Ping{Nonce: 1})
	m, err = c2.recv()
	require.NoError(t, err)
	require.Equal(t, &uplink.Pong{Nonce: 1}, m)

	// A control frame larger than its bound is refused on its header.
	big := uplink.AppendFrame(nil, &uplink.ConfigStatus{Error: strings.Repeat("x", 4000), Labels: []uplink.Label{
		{Key: "a", Value: strings.Repeat("y", 4000)}, {Key: "b", Value: strings.Repeat("y", 4000)}, {Key: "c", Value: strings.Repeat("y", 4000)}, {Key: "d", Value: strings.Repeat("y", 4000)}}})
	go func() { _, _ = c2.c.Write(big) }() // the collector closes before it is all read
	require.Contains(t, c2.expectError(uplink.ErrLimit).Message, "config_status frame")

	// Version 3: no configuration messages either way.
	c3 := tb.dial("gw-3")
	h := hello("gw-3", 0)
	h.Version = 3
	c3.send(h)
	m, err = c3.recv()
	require.NoError(t, err)
	require.Equal(t, uint64(3), m.(*uplink.Welcome).Version)
	c3.send(&uplink.ConfigStatus{})
	require.Contains(t, c3.expectError(uplink.ErrProtocol).Message, "before protocol version 4")
}
