package rudp

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/weirgw/weir/uplink/pki"
)

// BenchmarkGoodput moves 4 MiB per op over an emulated path of 20 ms RTT
// and 10 MB/s with a 40 ms drop-tail queue, at several random loss rates
// in each direction. MB/s is goodput; compare loss10 with loss0.
func BenchmarkGoodput(b *testing.B) {
	const size = 4 << 20
	data := randomBytes(size, 1)
	for _, loss := range []float64{0, 0.01, 0.05, 0.10} {
		b.Run(fmt.Sprintf("loss%d", int(loss*100)), func(b *testing.B) {
			b.SetBytes(size)
			var retrans, sent uint64
			for i := 0; i < b.N; i++ {
				l := linkCfg{delay: 10 * time.Millisecond, rate: 10e6, queue: 40 * time.Millisecond, loss: loss}
				ab, ba := l, l
				ab.seed, ba.seed = uint64(i+1), uint64(i+1000)
				w, r := newConnPair(ab, ba, Options{})
				got := transfer(b, w, r, data)
				if !bytes.Equal(got, data) {
					b.Fatal("stream differs")
				}
				st := w.Stats()
				retrans += st.SegmentsRetransmitted
				sent += st.SegmentsSent
				r.Close()
			}
			b.ReportMetric(float64(retrans)/float64(sent)*100, "%retrans")
		})
	}
}

// BenchmarkDTLSLoopback moves 8 MiB per op through a real DTLS session
// over loopback UDP via a relay that loses a share of datagrams each way:
// the CPU-bound case, as on a veth pair. MB/s is goodput of the transfer
// (write, read, close), handshake excluded.
func BenchmarkDTLSLoopback(b *testing.B) {
	p := newTestPKI(b, pki.Options{})
	scfg, err := ServerConfig(p.collector)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := Listen("127.0.0.1:0", scfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ccfg, err := ClientConfig(p.gateway, "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	const size = 8 << 20
	data := randomBytes(size, 2)
	for _, loss := range []float64{0, 0.10} {
		b.Run(fmt.Sprintf("loss%d", int(loss*100)), func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				// Only the transfer is timed: handshakes through the lossy
				// relay take 0.5 s per lost flight and would swamp it.
				b.StopTimer()
				r := newRelay(b, ln.Addr())
				rng := rand.New(rand.NewPCG(uint64(i), 7))
				r.mu.Lock()
				r.drop = func() bool { return rng.Float64() < loss }
				r.mu.Unlock()
				accepted := make(chan *Conn, 1)
				go func() {
					c, err := ln.AcceptRUDP()
					if err == nil {
						accepted <- c
					}
				}()
				w, err := Dial(context.Background(), r.front.LocalAddr().String(), ccfg, Options{})
				if err != nil {
					b.Fatal(err)
				}
				rc := <-accepted
				b.StartTimer()
				if got := transfer(b, w, rc, data); !bytes.Equal(got, data) {
					b.Fatal("stream differs")
				}
				b.StopTimer()
				rc.Close()
				b.StartTimer()
			}
		})
	}
}
