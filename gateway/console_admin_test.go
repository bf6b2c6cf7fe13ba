package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway/console"
)

// TestConsoleAuditSpooled: records the console posts are spooled as audit
// records of weir:console, stamped by the gateway, their console time
// kept as the observed time; a batch with one bad record spools nothing.
func TestConsoleAuditSpooled(t *testing.T) {
	data := t.TempDir()
	tg := startGateway(t, gatewayConfig(t, data, ""), data)
	ctx := context.Background()
	seen := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	login := console.NewRecord(seen, console.ActionLogin, "/dev/ttyS0", "technician")
	cmd := console.NewRecord(seen, console.ActionCommand, "/dev/ttyS0", "technician")
	cmd.Command, cmd.Outcome = "status", "ok"
	require.NoError(t, SendAudit(ctx, tg.socket, []console.Record{login, cmd}))

	recs := tg.waitRecords(t, "console audit records", func(rs []spooled) bool { return len(find(rs, console.Source, "")) == 2 })
	got := find(recs, console.Source, "")
	requireStamped(t, got[0], "audit")
	require.Equal(t, "console /dev/ttyS0: technician logged in", got[0].Message)
	require.Equal(t, "notice", got[0].Severity)
	require.Equal(t, map[string]any{"action": "command", "tty": "/dev/ttyS0", "user": "technician", "id": cmd.ID,
		"command": "status", "outcome": "ok"}, got[1].Fields)

	bad := console.NewRecord(seen, "shell", "/dev/ttyS0", "technician")
	err := SendAudit(ctx, tg.socket, []console.Record{login, bad})
	require.ErrorContains(t, err, `400 Bad Request: bad audit request: records[1].action: "shell" is not one of`)
	big := console.NewRecord(seen, console.ActionCommand, "/dev/ttyS0", "technician")
	big.Command = strings.Repeat("x", 1000)
	require.ErrorContains(t, SendAudit(ctx, tg.socket, []console.Record{big}), "records[0].command: longer than 512 bytes")
	many := make([]console.Record, console.MaxBatch+1)
	for i := range many {
		many[i] = login
	}
	require.ErrorContains(t, SendAudit(ctx, tg.socket, many), "65 records, want 1..64")
	require.ErrorContains(t, do(ctx, tg.socket, "POST", "/v1/audit", strings.NewReader(`{"records":[],"shell":"sh"}`), nil),
		`unknown field "shell"`)
	require.ErrorContains(t, do(ctx, tg.socket, "POST", "/v1/audit", strings.NewReader(`{"records":["`+strings.Repeat("a", 70<<10)+`"]}`), nil),
		"request body too large")
	require.Len(t, find(tg.records(t), console.Source, ""), 2, "nothing of a refused request is spooled")
}

// TestConsoleAuditPeerRefused: a member of admin.group, who may run every
// diagnostic, may not write the audit trail. The test runs its client as
// nobody in the socket's group.
func TestConsoleAuditPeerRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs a client as another user: needs root")
	}
	if os.Getenv("WEIR_TEST_AUDIT_SOCKET") != "" {
		t.Skip("the helper's own run")
	}
	// Everything the client needs must be reachable by nobody: the
	// socket's directory and a copy of this test binary.
	root := t.TempDir()
	require.NoError(t, os.Chmod(root, 0o755))
	for d := filepath.Dir(root); d != "/" && strings.HasPrefix(d, os.TempDir()) && d != filepath.Clean(os.TempDir()); d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	run := filepath.Join(root, "run")
	require.NoError(t, os.Mkdir(run, 0o755))
	data := t.TempDir()
	cfg := gatewayConfig(t, data, "")
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	sock := filepath.Join(run, "weir.sock")
	require.NoError(t, os.WriteFile(cfg, append(b, []byte("admin: {socket: "+sock+", group: \"65534\"}\n")...), 0o600))
	g := newTestGateway(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { _, err := FetchStatus(ctx, sock); return err == nil }, 20*time.Second, 20*time.Millisecond)
	tg := &testGateway{socket: sock}

	self, err := os.Executable()
	require.NoError(t, err)
	bin := filepath.Join(root, "gateway.test")
	copyFile(t, self, bin)
	cmd := exec.Command(bin, "-test.v", "-test.run=^TestConsoleAuditPeerHelper$")
	cmd.Env = append(os.Environ(), "WEIR_TEST_AUDIT_SOCKET="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.ENOEXEC) {
		t.Skip("the test binary cannot run itself here (an emulated architecture without binfmt_misc)")
	}
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "403 Forbidden: audit records are taken from root and weir's own user only")
	require.Contains(t, string(out), "status answered", "the same peer may read the status")
	require.Empty(t, find(tg.records(t), console.Source, ""))
}

// TestConsoleAuditPeerHelper is TestConsoleAuditPeerRefused's client.
func TestConsoleAuditPeerHelper(t *testing.T) {
	sock := os.Getenv("WEIR_TEST_AUDIT_SOCKET")
	if sock == "" {
		t.Skip("run by TestConsoleAuditPeerRefused")
	}
	ctx := context.Background()
	_, err := FetchStatus(ctx, sock)
	require.NoError(t, err)
	t.Log("status answered")
	err = SendAudit(ctx, sock, []console.Record{console.NewRecord(time.Now(), console.ActionLogin, "/dev/ttyS0", "technician")})
	require.Error(t, err)
	t.Log(err)
}

func copyFile(t *testing.T, from, to string) {
	src, err := os.Open(from)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
}

// TestConsoleLogs: the daemon's log lines reach GET /v1/logs at info even
// when log.level is warn, newest last.
func TestConsoleLogs(t *testing.T) {
	data := t.TempDir()
	tg := startGateway(t, gatewayConfig(t, data, ""), data) // its logger is at warn
	ctx := context.Background()
	// "gateway running" is logged once every part started, which may be
	// just after the admin socket answers.
	var l *Logs
	require.Eventually(t, func() bool {
		var err error
		l, err = FetchLogs(ctx, tg.socket, 500)
		return err == nil && strings.Contains(strings.Join(l.Lines, "\n"), `msg="gateway running" id=gw-inputs`)
	}, 10*time.Second, 20*time.Millisecond, "the log ring")
	require.GreaterOrEqual(t, l.Total, uint64(len(l.Lines)))
	require.ErrorContains(t, get(ctx, tg.socket, "/v1/logs?n=501", l), "want n=1..500")
	require.ErrorContains(t, get(ctx, tg.socket, "/v1/logs?n=x", l), "want n=1..500")
}

func TestLogRing(t *testing.T) {
	r := newLogRing(3)
	log := slog.New(newTeeHandler(slog.DiscardHandler, r)).With("part", "test")
	for i := range 5 {
		log.Info("line", "i", i)
	}
	log.Debug("not kept")
	got := r.last(10)
	require.Equal(t, uint64(5), got.Total)
	require.Len(t, got.Lines, 3)
	for i, l := range got.Lines {
		require.Contains(t, l, "part=test i="+string(rune('2'+i)), "oldest first: %v", got.Lines)
	}
	require.Equal(t, got.Lines[2:], r.last(1).Lines)

	log.Info(strings.Repeat("é", 2000))
	last := r.last(1).Lines[0]
	require.LessOrEqual(t, len(last), logRingLineMax+4)
	require.True(t, strings.HasSuffix(last, " ..."))
	require.NotContains(t, last, "\ufffd", "cut on a character boundary")
}
