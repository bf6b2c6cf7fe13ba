package rudp

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirgw/weir/uplink/linklab"
	"github.com/weirgw/weir/uplink/pki"
)

// countingSink accepts connections and counts the bytes read from them.
func countingSink(ln net.Listener, n *atomic.Int64) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				k, err := c.Read(buf)
				n.Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
	}
}

// bulk writes to c until ctx ends.
func bulk(ctx context.Context, c io.Writer) {
	buf := randomBytes(64<<10, 5)
	for ctx.Err() == nil {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// TestCompetingTCPFlow: a DTLS session and a bulk TCP flow share the
// lab's link, a 2 MB/s bottleneck with a drop-tail queue of two
// bandwidth-delay products and 20 ms each way, both running flat out.
// Under that congestion the DTLS session must back off to no more than
// about its fair share (the two count their bytes a little differently);
// a sender that took random loss for the only kind would take nearly all.
// Real time on a shared machine: when the machine could not even fill the
// link, there was no congestion to share and the shares say nothing, so
// the test logs them and does not judge.
func TestCompetingTCPFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("linklab: makes network namespaces; skipped with -short")
	}
	if err := linklab.Available(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	for _, cc := range []string{"reno", "bbr"} {
		t.Run(cc, func(t *testing.T) { competingFlow(t, cc) })
	}
}

func competingFlow(t *testing.T, cc string) {
	const (
		rate  = 2e6
		delay = 20 * time.Millisecond
		warm  = 3 * time.Second
		span  = 10 * time.Second
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lab, err := linklab.New(ctx, linklab.Options{Label: "fair-" + cc, Delay: delay, Rate: rate,
		Queue: int(2 * rate * 2 * delay.Seconds()), TCPCongestion: cc})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, lab.Close()) })

	var tcpBytes, dtlsBytes atomic.Int64
	tln, err := lab.Collector.Listen(lab.Collector.AddrPort(0))
	require.NoError(t, err)
	defer tln.Close()
	go countingSink(tln, &tcpBytes)

	p := newTestPKI(t, pki.Options{})
	scfg, err := ServerConfig(p.collector)
	require.NoError(t, err)
	var dln *Listener
	require.NoError(t, lab.Collector.Do(func() error {
		var err error
		dln, err = Listen(lab.Collector.AddrPort(0).String(), scfg, fastOpts())
		return err
	}))
	defer dln.Close()
	go countingSink(dln, &dtlsBytes)

	tc, err := lab.Gateway.DialContext(ctx, "tcp", tln.Addr().(*net.TCPAddr).AddrPort())
	require.NoError(t, err)
	defer tc.Close()
	ccfg, err := ClientConfig(p.gateway, "127.0.0.1")
	require.NoError(t, err)
	var dc *Conn
	require.NoError(t, lab.Gateway.Do(func() error {
		var err error
		dc, err = Dial(ctx, dln.Addr().String(), ccfg, fastOpts())
		return err
	}))
	defer dc.Close()
	go bulk(ctx, tc)
	go bulk(ctx, dc)

	time.Sleep(warm)
	t0, d0 := tcpBytes.Load(), dtlsBytes.Load()
	time.Sleep(span)
	tcp, dtls := float64(tcpBytes.Load()-t0), float64(dtlsBytes.Load()-d0)
	cancel()
	st := dc.Stats()
	total := (tcp + dtls) / span.Seconds()
	share := dtls / (tcp + dtls)
	t.Logf("TCP (%s) %.2f MB/s, DTLS %.2f MB/s of a %.1f MB/s link: DTLS share %.2f; DTLS congestion cuts %d, random loss measured %.3f, estimate %.2f MB/s",
		cc, tcp/span.Seconds()/1e6, dtls/span.Seconds()/1e6, rate/1e6, share, st.LossBackoffs, st.RandomLoss, st.Bandwidth/1e6)
	require.Positive(t, tcp, "the TCP flow was starved")
	require.Positive(t, dtls, "the DTLS session was starved")
	if total < 0.7*rate {
		t.Logf("the flows filled %.0f %% of the link: the machine was too busy to congest it, so the shares are not judged", 100*total/rate)
		return
	}
	require.LessOrEqual(t, share, 0.65, "DTLS took more than its fair share")
}
