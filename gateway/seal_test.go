package gateway

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/seal"
	"github.com/weirgw/weir/spool"
)

// sealConfig is a gateway with no input but Emit, sealing often.
func sealConfig(t *testing.T, dataDir string, interval string, records int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "weir.yaml")
	cfg := fmt.Sprintf(`gateway:
  id: gw-seal
data_dir: %s
telemetry_interval: 1h
seal_interval: %s
seal_records: %d
metrics:
  listen: ""
inputs:
  files: []
`, dataDir, interval, records)
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o600))
	return p
}

// verifySpool checks the whole Merkle log the spool in dataDir holds
// against the key the gateway was provisioned with.
func verifySpool(t *testing.T, dataDir string, pubs ...ed25519.PublicKey) (*seal.Verifier, int) {
	t.Helper()
	s, err := spool.Open(spool.Options{Dir: filepath.Join(dataDir, "spool"), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer s.Close()
	v := seal.NewVerifierKeys("gw-seal", pubs...)
	n := 0
	for from := uint64(0); ; {
		recs, err := s.Read(from, 1000, 0)
		require.NoError(t, err)
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			var ev event.Event
			require.NoError(t, ev.UnmarshalBinary(r.Data))
			sb, _ := seal.FromEvent(&ev)
			v.Add(r.Seq, merkle.RecordLeaf(r.Seq, r.Data), sb)
			n++
			from = r.Seq + 1
		}
	}
	h := s.Tree()
	require.Empty(t, h.Began, "the log began again")
	if f := v.Finish(); f != nil {
		t.Fatalf("the spool's log fails: %v", f)
	}
	return v, n
}

func emitN(t *testing.T, g *Gateway, n int, tag string) {
	t.Helper()
	for i := 0; i < n; i += 50 {
		evs := make([]event.Event, min(50, n-i))
		for j := range evs {
			evs[j] = event.Event{Source: "test", Kind: event.KindLog, Severity: event.SevInfo, Message: fmt.Sprintf("%s %d", tag, i+j)}
		}
		require.NoError(t, g.Emit(context.Background(), evs, nil))
	}
}

// TestSealsCoverEveryRecord: seals by count, by time and at shutdown,
// across a restart; every seal verifies from the provisioned key, and
// the log continues.
func TestSealsCoverEveryRecord(t *testing.T) {
	dataDir := t.TempDir()
	pub, err := seal.Provision(filepath.Join(dataDir, "seal"))
	require.NoError(t, err)
	file := sealConfig(t, dataDir, "1s", 100)
	for run := range 2 {
		g := newTestGateway(t, file)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		<-g.running
		emitN(t, g, 450, fmt.Sprintf("run %d", run))
		require.NotNil(t, g.sealer, "seals are on")
		require.Eventually(t, func() bool { return g.sealer.status().Made >= 1 }, 10*time.Second, 10*time.Millisecond,
			"450 records with seal_records 100 make a seal by count (a burst appended faster than the sealer wakes makes fewer than 4)")
		made := g.sealer.status().Made
		emitN(t, g, 7, "mid")
		require.Eventually(t, func() bool { return g.sealer.status().Made > made }, 10*time.Second, 10*time.Millisecond,
			"a seal by time over the new records")
		emitN(t, g, 7, "tail")
		cancel()
		require.NoError(t, <-done)
	}
	v, n := verifySpool(t, dataDir, pub)
	st := v.Stats()
	t.Logf("%d records, %+v, epoch due %d", n, st, v.Epoch())
	require.GreaterOrEqual(t, st.Seals, uint64(6))
	require.Equal(t, uint64(n), st.Proven+1, "every record but the last seal is under a seal (the shutdown seal is the last record)")
}

func TestSealConfigIsValidated(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"seal_interval: 10ms", "seal_interval: 10ms is below 1s"},
		{"seal_records: 5", "seal_records: 5 is not between 100"},
	} {
		p := filepath.Join(t.TempDir(), "weir.yaml")
		require.NoError(t, os.WriteFile(p, []byte(c.yaml+"\n"), 0o600))
		_, err := Load(p, true)
		require.ErrorContains(t, err, c.want)
	}
}

// The crash test runs this test binary again as a gateway that emits as
// fast as it can with a seal every 100 records, and kills it with SIGKILL
// at random moments: during appends, during seals, between a seal's
// steps.
const sealCrashEnv = "SEAL_CRASH_CHILD_FILE"

func init() {
	if file := os.Getenv(sealCrashEnv); file != "" {
		sealCrashChild(file)
		os.Exit(0)
	}
}

func sealCrashChild(file string) {
	l, err := Load(file, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	g, err := New(l.Config, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		os.Exit(3)
	}
	go func() {
		if err := g.Run(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "run:", err)
			os.Exit(4)
		}
	}()
	<-g.running
	fmt.Println("ready")
	for i := 0; ; i++ {
		evs := make([]event.Event, 1+i%20)
		for j := range evs {
			evs[j] = event.Event{Source: "test", Kind: event.KindLog, Severity: event.SevInfo, Message: fmt.Sprintf("record %d.%d", i, j)}
		}
		if err := g.Emit(context.Background(), evs, nil); err != nil {
			fmt.Fprintln(os.Stderr, "emit:", err)
			os.Exit(5)
		}
	}
}

func TestSealsSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	const kills = 24
	dataDir := t.TempDir()
	pub, err := seal.Provision(filepath.Join(dataDir, "seal"))
	require.NoError(t, err)
	file := sealConfig(t, dataDir, "1s", 100)
	var lastSeals uint64
	for round := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), sealCrashEnv+"="+file)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			ready <- sc.Scan() && sc.Text() == "ready"
		}()
		select {
		case ok := <-ready:
			require.True(t, ok, "round %d: child did not start: %s", round, stderr.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: child did not start: %s", round, stderr.String())
		}
		time.Sleep(time.Duration(20+rand.IntN(300)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		err = cmd.Wait()
		require.Error(t, err, "child must die by SIGKILL: %s", stderr.String())
		v, n := verifySpool(t, dataDir, pub)
		st := v.Stats()
		require.GreaterOrEqual(t, st.Seals, lastSeals, "round %d: seals lost", round)
		lastSeals = st.Seals
		if round == kills-1 {
			t.Logf("%d kills: %d records, %d seals verified, epoch due %d, %d records after the last seal", kills, n, st.Seals, v.Epoch(), v.Unsealed())
		}
	}
	require.Greater(t, lastSeals, uint64(kills), "the children sealed too little to test the kills during seals")
}

// TestSealKeyProvisionedAgain: a gateway given a new seal key starts, and
// its next seal begins a new chain and says so (in the seal and in its
// record's message); with both keys registered, in order, the whole log
// verifies, the new chain reported as a new log.
func TestSealKeyProvisionedAgain(t *testing.T) {
	dataDir := t.TempDir()
	keyDir := filepath.Join(dataDir, "seal")
	pub1, err := seal.Provision(keyDir)
	require.NoError(t, err)
	file := sealConfig(t, dataDir, "1h", 100)
	runOnce := func(tag string) {
		g := newTestGateway(t, file)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		select {
		case <-g.running:
		case err := <-done:
			cancel()
			t.Fatalf("%s: the gateway did not start: %v", tag, err)
		}
		emitN(t, g, 250, tag)
		require.Eventually(t, func() bool { return g.sealer.status().Made >= 1 }, 10*time.Second, 10*time.Millisecond)
		cancel()
		require.NoError(t, <-done)
	}
	runOnce("first key")
	require.NoError(t, os.RemoveAll(keyDir))
	pub2, err := seal.Provision(keyDir)
	require.NoError(t, err)
	runOnce("second key")

	s, err := spool.Open(spool.Options{Dir: filepath.Join(dataDir, "spool"), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	recs, err := s.Read(0, 10000, 0)
	require.NoError(t, err)
	var began []string
	for _, r := range recs {
		var ev event.Event
		require.NoError(t, ev.UnmarshalBinary(r.Data))
		if sb, ok := seal.FromEvent(&ev); ok {
			h, _, _, err := seal.Parse(sb)
			require.NoError(t, err)
			if h.Began != "" {
				began = append(began, fmt.Sprintf("epoch %d: %s", h.Epoch, h.Began))
			}
			if h.Began == "new seal key (provisioned again)" {
				_, err := seal.Open(sb, pub2)
				require.NoError(t, err, "the new chain's first seal is signed with the new key")
				require.Contains(t, ev.Message, "a new log begins: new seal key (provisioned again)")
			}
		}
	}
	require.Equal(t, []string{"epoch 0: new spool", "epoch 0: new seal key (provisioned again)"}, began)
	require.NoError(t, s.Close())
	v, _ := verifySpool(t, dataDir, pub1, pub2)
	require.Len(t, v.NewLogs(), 1, "the second key's chain is a new log")
	require.Equal(t, 2, v.NewLogs()[0].Key)
}

// TestSealsDeclareEvictions: critical records on a full spool evict bulk
// ones; the seals declare them, and the log verifies with them missing.
func TestSealsDeclareEvictions(t *testing.T) {
	dataDir := t.TempDir()
	pub, err := seal.Provision(filepath.Join(dataDir, "seal"))
	require.NoError(t, err)
	file := sealConfig(t, dataDir, "1h", 0)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, append(b, "spool:\n  max_bytes: 1MiB\n"...), 0o600))
	g := newTestGateway(t, file)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	select {
	case <-g.running:
	case err := <-done:
		t.Fatalf("the gateway did not start: %v", err)
	}
	pad := strings.Repeat("x", 900)
	for i := 0; ; i++ {
		evs := make([]event.Event, 20)
		for j := range evs {
			evs[j] = event.Event{Source: "bulk", Kind: event.KindLog, Priority: event.PriorityBulk, Message: fmt.Sprintf("%d.%d %s", i, j, pad)}
		}
		c, ccancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := g.Emit(c, evs, nil)
		ccancel()
		if err != nil {
			break // bulk waits from 90 %
		}
	}
	g.sealer.seal(ctx, "test") // a seal over the bulk records before any is evicted
	for i := range 40 {
		evs := make([]event.Event, 20)
		for j := range evs {
			evs[j] = event.Event{Source: "crit", Kind: event.KindAlert, Priority: event.PriorityCritical, Message: fmt.Sprintf("%d.%d %s", i, j, pad)}
		}
		require.NoError(t, g.Emit(ctx, evs, nil))
	}
	evicted := g.spool.Stats().Classes[spool.ClassBulk].Evicted
	require.Positive(t, evicted, "critical records evicted bulk ones")
	cancel()
	require.NoError(t, <-done)
	v, _ := verifySpool(t, dataDir, pub)
	require.GreaterOrEqual(t, v.Stats().Declared, uint64(evicted), "every eviction declared (and those the shutdown's seal made)")
	t.Logf("%d bulk records evicted and declared; %+v", evicted, v.Stats())
}
