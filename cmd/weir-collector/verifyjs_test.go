package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink/collector"
)

// TestVerifyJetStream: weir-collector verify --jetstream reads the stream
// the collectors wrote (a real nats-server with JetStream) and checks
// every gateway's log as it does a sink file: the untouched one proven
// whole, the one with a record changed after it was sealed failing at
// its seal's span.
func TestVerifyJetStream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	ns, err := server.NewServer(&server.Options{ServerName: "verify", Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt := collector.DefaultJetStreamOptions()
	opt.URLs, opt.Name, opt.Replicas, opt.Stream = url, "test", 1, "SITE"
	js, err := collector.OpenJetStream(ctx, opt, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer js.Close()
	keys := t.TempDir()
	for _, gw := range []string{"gw-ok", "gw-bad"} {
		change := 0
		if gw == "gw-bad" {
			change = 45
		}
		entries, pub := sealedEntries(t, filepath.Join(t.TempDir(), gw), gw, 1000, 60, 20, change)
		require.NoError(t, collector.RegisterSealKey(keys, gw, pub))
		for i := 0; i < len(entries); i += 10 {
			_, err := js.Write(gw, entries[i:min(i+10, len(entries))])
			require.NoError(t, err)
		}
	}

	var out bytes.Buffer
	cmd := newVerifyCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--jetstream", url, "--jetstream-stream", "SITE", "--seal-keys", keys})
	err = cmd.Execute()
	t.Log(out.String())
	require.ErrorIs(t, err, errSilentExit)
	require.Contains(t, out.String(), "gw-ok: 63 records, 62 proven, 0 gaps declared, 3 seals checked")
	require.Contains(t, out.String(), "TAMPERED: gateway gw-bad, epoch 2: log fails at sequences 1041..1061")

	out.Reset()
	cmd = newVerifyCmd()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--jetstream", url, "--jetstream-stream", "SITE", "--seal-keys", keys, "--gateway", "gw-ok"})
	require.NoError(t, cmd.Execute())
	require.NotContains(t, out.String(), "gw-bad")
}
