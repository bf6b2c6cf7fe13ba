package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

// fakeKernel is a kernel session replaying datagrams, with a status the
// test sets.
type fakeKernel struct {
	mode, boot string
	q          *msgQueue

	mu        sync.Mutex
	status    kernelStatus
	statusErr error
	overflows uint64
	stopped   bool
	feed      chan []byte
	done      chan struct{}
	err       error
}

func newFakeKernel(mode string, q *msgQueue) *fakeKernel {
	k := &fakeKernel{mode: mode, boot: "boot-1", q: q, feed: make(chan []byte), done: make(chan struct{})}
	go func() {
		defer close(q.ch)
		for {
			select {
			case b := <-k.feed:
				q.put(b)
			case <-k.done:
				return
			}
		}
	}()
	return k
}

func (k *fakeKernel) Mode() string   { return k.mode }
func (k *fakeKernel) BootID() string { return k.boot }
func (k *fakeKernel) Err() error     { return k.err }
func (k *fakeKernel) Status() (kernelStatus, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.status, k.statusErr
}
func (k *fakeKernel) Overflows() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.overflows
}
func (k *fakeKernel) Stop() {
	k.mu.Lock()
	k.stopped = true
	k.mu.Unlock()
	k.end(nil)
}
func (k *fakeKernel) Close() error { k.end(nil); return nil }

// end closes the queue, with err as the reason.
func (k *fakeKernel) end(err error) {
	select {
	case <-k.done:
	default:
		k.err = err
		close(k.done)
	}
}

func (k *fakeKernel) set(f func(st *kernelStatus)) {
	k.mu.Lock()
	f(&k.status)
	k.mu.Unlock()
}

// netlinkConfig is a netlink config for tests: quick polls.
func netlinkConfig(mode string) Config {
	c := DefaultConfig()
	c.Source, c.Mode = SourceNetlink, mode
	c.PollInterval = testPoll
	c.EventTimeout = 4 * testPoll
	return c
}

// startNetlink runs a netlink Reader whose sessions are fake kernels,
// set up by setup (if not nil) and handed to the test on kernels as
// they open.
func startNetlink(t *testing.T, cfg Config, s *fakeSpool, setup ...func(k *fakeKernel)) (*Reader, <-chan *fakeKernel, func()) {
	t.Helper()
	rd, err := New(cfg, s, nil)
	require.NoError(t, err)
	rd.statusEvery = 2 * testPoll
	kernels := make(chan *fakeKernel, 8)
	rd.open = func(ctx context.Context, q *msgQueue) (kernelStream, []event.Event, error) {
		k := newFakeKernel(cfg.Mode, q)
		for _, f := range setup {
			f(k)
		}
		kernels <- k
		return k, nil, nil
	}
	return rd, kernels, runReader(t, rd, s, context.Background())
}

// datagram is a netlink message as the kernel sends a record on the
// unicast socket (the header's length without the header).
func datagram(typ uint16, seq uint32, payload string) []byte {
	b := make([]byte, nlHeaderLen+len(payload))
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint32(b[8:12], seq)
	copy(b[nlHeaderLen:], payload)
	return b
}

// nlError is an NLMSG_ERROR message answering request seq with errno.
func nlError(seq uint32, errno syscall.Errno) []byte {
	p := make([]byte, 20)
	binary.NativeEndian.PutUint32(p[0:4], uint32(-int32(errno)))
	b := datagram(nlmsgError, seq, string(p))
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	return b
}

// eventsOfNetlink builds the records of captured datagrams as a session
// would, without a sink.
func eventsOfNetlink(t testing.TB, mode string, msgs [][]byte) []event.Event {
	t.Helper()
	cfg := netlinkConfig(mode)
	rd, err := New(cfg, newFakeSpool(), nil)
	require.NoError(t, err)
	n := newNLRun(rd, nil, &fakeKernel{mode: mode}, newMsgQueue())
	var evs []event.Event
	take := func() {
		for _, grp := range n.g.Take() {
			evs = append(evs, n.b.event(grp))
		}
	}
	for _, m := range msgs {
		require.NoError(t, n.feed(m, time.Time{}))
		take()
	}
	n.g.Flush()
	take()
	return evs
}

