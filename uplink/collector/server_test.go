package collector

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSessions speaks the protocol to a real server over TLS, frame by
// frame, and checks each answer.
func TestSessions(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, pki.InitCA(dir, "test", pki.Options{}))
	_, _, err := pki.IssueCollector(dir, "localhost", []string{"127.0.0.1"}, pki.Options{})
	require.NoError(t, err)
	_, _, err = pki.IssueGateway(dir, "gw-1", pki.Options{})
	require.NoError(t, err)
	ca := filepath.Join(dir, pki.CACertFile)
	cert, key := pki.CollectorFiles(dir, "localhost")
	stc, err := uplink.ServerTLS(uplink.TLSConfig{CA: ca, Cert: cert, Key: key})
	require.NoError(t, err)
	gcert, gkey := pki.GatewayFiles(dir, "gw-1")
	ctc, err := uplink.ClientTLS(uplink.TLSConfig{CA: ca, Cert: gcert, Key: gkey}, "localhost")
	require.NoError(t, err)

	logs := &syncBuf{}
	sink := newMemSink()
	cfg := DefaultConfig()
	cfg.MaxFrame = 1 << 20
	srv := NewServer(cfg, stc, sink, slog.New(slog.NewTextHandler(logs, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	hello := &uplink.Hello{Version: uplink.ProtocolVersion, Gateway: "gw-1", BootID: "b", Floor: 99}
	good := payload(t, 100, 3)
	bomb := zst(t, make([]byte, 4<<20))
	cases := []struct {
		name   string
		send   []uplink.Message
		want   []uplink.Message // answers in order; an Error is compared by code
		logged string
	}{
		{"data and ping", []uplink.Message{hello, &uplink.Ping{Nonce: 5},
			&uplink.Data{First: 100, Count: 3, Codec: uplink.CodecZstd, Payload: zst(t, good)},
			&uplink.Data{First: 101, Count: 3, Payload: payload(t, 101, 3)}},
			[]uplink.Message{&uplink.Welcome{Version: uplink.ProtocolVersion, Highest: 99}, &uplink.Pong{Nonce: 5},
				&uplink.Ack{Cumulative: 102}, &uplink.Ack{Cumulative: 103}}, "gateway connected"},
		{"resume", []uplink.Message{hello}, []uplink.Message{&uplink.Welcome{Version: uplink.ProtocolVersion, Highest: 103}}, ""},
		{"version", []uplink.Message{&uplink.Hello{Version: 1, Gateway: "gw-1"}},
			[]uplink.Message{&uplink.Error{Code: uplink.ErrVersion}}, "reason=version"},
		{"identity", []uplink.Message{&uplink.Hello{Version: uplink.ProtocolVersion, Gateway: "gw-2"}},
			[]uplink.Message{&uplink.Error{Code: uplink.ErrIdentity}}, `cert_gateway=gw-1`},
		{"zip bomb", []uplink.Message{hello, &uplink.Data{First: 200, Count: 1, Codec: uplink.CodecZstd, Payload: bomb}},
			[]uplink.Message{&uplink.Welcome{Version: uplink.ProtocolVersion, Highest: 103}, &uplink.Error{Code: uplink.ErrPayload}},
			"exceeds the limit"},
		{"data before hello", []uplink.Message{&uplink.Data{First: 1, Count: 1, Payload: good}},
			[]uplink.Message{&uplink.Error{Code: uplink.ErrProtocol}}, "first message is not hello"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", ln.Addr().String(), ctc)
			require.NoError(t, err)
			defer conn.Close()
			var out []byte
			for _, m := range c.send {
				out = uplink.AppendFrame(out, m)
			}
			_, err = conn.Write(out)
			require.NoError(t, err)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(conn)
			for _, want := range c.want {
				typ, body, _, err := uplink.ReadFrame(br, nil, 1<<20)
				require.NoError(t, err)
				got, err := uplink.Decode(typ, body)
				require.NoError(t, err)
				if we, ok := want.(*uplink.Error); ok {
					ge, ok := got.(*uplink.Error)
					require.True(t, ok, "got %#v", got)
					require.Equal(t, we.Code, ge.Code, ge.Message)
					continue
				}
				require.Equal(t, want, got)
			}
			require.Eventually(t, func() bool { return strings.Contains(logs.String(), c.logged) }, 5*time.Second, 5*time.Millisecond,
				"log: %s", logs.String())
		})
	}
	require.Len(t, sink.written, 4, "100..103 once each")
}
