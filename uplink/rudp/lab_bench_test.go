package rudp

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/weirgw/weir/uplink/linklab"
	"github.com/weirgw/weir/uplink/pki"
)

// BenchmarkLabBatchWindow runs the uplink's pattern through the lab's link
// (20 ms each way, random loss each way): 42 KB batches, at most window
// of them unacknowledged, a receiver that spends 8 ms on each (the
// collector's decode and fsync) before a 16-byte ack. One op is one batch;
// batches/s is the rate. It shows what bounds the uplink under loss at a
// distance: compare loss10 with loss0 at each window. Needs root.
func BenchmarkLabBatchWindow(b *testing.B) {
	if err := linklab.Available(); err != nil {
		b.Skipf("skipped: %v", err)
	}
	const (
		size = 42 << 10
		proc = 8 * time.Millisecond
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lab, err := linklab.New(ctx, linklab.Options{Label: "batchwin", Delay: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Close()
	p := newTestPKI(b, pki.Options{})
	scfg, err := ServerConfig(p.collector)
	if err != nil {
		b.Fatal(err)
	}
	var ln *Listener
	if err := lab.Collector.Do(func() error {
		var err error
		ln, err = Listen(lab.Collector.AddrPort(0).String(), scfg, fastOpts())
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.AcceptRUDP()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, size)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					time.Sleep(proc)
					if _, err := c.Write(buf[:16]); err != nil {
						return
					}
				}
			}()
		}
	}()
	ccfg, err := ClientConfig(p.gateway, "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	data := randomBytes(size, 3)
	for _, window := range []int{16, 64} {
		for _, loss := range []int{0, 10} {
			b.Run(fmt.Sprintf("window%d/loss%d", window, loss), func(b *testing.B) {
				if err := lab.SetLossBoth(ctx, loss); err != nil {
					b.Fatal(err)
				}
				var c *Conn
				if err := lab.Gateway.Do(func() error {
					var err error
					c, err = Dial(ctx, ln.Addr().String(), ccfg, fastOpts())
					return err
				}); err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				credit := make(chan struct{}, window)
				acked := make(chan error, 1)
				go func() {
					ack := make([]byte, 16)
					for range b.N {
						if _, err := io.ReadFull(c, ack); err != nil {
							acked <- err
							return
						}
						<-credit
					}
					acked <- nil
				}()
				b.SetBytes(size)
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					credit <- struct{}{}
					if _, err := c.Write(data); err != nil {
						b.Fatal(err)
					}
				}
				if err := <-acked; err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "batches/s")
			})
		}
	}
}