func TestDecodeNetlink(t *testing.T) {
	multicast := datagram(1300, 0, "audit(1.5:7): a=b")
	binary.NativeEndian.PutUint32(multicast[0:4], uint32(len(multicast)))
	tests := []struct {
		name    string
		in      []byte
		typ     uint16
		payload string
		record  bool
		errno   error
		err     string
	}{
		{name: "empty", in: nil, err: "netlink message of 0 bytes"},
		{name: "short", in: make([]byte, 15), err: "shorter than its 16-byte header"},
		{name: "unicast record", in: datagram(1300, 0, "audit(1.5:7): a=b"), typ: 1300, payload: "audit(1.5:7): a=b", record: true},
		{name: "multicast record", in: multicast, typ: 1300, payload: "audit(1.5:7): a=b", record: true},
		{name: "trailing NULs", in: datagram(1112, 0, "audit(1.5:7): msg='x'\x00\x00"), typ: 1112, payload: "audit(1.5:7): msg='x'", record: true},
		{name: "length says less", in: func() []byte {
			b := datagram(1305, 0, "audit(1.5:7): op=x")
			binary.NativeEndian.PutUint32(b[0:4], 3)
			return b
		}(), typ: 1305, payload: "audit(1.5:7): op=x", record: true},
		{name: "EOE", in: datagram(1320, 0, "audit(1.5:7): "), typ: 1320, payload: "audit(1.5:7): ", record: true},
		{name: "replace probe", in: datagram(1329, 0, "\x2a\x00\x00\x00"), typ: 1329, payload: "\x2a"},
		{name: "ack", in: nlError(3, 0), typ: nlmsgError},
		{name: "refusal", in: nlError(3, syscall.EEXIST), typ: nlmsgError, errno: syscall.EEXIST},
		{name: "error without errno", in: datagram(nlmsgError, 3, "\x01"), typ: nlmsgError, errno: errors.New("without its error number")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := decodeNetlink(tt.in)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.typ, m.Type)
			require.Equal(t, tt.record, m.isRecord())
			if tt.typ == nlmsgError {
				if tt.errno == nil {
					require.NoError(t, m.errno())
				} else if errors.Is(tt.errno, syscall.EEXIST) {
					require.ErrorIs(t, m.errno(), syscall.EEXIST)
				} else {
					require.ErrorContains(t, m.errno(), tt.errno.Error())
				}
				return
			}
			require.Equal(t, tt.payload, string(m.Payload))
		})
	}
}

func TestTypeName(t *testing.T) {
	for typ, want := range map[uint16]string{
		1300: "SYSCALL", 1302: "PATH", 1305: "CONFIG_CHANGE", 1309: "EXECVE", 1320: "EOE", 1327: "PROCTITLE",
		1335: "EVENT_LISTENER", 1400: "AVC", 1112: "USER_LOGIN", 1420: "MAC_TASK_CONTEXTS", 1999: "UNKNOWN[1999]",
	} {
		require.Equal(t, want, typeName(typ), "type %d", typ)
	}
	m := nlMessage{Type: 1300, Payload: []byte("audit(1.5:7): a=b")}
	require.Equal(t, "type=SYSCALL msg=audit(1.5:7): a=b", string(appendLine(nil, m)))
}

// TestNetlinkGolden compares the records of the captured datagrams with
// testdata/<capture>.events.json (go test -run TestNetlinkGolden -update
// rewrites them).
func TestNetlinkGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/netlink-*.nlhex")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			mode := ModeUnicast
			if strings.Contains(name, "multicast") {
				mode = ModeMulticast
			}
			var buf bytes.Buffer
			for _, ev := range eventsOfNetlink(t, mode, readNLHex(t, name)) {
				require.NotContains(t, ev.Message, "parse_error")
				b, err := json.Marshal(&ev)
				require.NoError(t, err)
				buf.Write(b)
				buf.WriteByte('\n')
			}
			golden := strings.TrimSuffix(name, ".nlhex") + ".events.json"
			if *update {
				require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run with -update to create it")
			require.Equal(t, string(want), buf.String())
		})
	}
}

