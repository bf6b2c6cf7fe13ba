package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func joinLines(lines []string) string { return strings.Join(lines, "\n") + "\n" }

func TestReaderReadsTheLogOnce(t *testing.T) {
	lines := readLines(t, "testdata/auditd-3.0.9-enriched.log")
	p := filepath.Join(t.TempDir(), "audit.log")
	appendFile(t, p, joinLines(lines))
	s := newFakeSpool()
	rd, _ := start(t, testConfig(p), s)
	w := want(t, p, lines)
	require.Len(t, w, 25)
	require.Equal(t, w, s.wait(t, len(w)))

	size := int64(len(joinLines(lines)))
	pos := s.position(t, p)
	require.Equal(t, size, pos.Off)
	require.Empty(t, pos.Skip)
	st := rd.Status()
	require.Equal(t, StateReading, st.State)
	require.Equal(t, p, st.File)
	require.Equal(t, size, st.Offset)
	require.Equal(t, uint64(25), st.Events)
	require.Equal(t, uint64(len(lines)), st.Records)
	require.Zero(t, st.ParseErrors)
	require.Zero(t, st.Pending)
}

func TestReaderPartialLineCompletedLater(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	l1 := rec(1, "USER_LOGIN", "res=failed")
	l2 := rec(2, "USER_END", "res=success")
	appendFile(t, p, l1+"\n"+l2[:20])
	s := newFakeSpool()
	start(t, testConfig(p), s)
	require.Equal(t, "USER_LOGIN", s.wait(t, 1)[0].Types)
	require.Equal(t, int64(len(l1)+1), s.position(t, p).Off, "the partial line is not committed")
	appendFile(t, p, l2[20:]+"\n")
	evs := s.wait(t, 2)
	require.Equal(t, "USER_END", evs[1].Types)
	require.Equal(t, uint64(len(l1)+1), evs[1].Offset)
}

func TestReaderRotation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "audit.log")
	a := []string{rec(1, "USER_LOGIN", "res=success"), rec(2, "SYSCALL", "syscall=2"), rec(2, "PROCTITLE", "proctitle=6C73")}
	appendFile(t, p, joinLines(a[:1]))
	s := newFakeSpool()
	start(t, testConfig(p), s)
	s.wait(t, 1)

	// The SYSCALL event lands just before the rename and is finished
	// from the old descriptor, its last record without a newline.
	appendFile(t, p, joinLines(a[1:])[:len(joinLines(a[1:]))-1])
	require.NoError(t, os.Rename(p, p+".1"))
	b := []string{rec(3, "USER_END", "res=success"), rec(4, "USER_END", "res=failed")}
	appendFile(t, p, joinLines(b))
	evs := s.wait(t, 4)
	require.Equal(t, []got{
		{Path: p, Offset: 0, Types: "USER_LOGIN"},
		{Path: p, Offset: uint64(len(a[0]) + 1), Types: "SYSCALL,PROCTITLE"},
		{Path: p, Offset: 0, Types: "USER_END"},
		{Path: p, Offset: uint64(len(b[0]) + 1), Types: "USER_END"},
	}, withoutMsg(evs))

	fi, err := os.Stat(p)
	require.NoError(t, err)
	pos := s.position(t, p)
	require.Equal(t, idOf(fi).ino, pos.Ino, "the checkpoint names the new file")
	require.Equal(t, fi.Size(), pos.Off)
}

func withoutMsg(gs []got) []got {
	out := make([]got, len(gs))
	for i, g := range gs {
		g.Msg, g.Serial = "", 0
		out[i] = g
	}
	return out
}

// TestReaderRotatedWhileStopped: auditd rotated twice while Weir was
// down; the rest of the checkpointed file (now audit.log.2), all of
// audit.log.1 and the new audit.log are read, in that order.
func TestReaderRotatedWhileStopped(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "audit.log")
	appendFile(t, p, rec(1, "USER_END", "")+"\n")
	s := newFakeSpool()
	_, stop := start(t, testConfig(p), s)
	s.wait(t, 1)
	stop()

	appendFile(t, p, rec(2, "USER_END", "")+"\n")
	require.NoError(t, os.Rename(p, p+".1"))
	appendFile(t, p, rec(3, "USER_END", "")+"\n")
	require.NoError(t, os.Rename(p+".1", p+".2"))
	require.NoError(t, os.Rename(p, p+".1"))
	appendFile(t, p, rec(4, "USER_END", "")+"\n")
	appendFile(t, p+".3", rec(99, "USER_END", "")+"\n") // older: never read

	start(t, testConfig(p), s)
	evs := s.wait(t, 4)
	require.Equal(t, []got{
		{Path: p, Offset: 0, Types: "USER_END"},
		{Path: p + ".2", Offset: uint64(len(rec(1, "USER_END", ""))) + 1, Types: "USER_END"},
		{Path: p + ".1", Offset: 0, Types: "USER_END"},
		{Path: p, Offset: 0, Types: "USER_END"},
	}, withoutMsg(evs))
}

