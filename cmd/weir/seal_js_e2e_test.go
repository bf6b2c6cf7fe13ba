package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSealsOnSharedHeadEnd: a gateway sealing every 2 s delivers to
// collector a on a JetStream head-end (a nats-server with JetStream);
// a stops and collector b, sharing the stream and the bucket, takes the
// gateway over on the same address. b's live check goes on from a's
// state: no alarm, and its status counts the seals both checked.
// weir-collector verify --jetstream then proves every record.
func TestSealsOnSharedHeadEnd(t *testing.T) {
	e := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	ns, err := server.NewServer(&server.Options{ServerName: "head-end", Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	cfg, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg = append(cfg, fmt.Sprintf("seal_interval: 2s\nseal_key_dir: %s/gw-e2e.seal\n", e.pki)...)
	require.NoError(t, os.WriteFile(e.config, cfg, 0o600))
	collector := func(name string) (func(), string) {
		status := filepath.Join(e.dir, name+"-status.json")
		return e.start("collector-"+name, e.coll, "run", "--listen", e.addr, "--ca", e.pki+"/ca.pem",
			"--cert", e.pki+"/collector-localhost.pem", "--key", e.pki+"/collector-localhost-key.pem",
			"--jetstream", url, "--jetstream-replicas", "1", "--jetstream-name", name, "--no-quarantine",
			"--status-file", status), status
	}
	type sealState struct {
		Gateway string `json:"gateway"`
		Stats   struct {
			Records uint64 `json:"records"`
			Seals   uint64 `json:"seals"`
		} `json:"stats"`
		LastEpoch uint64          `json:"last_epoch"`
		Failure   json.RawMessage `json:"failure"`
	}
	state := func(path string) sealState {
		var st struct {
			Seals []sealState `json:"seals"`
		}
		b, err := os.ReadFile(path)
		if err != nil || json.Unmarshal(b, &st) != nil || len(st.Seals) == 0 {
			return sealState{}
		}
		return st.Seals[0]
	}

	stopA, statusA := collector("a")
	e.appendLines(0, 200)
	stopGw := e.startGateway()
	sealed := func(status string, n uint64) {
		t.Helper()
		if !assert.Eventually(t, func() bool { return state(status).Stats.Seals >= n }, 30*time.Second, 100*time.Millisecond) {
			b, _ := os.ReadFile(status)
			t.Fatalf("fewer than %d seals checked: %s", n, b)
		}
	}
	sealed(statusA, 1)
	e.appendLines(200, 50) // a seal needs records after the last
	sealed(statusA, 2)
	stopA()
	a := state(statusA)
	t.Logf("collector a: %+v", a)

	stopB, statusB := collector("b")
	e.appendLines(250, 50)
	sealed(statusB, a.Stats.Seals+1)
	e.appendLines(300, 50)
	sealed(statusB, a.Stats.Seals+2)
	stopGw()
	time.Sleep(2500 * time.Millisecond) // the status file after the shutdown seal
	stopB()
	b := state(statusB)
	t.Logf("collector b: %+v", b)
	require.Empty(t, a.Failure)
	require.Empty(t, b.Failure, "collector b raised a false alarm")
	require.Greater(t, b.LastEpoch, a.LastEpoch)
	for _, n := range []string{"collector-a.log", "collector-b.log"} {
		log, err := os.ReadFile(filepath.Join(e.dir, n))
		require.NoError(t, err)
		require.NotContains(t, string(log), "tamper-evident log fails", n)
	}

	out, err := exec.Command(e.coll, "verify", "--jetstream", url, "--seal-keys", filepath.Join(e.pki, "seal-keys"), "--json").Output()
	require.NoError(t, err, "%s", out)
	var rs []verifyOut
	require.NoError(t, json.Unmarshal(out, &rs), "%s", out)
	require.Len(t, rs, 1)
	t.Logf("verify --jetstream: %+v", rs[0])
	require.Nil(t, rs[0].Failure)
	require.GreaterOrEqual(t, rs[0].Records, uint64(350))
	require.Equal(t, rs[0].Records-1, rs[0].Proven, "every record but the last seal's own")
	require.Equal(t, b.Stats.Seals, rs[0].Seals, "the live check, across both collectors, checked every seal")
}