// TestNetlinkSameAsFile: the records read from the kernel's multicast
// group are those the file source makes of auditd's log of the same
// events (captured together, auditd writing its raw format), field for
// field, but for the field naming the source: netlink instead of path
// and offset.
func TestNetlinkSameAsFile(t *testing.T) {
	fromKernel := eventsOfNetlink(t, ModeMulticast, readNLHex(t, "testdata/netlink-multicast.nlhex"))
	fromFile := eventsOf(t, readLines(t, "testdata/netlink-multicast.auditd.log"), true)
	bySerial := map[uint64]event.Event{}
	for _, ev := range fromFile {
		bySerial[fieldMap(ev)["serial"].(uint64)] = ev
	}
	require.NotEmpty(t, fromKernel)
	keyed := 0
	for i, ev := range fromKernel {
		k := fieldMap(ev)
		serial := k["serial"].(uint64)
		fev, ok := bySerial[serial]
		require.True(t, ok, "serial %d read from the kernel is not in auditd's log", serial)
		f := fieldMap(fev)
		if i == 0 && f["types"] != k["types"] {
			// Joining the group is itself an event, whose first record
			// (EVENT_LISTENER op=connect) the kernel emits before the
			// reader is in the group: only the rest reaches it.
			require.Equal(t, "EVENT_LISTENER,"+k["types"].(string), f["types"])
			continue
		}
		require.Equal(t, ModeMulticast, k["netlink"])
		require.Equal(t, "/var/log/audit/audit.log", f["path"])
		delete(k, "netlink")
		delete(f, "path")
		delete(f, "offset")
		require.Equal(t, f, k, "serial %d", serial)
		fev.Fields, ev.Fields = nil, nil
		require.Equal(t, fev, ev, "serial %d", serial)
		if k["key"] != nil {
			keyed++
		}
	}
	require.Equal(t, 4, keyed, "ls, cat by root, cat by nobody, touch: %v", fromKernel)
}

// nextKernel waits for the session the reader opens.
func nextKernel(t *testing.T, kernels <-chan *fakeKernel) *fakeKernel {
	t.Helper()
	select {
	case k := <-kernels:
		return k
	case <-time.After(5 * time.Second):
		t.Fatal("no session opened")
		return nil
	}
}

func (s *fakeSpool) lossPosition(t *testing.T) lossPosition {
	t.Helper()
	b, err := s.Checkpoint(netlinkKey)
	require.NoError(t, err)
	p, err := parseLossPosition(b)
	require.NoError(t, err)
	return p
}

// TestNetlinkReaderEmits: the captured datagrams through a session give
// the records the golden file holds, each once, with the netlink
// checkpoint; the session's mode is in Status.
func TestNetlinkReaderEmits(t *testing.T) {
	msgs := readNLHex(t, "testdata/netlink-unicast.nlhex")
	want := eventsOfNetlink(t, ModeUnicast, msgs)
	s := newFakeSpool()
	rd, kernels, _ := startNetlink(t, netlinkConfig(ModeUnicast), s)
	k := nextKernel(t, kernels)
	for _, m := range msgs {
		k.feed <- m
	}
	evs := s.wait(t, len(want))
	for i := range want {
		require.Equal(t, fieldMap(want[i])["serial"], evs[i].Serial)
		require.Equal(t, want[i].Message, evs[i].Msg)
	}
	st := rd.Status()
	require.Equal(t, SourceNetlink, st.Source)
	require.Equal(t, ModeUnicast, st.Netlink.Mode)
	require.Equal(t, StateReading, st.State)
	require.EqualValues(t, len(want), st.Events)
	require.Equal(t, "boot-1", s.lossPosition(t).BootID)
}

// TestNetlinkLostCounter: growth of the kernel's lost counter is a
// warning record, committed with the count it told of; a restart on the
// same boot tells what was lost meanwhile; on another boot, the count
// starts over.
func TestNetlinkLostCounter(t *testing.T) {
	s := newFakeSpool()
	// Lost before Weir first ran: not told.
	_, kernels, stop := startNetlink(t, netlinkConfig(ModeUnicast), s, func(k *fakeKernel) {
		k.status.Lost, k.status.BacklogLimit = 7, 8192
	})
	k := nextKernel(t, kernels)
	time.Sleep(10 * testPoll)
	require.Empty(t, s.records())
	k.set(func(st *kernelStatus) { st.Lost = 12 })
	_, f := waitLoss(t, s, 1)
	require.EqualValues(t, 5, f["lost"])
	require.EqualValues(t, 12, f["kernel_lost"])
	require.EqualValues(t, 8192, f["backlog_limit"])
	require.Equal(t, lossPosition{BootID: "boot-1", Lost: 12}, s.lossPosition(t))
	stop()

	s2 := newFakeSpool()
	s2.cps = s.cps
	_, kernels, stop = startNetlink(t, netlinkConfig(ModeUnicast), s2, func(k *fakeKernel) { k.status.Lost = 20 })
	nextKernel(t, kernels)
	_, f = waitLoss(t, s2, 1)
	require.EqualValues(t, 8, f["lost"], "lost while Weir was stopped")
	stop()

	s3 := newFakeSpool()
	s3.cps = s2.cps
	// A reboot: the counter is not comparable.
	_, kernels, _ = startNetlink(t, netlinkConfig(ModeUnicast), s3, func(k *fakeKernel) { k.boot, k.status.Lost = "boot-2", 3 })
	k = nextKernel(t, kernels)
	time.Sleep(10 * testPoll)
	require.Empty(t, s3.records())
	k.set(func(st *kernelStatus) { st.Lost = 1 }) // reset (auditctl --reset-lost), then one lost
	_, f = waitLoss(t, s3, 1)
	require.EqualValues(t, 1, f["lost"], "counted from the reset")
	k.set(func(st *kernelStatus) { st.Lost = 4 })
	_, f = waitLoss(t, s3, 2)
	require.EqualValues(t, 3, f["lost"])
}