// TestReaderCheckpointOfAnotherFile: a new log given the old one's inode
// (same device and inode in the checkpoint) begins differently and is
// read from its start.
func TestReaderCheckpointOfAnotherFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	l := rec(1, "USER_END", "") + "\n" + rec(2, "USER_END", "") + "\n"
	appendFile(t, p, l)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	id := idOf(fi)
	s := newFakeSpool()
	s.cps[checkpointPrefix+p] = position{Dev: id.dev, Ino: id.ino, HeadLen: 64, HeadSum: 12345, Off: int64(len(l))}.marshal()
	start(t, testConfig(p), s)
	got := s.wait(t, 2)
	require.Equal(t, uint64(0), got[0].Offset)
}

func TestReaderStartAtEnd(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	old := rec(1, "USER_END", "") + "\n"
	appendFile(t, p, old)
	s := newFakeSpool()
	cfg := testConfig(p)
	cfg.StartAt = StartAtEnd
	_, stop := start(t, cfg, s)
	require.Eventually(t, func() bool { b, _ := s.Checkpoint(checkpointPrefix + p); return b != nil }, 5e9, testPoll)
	appendFile(t, p, rec(2, "USER_LOGIN", "")+"\n")
	got := s.wait(t, 1)
	require.Equal(t, uint64(len(old)), got[0].Offset)
	stop()

	// A restart resumes at the checkpoint, not at the end.
	appendFile(t, p, rec(3, "USER_LOGIN", "")+"\n")
	start(t, cfg, s)
	s.wait(t, 2)
}

func TestReaderWaitsForAMissingLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	s := newFakeSpool()
	rd, _ := start(t, testConfig(p), s)
	require.Eventually(t, func() bool { return rd.Status().State == StateWaiting }, 5e9, testPoll)
	st := rd.Status()
	require.Contains(t, st.LastError, p+" does not exist (yet): is auditd installed and running?")
	require.Equal(t, uint64(1), st.Errors, "a repeated failure is counted once")
	appendFile(t, p, rec(1, "USER_END", "")+"\n")
	s.wait(t, 1)
	require.Equal(t, StateReading, rd.Status().State)
}

func TestReaderMalformedAndOverlongLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	long := "type=EXECVE msg=audit(1.000:2): argc=1 a0=\"" + strings.Repeat("x", 600) + "\""
	lines := []string{"garbage here", rec(1, "USER_END", ""), long, rec(3, "USER_END", "")}
	appendFile(t, p, joinLines(lines))
	s := newFakeSpool()
	cfg := testConfig(p)
	cfg.MaxLineBytes = 256
	rd, _ := start(t, cfg, s)
	evs := s.wait(t, 6)
	off := uint64(len(lines[0]) + 1 + len(lines[1]) + 1)
	require.Equal(t, []got{
		{Path: p, Offset: 0, Types: "ERR", Msg: "garbage here"},
		{Path: p, Offset: off, Types: "ERR", Msg: long[:256]},
		{Path: p, Offset: off + 256, Types: "ERR", Msg: long[256:512]},
		{Path: p, Offset: off + 512, Types: "ERR", Msg: long[512:]},
	}, slices.DeleteFunc(evs, func(g got) bool { return g.Types != "ERR" }))
	require.Equal(t, uint64(4), rd.Status().ParseErrors)
	require.Contains(t, rd.Status().LastParseError, "line longer than max_line_bytes")
}

func TestReaderRetriesARefusedBatch(t *testing.T) {
	lines := readLines(t, "testdata/docs-raw.log")
	p := filepath.Join(t.TempDir(), "audit.log")
	appendFile(t, p, joinLines(lines))
	s := newFakeSpool()
	s.failNext = 2
	rd, _ := start(t, testConfig(p), s)
	w := want(t, p, lines)
	require.Equal(t, w, s.wait(t, len(w)))
	require.Equal(t, uint64(1), rd.Status().Errors)
	require.Contains(t, rd.Status().LastError, "spool full")
}

// TestReaderBatchesFitTheSpool: events at the size bounds still go in
// appends the spool takes (the fake checks ≤ 1024 records and ≤ 208 KiB
// encoded, with the gateway's longest id and host added).
func TestReaderBatchesFitTheSpool(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	var lines []string
	arg := strings.Repeat("41", 8000) // 16000 bytes of hex, 8000 decoded
	for i := range 40 {
		lines = append(lines, rec(i+1, "SYSCALL", "syscall=59"))
		for range 3 {
			lines = append(lines, rec(i+1, "EXECVE", "argc=1 a0="+arg))
		}
		lines = append(lines, rec(i+1, "PROCTITLE", "proctitle="+arg[:4000]))
	}
	for i := range 2000 {
		lines = append(lines, rec(1000+i, "USER_END", `res=success exe="/usr/bin/su"`))
	}
	appendFile(t, p, joinLines(lines))
	s := newFakeSpool()
	cfg := testConfig(p)
	start(t, cfg, s)
	w := want(t, p, lines)
	require.Equal(t, withoutMsg(w), withoutMsg(s.wait(t, len(w))))
}

