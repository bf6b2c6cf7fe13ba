package sender

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/pki"
)

// logBuffer collects a collector's log for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func openSink(t testing.TB) (*collector.JSONL, string) {
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	j, err := collector.OpenJSONL(path, quiet())
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j, path
}

func endpointStatus(s *Sender, name string) EndpointStatus {
	for _, e := range s.Status().Endpoints {
		if e.Endpoint == name {
			return e
		}
	}
	return EndpointStatus{}
}

func TestTransportsAndCodecs(t *testing.T) {
	cases := []struct {
		transport   string
		compression string
	}{
		{"tls", "zstd"}, {"tls", "none"}, {"dtls", "zstd"}, {"dtls", "none"},
	}
	pkiDir := provision(t, "gw-1")
	for _, c := range cases {
		t.Run(c.transport+"-"+c.compression, func(t *testing.T) {
			j, sinkPath := openSink(t)
			p := startServer(t, pkiDir, j, "", c.transport, quiet())
			sp := openSpool(t)
			seqs := appendLines(t, sp, 0, 700)
			cfg := gatewayConfig(pkiDir, "gw-1", p.addr)
			cfg.Endpoints[0].Transport = uplink.Transport(c.transport)
			cfg.Compression = c.compression
			s, _ := runSender(t, cfg, "gw-1", sp)
			seqs = append(seqs, appendLines(t, sp, 700, 300)...)
			waitDrained(t, sp, s)
			got := sinkSeqs(t, sinkPath)
			require.Len(t, got, len(seqs))
			e := s.Status().Endpoints[0]
			require.Equal(t, uint64(len(seqs)), e.RecordsAcked)
			require.NotEmpty(t, e.Negotiated)
			if c.compression == "zstd" {
				require.Less(t, e.WireBytesAcked, e.BytesAcked/2, "log lines compress")
			} else {
				require.Greater(t, e.WireBytesAcked, e.BytesAcked)
			}
			require.Eventually(t, func() bool { return endpointStatus(s, e.Endpoint).SRTTMillis > 0 }, 10*time.Second, 20*time.Millisecond)
			if c.transport == "dtls" {
				require.Contains(t, e.Negotiated, "DTLS 1.2")
				require.Equal(t, "rudp", endpointStatus(s, e.Endpoint).LossSource)
			}
		})
	}
}

func TestFailoverAndFailBack(t *testing.T) {
	pkiDir := provision(t, "gw-1")
	j, sinkPath := openSink(t)
	first := startServer(t, pkiDir, j, "", "tls", quiet())
	firstAddr := first.addr
	first.stop() // the preferred collector is down at start
	second := startServer(t, pkiDir, j, "", "tls", quiet())

	sp := openSpool(t)
	seqs := appendLines(t, sp, 0, 300)
	cfg := gatewayConfig(pkiDir, "gw-1", firstAddr)
	cfg.Endpoints = append(cfg.Endpoints, uplink.Endpoint{Address: second.addr, ServerName: "localhost"})
	cfg.ProbeInterval = 100 * time.Millisecond
	s, _ := runSender(t, cfg, "gw-1", sp)
	waitDrained(t, sp, s)
	st := s.Status()
	require.False(t, st.Endpoints[0].Active)
	require.True(t, st.Endpoints[1].Active, "the second endpoint carries while the first is down")
	require.Equal(t, uplink.ReasonRefused, st.Endpoints[0].LastReason)

	// The first returns at its old address: the probe finds it and the
	// sender fails back.
	startServer(t, pkiDir, j, firstAddr, "tls", quiet())
	require.Eventually(t, func() bool {
		st := s.Status()
		return st.Endpoints[0].Active && !st.Endpoints[1].Active
	}, 10*time.Second, 10*time.Millisecond, "no fail-back: %+v", s.Status().Endpoints)
	seqs = append(seqs, appendLines(t, sp, 300, 200)...)
	waitDrained(t, sp, s)
	require.Eventually(t, func() bool { return endpointStatus(s, "tls://"+firstAddr).RecordsAcked == 200 }, 5*time.Second, 10*time.Millisecond)
	require.Len(t, sinkSeqs(t, sinkPath), len(seqs))
}