// waitLoss waits for n loss warnings and returns the last.
func waitLoss(t *testing.T, s *fakeSpool, n int) (event.Event, map[string]any) {
	t.Helper()
	var last event.Event
	require.Eventually(t, func() bool {
		c := 0
		for _, ev := range s.records() {
			if strings.HasPrefix(ev.Message, "audit records lost") {
				c++
				last = ev
			}
		}
		return c >= n
	}, 5*time.Second, testPoll, "%v", s.events())
	require.Equal(t, event.SevWarning, last.Severity)
	require.Equal(t, event.PriorityCritical, last.Priority)
	return last, fieldMap(last)
}

// TestNetlinkDropsAreTold: messages the queue had no room for and socket
// overflows are told in a warning, and counted in Status.
func TestNetlinkDropsAreTold(t *testing.T) {
	s := newFakeSpool()
	rd, kernels, _ := startNetlink(t, netlinkConfig(ModeMulticast), s)
	k := nextKernel(t, kernels)
	k.q.dropped.Add(3)
	k.mu.Lock()
	k.overflows = 2
	k.mu.Unlock()
	ev, f := waitLoss(t, s, 1)
	require.EqualValues(t, 3, f["dropped"])
	require.EqualValues(t, 2, f["socket_overflows"])
	require.EqualValues(t, 0, f["lost"])
	require.Equal(t, ModeMulticast, f["netlink"])
	require.Contains(t, ev.Message, "Weir dropped 3 messages")
	require.Contains(t, ev.Message, "overflowed 2 times")
	require.Eventually(t, func() bool {
		st := rd.Status().Netlink
		return st.Dropped == 3 && st.Overflows == 2
	}, 5*time.Second, testPoll)
	time.Sleep(5 * testPoll)
	_, _ = waitLoss(t, s, 1) // told once
	c := 0
	for _, ev := range s.records() {
		if strings.HasPrefix(ev.Message, "audit records lost") {
			c++
		}
	}
	require.Equal(t, 1, c)
}

// TestNetlinkUnreadableStatus: without the kernel's status (multicast
// without CAP_AUDIT_CONTROL) the records still come; Status says why the
// lost counter is not followed.
func TestNetlinkUnreadableStatus(t *testing.T) {
	s := newFakeSpool()
	rd, kernels, _ := startNetlink(t, netlinkConfig(ModeMulticast), s)
	k := nextKernel(t, kernels)
	k.mu.Lock()
	k.statusErr = syscall.EPERM
	k.mu.Unlock()
	require.Eventually(t, func() bool { return rd.Status().Netlink.StatusError != "" }, 5*time.Second, testPoll)
	k.feed <- datagram(1112, 0, "audit(1700000000.100:5): pid=1 uid=0 auid=0 ses=1 msg='op=login acct=\"root\" res=success'")
	evs := s.wait(t, 1)
	require.Equal(t, "USER_LOGIN", evs[0].Types)
}

// TestNetlinkShutdownFlush: events read but not complete when the run
// stops are emitted, not lost: the kernel does not send them again.
func TestNetlinkShutdownFlush(t *testing.T) {
	s := newFakeSpool()
	cfg := netlinkConfig(ModeUnicast)
	cfg.EventTimeout = time.Minute
	rd, kernels, stop := startNetlink(t, cfg, s)
	k := nextKernel(t, kernels)
	k.feed <- datagram(1300, 0, "audit(1700000000.100:9): arch=c000003e syscall=257 success=yes exit=3 items=1 pid=4 uid=0 auid=0 comm=\"cat\" exe=\"/usr/bin/cat\" key=\"k\"")
	require.Eventually(t, func() bool { return rd.Status().Pending == 1 }, 5*time.Second, testPoll)
	stop()
	evs := s.events()
	require.Len(t, evs, 1)
	require.Equal(t, "SYSCALL", evs[0].Types)
	k.mu.Lock()
	require.True(t, k.stopped, "the kernel was released before the last records were taken")
	k.mu.Unlock()
}

