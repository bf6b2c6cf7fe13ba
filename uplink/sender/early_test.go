package sender

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
)

// orderTransport dials through the real TLS transport and records, per
// connection, the types of the frames the gateway wrote before it read
// anything from the collector.
type orderTransport struct {
	inner Transport
	mu    sync.Mutex
	conns [][]uplink.MsgType
}

func (o *orderTransport) Dial(ctx context.Context, ep uplink.Endpoint, id *uplink.Identity) (Link, error) {
	l, err := o.inner.Dial(ctx, ep, id)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.conns = append(o.conns, nil)
	return &orderLink{Link: l, o: o, i: len(o.conns) - 1}, nil
}

func (o *orderTransport) written() [][]uplink.MsgType {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([][]uplink.MsgType, len(o.conns))
	for i, c := range o.conns {
		out[i] = append([]uplink.MsgType(nil), c...)
	}
	return out
}

type orderLink struct {
	Link
	o    *orderTransport
	i    int
	read bool
}

// Write sees whole frames: the sender writes one frame a call.
func (l *orderLink) Write(b []byte) (int, error) {
	l.o.mu.Lock()
	if !l.read && len(b) > 4 {
		l.o.conns[l.i] = append(l.o.conns[l.i], uplink.MsgType(b[4]))
	}
	l.o.mu.Unlock()
	return l.Link.Write(b)
}

func (l *orderLink) Read(b []byte) (int, error) {
	n, err := l.Link.Read(b)
	if n > 0 {
		l.o.mu.Lock()
		l.read = true
		l.o.mu.Unlock()
	}
	return n, err
}

// TestFirstBatchGoesWithHello: after a session has seen the collector's
// Welcome, the next session sends its first batch right behind Hello,
// before Welcome comes back, so the first ack after a collector returns
// costs one round trip less. The first session knows no limits yet and
// waits for Welcome. Nothing is lost or written twice across the restart.
func TestFirstBatchGoesWithHello(t *testing.T) {
	pkiDir := provision(t, "gw-1")
	sinkPath := filepath.Join(t.TempDir(), "sink.jsonl")
	p := startCollector(t, pkiDir, sinkPath, "")
	addr := p.addr
	sp := openSpool(t)
	cfg := gatewayConfig(pkiDir, "gw-1", addr)
	cfg.ReconnectMin, cfg.ReconnectMax = 10*time.Millisecond, 50*time.Millisecond
	s, err := New(cfg, "gw-1", "boot", sp, quiet())
	require.NoError(t, err)
	ot := &orderTransport{inner: tlsTransport{}}
	s.SetTransport(uplink.TransportTLS, ot)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	seqs := appendLines(t, sp, 0, 300)
	waitDrained(t, sp, s)
	p.stop()
	seqs = append(seqs, appendLines(t, sp, 1000, 300)...)
	p = startCollector(t, pkiDir, sinkPath, addr)
	defer p.stop()
	waitDrained(t, sp, s)

	conns := ot.written()
	require.GreaterOrEqual(t, len(conns), 2)
	require.Equal(t, []uplink.MsgType{uplink.MsgHello}, conns[0], "the first session waits for Welcome")
	// Dials while the collector was down wrote nothing; the session that
	// delivered the second lot is the last.
	last := conns[len(conns)-1]
	require.Equal(t, []uplink.MsgType{uplink.MsgHello, uplink.MsgData}, last, "Data goes right behind Hello")

	got := sinkSeqs(t, sinkPath)
	require.Len(t, got, len(seqs))
	for _, seq := range seqs {
		require.Contains(t, got, seq)
	}
}