func TestBalanceSpreadsAndSurvivesLoss(t *testing.T) {
	pkiDir := provision(t, "gw-1")
	j, sinkPath := openSink(t) // one sink shared by both collectors
	a := startServer(t, pkiDir, j, "", "tls", quiet())
	b := startServer(t, pkiDir, j, "", "tls", quiet())

	sp := openSpool(t)
	cfg := gatewayConfig(pkiDir, "gw-1", a.addr)
	cfg.Endpoints = append(cfg.Endpoints, uplink.Endpoint{Address: b.addr, ServerName: "localhost"})
	cfg.Mode = uplink.ModeBalance
	cfg.BatchMaxRecords = 20
	s, _ := runSender(t, cfg, "gw-1", sp)
	var seqs []uint64
	for i := range 10 {
		seqs = append(seqs, appendLines(t, sp, i*200, 200)...)
		if i == 5 {
			// Once a has carried something, stop it mid-run, most likely
			// with batches in flight there.
			require.Eventually(t, func() bool { return s.Status().Endpoints[0].RecordsAcked > 0 }, 10*time.Second, time.Millisecond)
			a.stop()
		}
	}
	waitDrained(t, sp, s)
	got := sinkSeqs(t, sinkPath) // fails on any duplicate
	require.Len(t, got, len(seqs))
	for _, q := range seqs {
		require.Contains(t, got, q)
	}
	st := s.Status()
	require.Positive(t, st.Endpoints[0].RecordsAcked, "both endpoints carried batches")
	require.Positive(t, st.Endpoints[1].RecordsAcked)
}

func TestRefusalsAreExplained(t *testing.T) {
	pkiDir := provision(t, "gw-1", "gw-2")
	other := provision(t, "gw-1")
	past := func() time.Time { return time.Now().Add(-72 * time.Hour) }
	// The expired one is signed by the right CA.
	_, _, err := pki.IssueGateway(pkiDir, "gw-old", pki.Options{Now: past, Validity: time.Hour})
	require.NoError(t, err)

	cases := []struct {
		name      string
		id        string
		cfg       func(uplink.Config) uplink.Config
		reason    uplink.Reason
		gwSays    string
		collector string
	}{
		{"wrong CA", "gw-1", func(c uplink.Config) uplink.Config {
			c.TLS.Cert, c.TLS.Key = pki.GatewayFiles(other, "gw-1")
			return c
		}, uplink.ReasonUnknownCA, "unknown certificate authority", "reason=unknown_ca"},
		{"expired certificate", "gw-old", func(c uplink.Config) uplink.Config {
			c.TLS.Cert, c.TLS.Key = pki.GatewayFiles(pkiDir, "gw-old")
			return c
		}, uplink.ReasonExpired, "expired certificate", "reason=expired"},
		{"mismatched id", "gw-1", func(c uplink.Config) uplink.Config {
			c.TLS.Cert, c.TLS.Key = pki.GatewayFiles(pkiDir, "gw-2")
			return c
		}, uplink.ReasonRefusedID, `hello names gateway "gw-1" but the client certificate is for "gw-2"`, "reason=refused_id"},
	}
	for _, transport := range []string{"tls", "dtls"} {
		for _, c := range cases {
			t.Run(transport+"/"+c.name, func(t *testing.T) {
				logs := &logBuffer{}
				log := slog.New(slog.NewTextHandler(logs, nil))
				j, sinkPath := openSink(t)
				p := startServer(t, pkiDir, j, "", transport, log)
				sp := openSpool(t)
				appendLines(t, sp, 0, 3)
				cfg := c.cfg(gatewayConfig(pkiDir, "gw-1", p.addr))
				cfg.Endpoints[0].Transport = uplink.Transport(transport)
				s, stop := runSender(t, cfg, c.id, sp)
				require.Eventually(t, func() bool { return s.Status().Endpoints[0].HandshakeFailures > 0 }, 10*time.Second, 10*time.Millisecond)
				stop()
				e := s.Status().Endpoints[0]
				require.Equal(t, c.reason, e.LastReason, "last error: %s", e.LastError)
				if transport == "tls" {
					require.Contains(t, e.LastError, c.gwSays)
				}
				require.Positive(t, e.FailureReasons[c.reason])
				require.Equal(t, c.reason, s.Status().LastReason)
				require.Eventually(t, func() bool { return strings.Contains(logs.String(), c.collector) }, 5*time.Second, 10*time.Millisecond,
					"collector log: %s", logs.String())
				require.Equal(t, int64(3), sp.Stats().Records, "nothing may leave the spool")
				require.Empty(t, sinkSeqs(t, sinkPath))
			})
		}
	}
}