// TestReaderCrashAtEveryEmit: the log is read by a Reader that stops at
// its n-th Emit, either before the spool took the batch or just after,
// then by one that runs to the end from the committed checkpoint. For
// every n, every event arrives exactly once. The log's events interleave,
// so checkpoints fall before events already emitted.
func TestReaderCrashAtEveryEmit(t *testing.T) {
	lines := interleavedLog()
	dir := t.TempDir()
	p := filepath.Join(dir, "audit.log")
	appendFile(t, p, joinLines(lines))
	w := want(t, p, lines)
	byOffset := func(gs []got) []got {
		gs = withoutMsg(gs)
		slices.SortFunc(gs, func(a, b got) int { return int(a.Offset) - int(b.Offset) })
		return gs
	}
	wantSorted := byOffset(w)

	// One clean run counts the Emits.
	clean := newFakeSpool()
	rd, err := New(testConfig(p), clean, nil)
	require.NoError(t, err)
	rd.batchEvents = 2
	stop := runReader(t, rd, clean, context.Background())
	require.Equal(t, wantSorted, byOffset(clean.wait(t, len(w))))
	stop()
	emits := clean.emits
	require.Greater(t, emits, 5)

	for _, refuse := range []bool{true, false} {
		for n := 1; n <= emits; n++ {
			t.Run(fmt.Sprintf("refuse=%v/n=%d", refuse, n), func(t *testing.T) {
				s := newFakeSpool()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var crashed atomic.Bool
				s.crash = func(i int) bool {
					if i != n {
						return false
					}
					crashed.Store(true)
					cancel()
					return refuse
				}
				rd, err := New(testConfig(p), s, nil)
				require.NoError(t, err)
				rd.batchEvents = 2
				stop := runReader(t, rd, s, ctx)
				require.Eventually(t, crashed.Load, 5e9, testPoll)
				stop()
				first := len(s.events())

				s.crash = nil
				rd2, err := New(testConfig(p), s, nil)
				require.NoError(t, err)
				rd2.batchEvents = 2
				runReader(t, rd2, s, context.Background())
				evs := s.wait(t, len(w))
				require.Equal(t, wantSorted, byOffset(evs), "after a crash at Emit %d with %d events committed", n, first)
			})
		}
	}
}

// interleavedLog is a log whose kernel events interleave like records of
// two CPUs, with single-record events and a malformed line between.
func interleavedLog() []string {
	var l []string
	for i := 0; i < 6; i++ {
		a, b := 10*i+1, 10*i+2
		l = append(l,
			rec(a, "SYSCALL", "syscall=257 success=yes exit=3"),
			rec(b, "SYSCALL", "syscall=59 success=yes exit=0"),
			rec(a, "CWD", `cwd="/"`),
			rec(b, "EXECVE", `argc=1 a0="ls"`),
			rec(a, "PATH", `item=0 name="/etc/passwd" inode=1 mode=0100644 nametype=NORMAL`),
			rec(b, "PROCTITLE", "proctitle=6C73"),
			rec(a, "PROCTITLE", "proctitle=636174"),
			rec(10*i+3, "USER_LOGIN", `msg='op=login acct="root" res=failed'`),
		)
		if i == 2 {
			l = append(l, "not an audit line")
		}
	}
	return l
}

func TestReaderTruncatedLog(t *testing.T) {
	for _, longer := range []bool{false, true} {
		t.Run(fmt.Sprintf("rewritten longer=%v", longer), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "audit.log")
			appendFile(t, p, joinLines([]string{rec(1, "USER_END", "res=success"), rec(2, "USER_END", "res=success")}))
			s := newFakeSpool()
			start(t, testConfig(p), s)
			s.wait(t, 2)
			fresh := []string{rec(3, "USER_LOGIN", "res=failed")}
			if longer {
				fresh = append(fresh, rec(4, "USER_LOGIN", `res=failed exe="/usr/sbin/sshd" addr=10.0.0.1`), rec(5, "USER_END", ""))
			}
			require.NoError(t, os.WriteFile(p, []byte(joinLines(fresh)), 0o640))
			evs := s.wait(t, 2+len(fresh))
			require.Equal(t, uint64(0), evs[2].Offset)
			require.Equal(t, uint64(3), evs[2].Serial)
			require.Equal(t, int64(len(joinLines(fresh))), s.position(t, p).Off)
		})
	}
}

// TestReaderBoundsTheCheckpointWindow: an event still open 64 KiB of
// other events later (a SYSCALL whose PROCTITLE never comes) is closed, so
// the checkpoint does not fall further back nor list more lines to skip.
func TestReaderBoundsTheCheckpointWindow(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	lines := []string{rec(1, "SYSCALL", "syscall=2")}
	for i := range 8 {
		lines = append(lines, rec(10+i, "USER_END", `msg='text=`+strings.Repeat("x", 12000)+`'`))
	}
	appendFile(t, p, joinLines(lines))
	s := newFakeSpool()
	start(t, testConfig(p), s)
	evs := s.wait(t, len(lines))
	var order []string
	for _, g := range evs {
		order = append(order, fmt.Sprint(g.Serial))
	}
	require.Equal(t, []string{"10", "11", "12", "13", "14", "1", "15", "16", "17"}, order)
}
