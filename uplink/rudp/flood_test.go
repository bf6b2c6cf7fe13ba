package rudp

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

// clientHello is a DTLS 1.2 ClientHello with no cookie, as the first
// datagram of a handshake (or a spoofed one) carries.
func clientHello(t testing.TB) []byte {
	var random handshake.Random
	require.NoError(t, random.Populate())
	rec := recordlayer.RecordLayer{
		Header: recordlayer.Header{Version: protocol.Version1_0},
		Content: &handshake.Handshake{Message: &handshake.MessageClientHello{
			Version:            protocol.Version1_2,
			Random:             random,
			CipherSuiteIDs:     []uint16{uint16(0xc02b)},
			CompressionMethods: []*protocol.CompressionMethod{{}},
		}},
	}
	b, err := rec.Marshal()
	require.NoError(t, err)
	return b
}

// spoof sends one ClientHello from each of n loopback addresses
// 127.x.y.z, spread over many /24s, as a flood with forged source
// addresses looks to the listener.
func spoof(t testing.TB, to *net.UDPAddr, n int) {
	hello := clientHello(t)
	for i := range n {
		src := &net.UDPAddr{IP: net.IPv4(127, byte(1+i>>16), byte(i>>8), byte(2+i%250))}
		c, err := net.DialUDP("udp4", src, to)
		if err != nil {
			continue // an address of the range in use by another test
		}
		_, _ = c.Write(hello)
		c.Close()
	}
}

// TestDTLSHandshakeBudget: a flood of ClientHellos from thousands of
// addresses holds no more handshakes than the budget, the ones that never
// prove their address make room for new ones, and a real gateway connects
// in the middle of it.
func TestDTLSHandshakeBudget(t *testing.T) {
	p := newTestPKI(t, pki.Options{})
	cfg, err := ServerConfig(p.collector)
	require.NoError(t, err)
	var busy, other, mine atomic.Int64
	opt := fastOpts()
	opt.HandshakeBudget, opt.HandshakesPerPrefix = 32, 4
	opt.OnHandshakeError = func(a net.Addr, err error) {
		if a != nil && a.(*net.UDPAddr).IP.Equal(net.IPv4(127, 0, 0, 1)) {
			mine.Add(1)
		}
		if uplink.Classify(err) == uplink.ReasonBusy {
			busy.Add(1)
			return
		}
		other.Add(1)
	}
	ln, err := Listen("127.0.0.1:0", cfg, opt)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	served := echo(t, ln)
	to := ln.Addr().(*net.UDPAddr)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var peak atomic.Int64
	go func() {
		for ctx.Err() == nil {
			if h := int64(ln.Handshakes()); h > peak.Load() {
				peak.Store(h)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		for ctx.Err() == nil {
			spoof(t, to, 2000)
		}
	}()
	time.Sleep(200 * time.Millisecond) // the flood is on

	ccfg, err := ClientConfig(p.gateway, "127.0.0.1")
	require.NoError(t, err)
	start := time.Now()
	copt := fastOpts()
	copt.HandshakeTimeout = 20 * time.Second // the race detector and a flood on two cores
	c, err := Dial(context.Background(), to.String(), ccfg, copt)
	took := time.Since(start)
	t.Logf("connected in %s; peak handshakes %d; %d dropped as busy, %d other failures, %d of the gateway's", took, peak.Load(), busy.Load(), other.Load(), mine.Load())
	require.NoError(t, err, "a gateway connects during the flood")
	_, err = c.Write([]byte("through the flood"))
	require.NoError(t, err)
	buf := make([]byte, 64)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "through the flood", string(buf[:n]))
	c.Close()
	cancel()
	<-flooded
	<-served

	require.LessOrEqual(t, peak.Load(), int64(32), "handshakes under way never pass the budget")
	require.Positive(t, busy.Load(), "unproven handshakes were dropped for newer ones")
}

func TestPrefixKey(t *testing.T) {
	require.Equal(t, "10.1.2.0/24", prefixKey(&net.UDPAddr{IP: net.IPv4(10, 1, 2, 3)}))
	require.Equal(t, "2001:db8:1::/48", prefixKey(&net.UDPAddr{IP: net.ParseIP("2001:db8:1:2::5")}))
	var re *uplink.ReasonError
	require.False(t, errors.As(errEvicted, &re))
}

// TestEvictionSparesALoneGateway: with the global budget spent by a flood
// from a few prefixes, room is made in the prefix holding the most
// unverified handshakes, never by dropping the one handshake of another
// prefix, however old it is.
func TestEvictionSparesALoneGateway(t *testing.T) {
	m := newMux(nil, 4, 3, func(*vconn) {}, func(net.Addr, string) {})
	at := func(ip string) *vconn {
		a := &net.UDPAddr{IP: net.ParseIP(ip), Port: 5000}
		vc := &vconn{m: m, raddr: a, prefix: prefixKey(a), closed: make(chan struct{})}
		m.byAddr[a.String()] = vc
		m.pending = append(m.pending, vc)
		m.prefix[vc.prefix]++
		return vc
	}
	lone := at("10.0.0.7")
	first, second := at("127.1.0.2"), at("127.1.0.3")
	other := at("127.1.1.2")
	require.True(t, m.evictLocked(""))
	require.False(t, lone.evicted.Load(), "the lone gateway's handshake was dropped")
	require.True(t, first.evicted.Load(), "the oldest of the prefix with the most makes room")
	require.False(t, second.evicted.Load())
	require.False(t, other.evicted.Load())
	require.Len(t, m.pending, 3)
}
