package syslog

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

var (
	bench5424 = []byte(`<165>1 2026-11-23T14:40:00.529269+00:00 plc7.site.example pumpd 4711 ID47 [timeQuality tzKnown="1" isSynced="1" syncAccuracy="0"][weir@32473 tank="T2" level="3.41"] pump 3 pressure above threshold: 6.2 bar (limit 6.0)`)
	bench3164 = []byte(`<134>Nov 23 14:40:00 plc7 pumpd[4711]: pump 3 pressure above threshold: 6.2 bar (limit 6.0), valve V12 closing`)
)

func benchParse(b *testing.B, raw []byte) {
	p := Parser{Source: "syslog", Loc: time.UTC}
	meta := Meta{Peer: "192.0.2.7:40000", PeerIP: "192.0.2.7", Transport: "tcp"}
	now := time.Now()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		ev, err := p.Parse(raw, now, &meta)
		if err != nil || ev.Message == "" {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse5424(b *testing.B) { benchParse(b, bench5424) }
func BenchmarkParse3164(b *testing.B) { benchParse(b, bench3164) }

func BenchmarkFramerOctetCounted(b *testing.B) {
	var stream bytes.Buffer
	for range 1000 {
		fmt.Fprintf(&stream, "%d %s", len(bench5424), bench5424)
	}
	data := stream.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	r := bytes.NewReader(nil)
	for b.Loop() {
		r.Reset(data)
		fr := newFramer(bufioReader(r), DefaultMaxMessageBytes)
		for {
			if _, _, err := fr.next(); err != nil {
				break
			}
		}
	}
}

// discardSink counts and drops.
type discardSink struct{ n atomic.Int64 }

func (d *discardSink) Emit(_ context.Context, evs []event.Event, _ []spool.Checkpoint) error {
	d.n.Add(int64(len(evs)))
	return nil
}

// BenchmarkTCPListener: messages/s from one TCP sender (LF framing, RFC
// 5424 with structured data) through framing, parsing and batching into a
// sink that discards.
func BenchmarkTCPListener(b *testing.B) {
	cfg := DefaultConfig()
	cfg.UDP.Listen, cfg.TCP.Listen = "", "127.0.0.1:0"
	cfg.RateLimit = RateLimitConfig{}
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Listen(ctx); err != nil {
		b.Fatal(err)
	}
	sink := &discardSink{}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, sink) }()
	c, err := net.Dial("tcp", s.Addr(TransportTCP).String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	line := append(append([]byte{}, bench5424...), '\n')
	const chunk = 256
	buf := bytes.Repeat(line, chunk)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		n := min(chunk, b.N-sent)
		if _, err := c.Write(buf[:n*len(line)]); err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	for sink.n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	cancel()
	<-done
}

func bufioReader(r *bytes.Reader) *bufio.Reader { return bufio.NewReaderSize(r, streamBuf) }

// BenchmarkUDPListener: datagrams/s from one sender into a discarding
// sink. Datagrams the socket buffer drops are not counted as received;
// the figure is what was received per second of sending.
func BenchmarkUDPListener(b *testing.B) {
	cfg := DefaultConfig()
	cfg.UDP.Listen, cfg.TCP.Listen = "127.0.0.1:0", ""
	cfg.RateLimit = RateLimitConfig{}
	cfg.UDPReadBuffer = 4 << 20
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Listen(ctx); err != nil {
		b.Fatal(err)
	}
	sink := &discardSink{}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, sink) }()
	c, err := net.Dial("udp", s.Addr(TransportUDP).String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(int64(len(bench5424)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(bench5424); err != nil {
			b.Fatal(err)
		}
	}
	// Wait until what was not dropped has arrived.
	for {
		st := s.Status().Listeners[0]
		if st.Received+st.SocketDrops >= uint64(b.N) || sink.n.Load() >= int64(b.N) {
			break
		}
		before := st.Received
		time.Sleep(20 * time.Millisecond)
		if s.Status().Listeners[0].Received == before && s.Status().Queued == 0 {
			break
		}
	}
	b.StopTimer()
	st := s.Status().Listeners[0]
	b.ReportMetric(float64(st.Received)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(st.SocketDrops), "socket_drops")
	cancel()
	<-done
}
