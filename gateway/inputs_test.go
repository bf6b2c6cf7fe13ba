package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/spool"
)

// These tests run the whole gateway with one optional input configured
// (syslog, audit, integrity), feed that input from outside, and read the
// spool back through the admin socket, as `weir spool inspect` does.

// testGateway is a gateway running in the background for one test.
type testGateway struct {
	socket, file, dataDir string
	status                *Status
}

// gatewayConfig is a configuration file for a test: no file tailing, no
// metrics listener, no uplink, the system clock; inputs is the YAML of
// inputs' other keys, indented by two spaces.
func gatewayConfig(t *testing.T, dataDir, inputs string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "weir.yaml")
	cfg := fmt.Sprintf(`gateway:
  id: gw-inputs
data_dir: %s
telemetry_interval: 1h
metrics:
  listen: ""
inputs:
  files: []
%s`, dataDir, inputs)
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o600))
	return p
}

// newTestGateway loads the configuration file and builds its gateway.
func newTestGateway(t *testing.T, file string) *Gateway {
	t.Helper()
	l, err := Load(file, true)
	require.NoError(t, err)
	g, err := New(l.Config, "test", slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	require.NoError(t, err)
	g.SetConfigFile(l.File)
	return g
}

// startGateway runs the gateway of the configuration file until the test
// ends (then it must stop cleanly) and waits for its admin socket.
func startGateway(t *testing.T, file, dataDir string) *testGateway {
	t.Helper()
	g := newTestGateway(t, file)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, "gateway run")
		case <-time.After(20 * time.Second):
			t.Error("gateway did not stop within 20s")
		}
	})
	tg := &testGateway{socket: filepath.Join(dataDir, "weir.sock"), file: file, dataDir: dataDir}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("gateway stopped at start: %v", err)
		default:
		}
		st, err := FetchStatus(ctx, tg.socket)
		if err == nil {
			tg.status = st
			return tg
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin socket never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spooled is a spooled record as the admin socket renders it.
type spooled struct {
	Seq     uint64 `json:"seq"`
	TimeNs  int64  `json:"time_ns"`
	Quality struct {
		Source string `json:"source"`
		State  string `json:"state"`
	} `json:"time_quality"`
	Source   string         `json:"source"`
	Kind     string         `json:"kind"`
	Severity string         `json:"severity"`
	Host     string         `json:"host"`
	Message  string         `json:"message"`
	Fields   map[string]any `json:"fields"`
}

// records reads the whole spool.
func (tg *testGateway) records(t *testing.T) []spooled {
	t.Helper()
	recs, err := FetchSpoolRecords(context.Background(), tg.socket, 0, 10000)
	require.NoError(t, err)
	out := make([]spooled, 0, len(recs))
	for _, r := range recs {
		require.Empty(t, r.Error, "record %d does not decode", r.Seq)
		var s spooled
		require.NoError(t, json.Unmarshal(r.Event, &s))
		out = append(out, s)
	}
	return out
}

// waitRecords polls the spool until want holds for what is there, and
// returns the spool's records then.
func (tg *testGateway) waitRecords(t *testing.T, what string, want func([]spooled) bool) []spooled {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs := tg.records(t)
		if want(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			for _, r := range recs {
				t.Logf("spooled: %s %s %q %v", r.Source, r.Kind, r.Message, r.Fields)
			}
			t.Fatalf("no %s in the spool after 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// find returns the records of source whose message holds text.
func find(recs []spooled, source, text string) []spooled {
	var out []spooled
	for _, r := range recs {
		if r.Source == source && strings.Contains(r.Message, text) {
			out = append(out, r)
		}
	}
	return out
}

// requireStamped checks a record carries the gateway's time and clock
// quality (clock.mode system in these tests) and the right kind.
func requireStamped(t *testing.T, r spooled, kind string) {
	t.Helper()
	require.Equal(t, kind, r.Kind, "record %d (%q)", r.Seq, r.Message)
	require.Equal(t, "system", r.Quality.Source, "record %d is stamped with the gateway's clock", r.Seq)
	require.Equal(t, "freerun", r.Quality.State, "record %d", r.Seq)
	require.NotZero(t, r.TimeNs, "record %d", r.Seq)
	require.InDelta(t, time.Now().UnixNano(), r.TimeNs, float64(time.Hour), "record %d is stamped now, not with the sender's time", r.Seq)
}

func TestSyslogInput(t *testing.T) {
	data := t.TempDir()
	tg := startGateway(t, gatewayConfig(t, data, `  syslog:
    udp: {listen: "127.0.0.1:0"}
    tcp: {listen: "127.0.0.1:0"}
`), data)
	st := tg.status.Syslog
	require.NotNil(t, st, "weir status shows syslog once it is configured")
	require.Nil(t, tg.status.Audit, "audit stays off unless configured")
	require.Nil(t, tg.status.Integrity, "integrity stays off unless configured")
	addrs := map[string]string{}
	for _, l := range st.Listeners {
		addrs[l.Transport] = l.Address
	}
	require.NotContains(t, addrs["udp"], ":0", "status shows the bound port")
	require.NotContains(t, addrs["tcp"], ":0", "status shows the bound port")

	u, err := net.Dial("udp", addrs["udp"])
	require.NoError(t, err)
	defer u.Close()
	// An RFC 5424 message whose own (old) timestamp becomes Observed.
	_, err = u.Write([]byte("<34>1 2003-10-11T22:14:15.003Z plc-7 pump - ID47 - over UDP"))
	require.NoError(t, err)
	c, err := net.Dial("tcp", addrs["tcp"])
	require.NoError(t, err)
	msg := "<13>Nov 23 15:00:00 rtu-2 app[42]: over TCP"
	_, err = fmt.Fprintf(c, "%d %s", len(msg), msg)
	require.NoError(t, err)
	require.NoError(t, c.Close())

	recs := tg.waitRecords(t, "syslog messages", func(r []spooled) bool {
		return len(find(r, "syslog", "over UDP")) == 1 && len(find(r, "syslog", "over TCP")) == 1
	})
	for _, text := range []string{"over UDP", "over TCP"} {
		r := find(recs, "syslog", text)[0]
		requireStamped(t, r, "log")
		require.Equal(t, "gw-inputs", tg.status.Gateway)
	}
	udp := find(recs, "syslog", "over UDP")[0]
	require.Equal(t, "plc-7", udp.Host)
	require.Equal(t, "crit", udp.Severity, "from the PRI")
	require.Equal(t, "udp", udp.Fields["transport"])

	st2, err := FetchStatus(context.Background(), tg.socket)
	require.NoError(t, err)
	require.EqualValues(t, 2, st2.Syslog.Emitted)
}

func TestSyslogAddressInUse(t *testing.T) {
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	data := t.TempDir()
	g := newTestGateway(t, gatewayConfig(t, data, fmt.Sprintf(`  syslog:
    udp: {listen: %q}
    tcp: {listen: ""}
`, busy.LocalAddr())))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = g.Run(ctx)
	require.Error(t, err, "an address in use must fail start-up")
	require.ErrorContains(t, err, "inputs.syslog.udp.listen "+busy.LocalAddr().String()+": ", "the error names the key")
	require.ErrorContains(t, err, "address already in use")
}

// auditEvent is one audit event of two records, as auditd writes it.
func auditEvent(serial int, file string) string {
	return fmt.Sprintf(`type=SYSCALL msg=audit(1795444792.070:%d): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd1 a2=241 a3=1b6 items=2 ppid=1 pid=4242 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="touch" exe="/usr/bin/touch" key="watch-etc"
type=PATH msg=audit(1795444792.070:%d): item=0 name="%s" inode=409248 dev=fd:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=CREATE
`, serial, serial, file)
}

func TestAuditInput(t *testing.T) {
	data, logDir := t.TempDir(), t.TempDir()
	log := filepath.Join(logDir, "audit.log")
	require.NoError(t, os.WriteFile(log, []byte(auditEvent(100, "/etc/before")), 0o600))
	tg := startGateway(t, gatewayConfig(t, data, fmt.Sprintf(`  audit:
    path: %s
    poll_interval: 20ms
    event_timeout: 50ms
`, log)), data)
	require.NotNil(t, tg.status.Audit)
	require.Nil(t, tg.status.Syslog, "syslog stays off unless configured")

	f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(auditEvent(101, "/etc/after"))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	recs := tg.waitRecords(t, "audit events", func(r []spooled) bool {
		return len(find(r, "audit", "")) == 2
	})
	paths := map[string]bool{}
	for _, r := range find(recs, "audit", "") {
		requireStamped(t, r, "audit")
		require.Equal(t, "watch-etc", r.Fields["key"], "record %d", r.Seq)
		for k, v := range r.Fields {
			if strings.HasPrefix(k, "path") {
				paths[fmt.Sprint(v)] = true
			}
		}
	}
	require.True(t, paths["/etc/before"] && paths["/etc/after"], "both events, the one before start and the one appended: %v", paths)

	st, err := FetchStatus(context.Background(), tg.socket)
	require.NoError(t, err)
	require.EqualValues(t, 2, st.Audit.Events)
	require.Equal(t, "reading", st.Audit.State)
}

// TestAuditCheckpointCommitted: the reader's position goes into the spool
// with its records, so a restart resumes after them.
func TestAuditCheckpointCommitted(t *testing.T) {
	data, logDir := t.TempDir(), t.TempDir()
	log := filepath.Join(logDir, "audit.log")
	require.NoError(t, os.WriteFile(log, []byte(auditEvent(7, "/etc/once")), 0o600))
	file := gatewayConfig(t, data, fmt.Sprintf(`  audit:
    path: %s
    poll_interval: 20ms
    event_timeout: 50ms
`, log))
	for run := range 2 {
		t.Run(fmt.Sprint("run ", run), func(t *testing.T) {
			tg := startGateway(t, file, data)
			tg.waitRecords(t, "the audit event", func(r []spooled) bool { return len(find(r, "audit", "")) == 1 })
			// Give a wrongly repeated event the time to show up.
			time.Sleep(200 * time.Millisecond)
			require.Len(t, find(tg.records(t), "audit", ""), 1, "the event is spooled once across restarts")
		})
	}
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(data, "spool"), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer sp.Close()
	var sources []string
	require.NoError(t, sp.Checkpoints("audit:", func(source string, _ []byte) error {
		sources = append(sources, source)
		return nil
	}))
	require.Equal(t, []string{"audit:" + log}, sources)
}

func TestIntegrityInput(t *testing.T) {
	watched := t.TempDir()
	// The data directory lies inside the watched one: the spool changes
	// with every record and must not be reported.
	data := filepath.Join(watched, "data")
	target := filepath.Join(watched, "site.conf")
	require.NoError(t, os.WriteFile(target, []byte("setpoint=1\n"), 0o600))
	tg := startGateway(t, gatewayConfig(t, data, fmt.Sprintf(`  integrity:
    paths: [%s]
    settle: 50ms
`, watched)), data)
	st := tg.status.Integrity
	require.NotNil(t, st)
	require.Contains(t, st.Paths, watched)
	cfgReal, err := filepath.EvalSymlinks(tg.file)
	require.NoError(t, err)
	require.Contains(t, st.Paths, cfgReal, "the configuration file is watched whatever paths says")

	tg.waitRecords(t, "the baseline summary", func(r []spooled) bool {
		return len(find(r, "integrity", "baseline created")) > 0
	})
	// Written before the change, so it would be reported first.
	require.NoError(t, os.WriteFile(filepath.Join(data, "probe"), []byte("x"), 0o600))
	require.NoError(t, os.WriteFile(target, []byte("setpoint=2\n"), 0o600))
	recs := tg.waitRecords(t, "the change record", func(r []spooled) bool {
		return len(find(r, "integrity", "modified "+target)) == 1
	})
	r := find(recs, "integrity", "modified "+target)[0]
	requireStamped(t, r, "integrity")
	require.Equal(t, target, r.Fields["path"])
	require.Equal(t, "modified", r.Fields["change"])
	for _, x := range find(recs, "integrity", "") {
		require.False(t, strings.HasPrefix(fmt.Sprint(x.Fields["path"]), data), "the data directory is never reported: %q", x.Message)
	}
}