// TestNetlinkRefusalEndsTheSession: a request the kernel refuses on the
// session's socket ends the session; the reader opens another.
func TestNetlinkRefusalEndsTheSession(t *testing.T) {
	s := newFakeSpool()
	rd, kernels, _ := startNetlink(t, netlinkConfig(ModeUnicast), s)
	k := nextKernel(t, kernels)
	k.feed <- nlError(1, syscall.EACCES)
	nextKernel(t, kernels)
	st := rd.Status()
	require.EqualValues(t, 1, st.Errors)
	require.Contains(t, st.LastError, "the kernel refused request 1: permission denied")
}

// TestNetlinkOverlongRecord: a record longer than max_line_bytes is
// emitted in flagged pieces, as the file source does with a line.
func TestNetlinkOverlongRecord(t *testing.T) {
	s := newFakeSpool()
	cfg := netlinkConfig(ModeUnicast)
	cfg.MaxLineBytes = 256
	_, kernels, _ := startNetlink(t, cfg, s)
	k := nextKernel(t, kernels)
	k.feed <- datagram(1309, 0, "audit(1700000000.100:9): argc=1 a0="+strings.Repeat("x", 600))
	evs := s.wait(t, 3)
	for _, e := range evs {
		require.Equal(t, "ERR", e.Types)
	}
	recs := s.records()
	require.True(t, strings.HasPrefix(recs[0].Message, "type=EXECVE msg=audit("))
	require.Equal(t, true, fieldMap(recs[0])["truncated"])
}

func TestResolveMode(t *testing.T) {
	alive := func(pid uint32) bool { return pid == 100 || pid == 1 }
	st := func(pid uint32) *kernelStatus { return &kernelStatus{PID: pid} }
	tests := []struct {
		mode       string
		st         *kernelStatus
		want, note string
		err        string
	}{
		{mode: ModeAuto, st: st(0), want: ModeUnicast, note: "no audit daemon"},
		{mode: ModeAuto, st: st(100), want: ModeMulticast, note: "pid 100 holds"},
		{mode: ModeAuto, st: st(200), want: ModeUnicast, note: "no audit daemon"}, // registered but dead
		{mode: ModeAuto, st: st(1), want: ModeUnicast, note: "no audit daemon"},   // Weir itself, from a session not released
		{mode: ModeAuto, st: nil, want: ModeMulticast, note: "status is unreadable (operation not permitted)"},
		{mode: ModeUnicast, st: st(0), want: ModeUnicast},
		{mode: ModeUnicast, st: st(100), err: "the audit daemon pid 100 holds the kernel's audit socket; not replacing it"},
		{mode: ModeUnicast, st: nil, err: "needs CAP_AUDIT_CONTROL"},
		{mode: ModeMulticast, st: nil, want: ModeMulticast},
		{mode: ModeMulticast, st: st(100), want: ModeMulticast},
	}
	for _, tt := range tests {
		got, note, err := resolveMode(tt.mode, tt.st, syscall.EPERM, 1, alive)
		if tt.err != "" {
			require.ErrorContains(t, err, tt.err, "%+v", tt)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tt.want, got, "%+v", tt)
		require.Contains(t, note, tt.note, "%+v", tt)
	}
}

// TestMsgQueue: a full queue makes the reader wait for room, so a burst
// is taken whole; when no room comes in time (the sink holds back), it
// drops and counts, without waiting again until the queue is half empty.
func TestMsgQueue(t *testing.T) {
	q := newMsgQueue()
	q.wait = 50 * time.Millisecond
	for range maxQueuedMessages {
		require.True(t, q.put([]byte("m")))
	}
	// Room comes while the reader waits: nothing is dropped.
	go func() {
		time.Sleep(10 * time.Millisecond)
		q.took(<-q.ch)
	}()
	require.True(t, q.put([]byte("burst")))
	require.Zero(t, q.dropped.Load())

	// No room in time: dropped, and the next are dropped at once.
	t0 := time.Now()
	require.False(t, q.put([]byte("late")))
	require.GreaterOrEqual(t, time.Since(t0), q.wait)
	t0 = time.Now()
	for range 100 {
		require.False(t, q.put([]byte("shed")))
	}
	require.Less(t, time.Since(t0), q.wait, "no wait while shedding")
	require.EqualValues(t, 101, q.dropped.Load())

	// Half empty: taken again.
	for range maxQueuedMessages/2 + 1 {
		q.took(<-q.ch)
	}
	require.True(t, q.put([]byte("again")))

	// The byte bound.
	q2 := newMsgQueue()
	require.True(t, q2.put(make([]byte, maxQueuedBytes)))
	require.False(t, q2.put([]byte("x")))
	require.EqualValues(t, 1, q2.dropped.Load())
}