func TestRenewedCertificateUsedWithoutRestart(t *testing.T) {
	pkiDir := provision(t)
	past := func() time.Time { return time.Now().Add(-72 * time.Hour) }
	_, _, err := pki.IssueGateway(pkiDir, "gw-1", pki.Options{Now: past, Validity: time.Hour})
	require.NoError(t, err)
	j, sinkPath := openSink(t)
	p := startServer(t, pkiDir, j, "", "tls", quiet())
	sp := openSpool(t)
	seqs := appendLines(t, sp, 0, 50)
	s, _ := runSender(t, gatewayConfig(pkiDir, "gw-1", p.addr), "gw-1", sp)
	require.Eventually(t, func() bool { return s.Status().Endpoints[0].LastReason == uplink.ReasonExpired }, 10*time.Second, 10*time.Millisecond)
	require.Contains(t, s.Status().CertWarning, "own certificate expired")

	// Renew in place: the next handshake reads the new files.
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	_, _, err = pki.IssueGateway(pkiDir, "gw-1", pki.Options{Force: true})
	require.NoError(t, err)
	waitDrained(t, sp, s)
	require.Len(t, sinkSeqs(t, sinkPath), len(seqs))
	require.Empty(t, s.Status().CertWarning)
}

func TestProbe(t *testing.T) {
	pkiDir := provision(t, "gw-1")
	for _, transport := range []string{"tls", "dtls"} {
		t.Run(transport, func(t *testing.T) {
			j, _ := openSink(t)
			p := startServer(t, pkiDir, j, "", transport, quiet())
			cfg := gatewayConfig(pkiDir, "gw-1", p.addr)
			cfg.Endpoints[0].Transport = uplink.Transport(transport)
			res := Probe(context.Background(), cfg, "gw-1", cfg.Endpoints[0], 3)
			require.NoError(t, res.Err)
			require.Len(t, res.RTTs, 3)
			require.NotEmpty(t, res.Chain)
			require.Equal(t, "localhost", res.Chain[0].Subject.CommonName)
			require.NotEmpty(t, res.Negotiated)

			res = Probe(context.Background(), cfg, "gw-other", cfg.Endpoints[0], 3)
			require.Equal(t, uplink.ReasonRefusedID, res.Reason, "%v", res.Err)
		})
	}
}

func TestSilentCollectorTimesOut(t *testing.T) {
	pkiDir := provision(t, "gw-1")
	cert, key := pki.CollectorFiles(pkiDir, "localhost")
	tc, err := uplink.ServerTLS(uplink.TLSConfig{CA: filepath.Join(pkiDir, pki.CACertFile), Cert: cert, Key: key})
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, _, _, err := uplink.ReadFrame(br, nil, 1<<16); err != nil {
					return
				}
				_, _ = c.Write(uplink.AppendFrame(nil, &uplink.Welcome{Version: uplink.ProtocolVersion, MaxRecords: 1000, MaxBytes: 1 << 20}))
				_, _ = io.Copy(io.Discard, br) // then says nothing, ever
			}()
		}
	}()
	sp := openSpool(t)
	cfg := gatewayConfig(pkiDir, "gw-1", ln.Addr().String())
	cfg.Keepalive, cfg.AckTimeout = 50*time.Millisecond, 300*time.Millisecond
	s, _ := runSender(t, cfg, "gw-1", sp)
	require.Eventually(t, func() bool { return strings.Contains(s.Status().Endpoints[0].LastError, "answered no ping") },
		10*time.Second, 10*time.Millisecond, "%+v", s.Status().Endpoints)
}
