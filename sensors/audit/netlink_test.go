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
// handed to the test on kernels as they open.
func startNetlink(t *testing.T, cfg Config, s *fakeSpool) (*Reader, <-chan *fakeKernel, func()) {
	t.Helper()
	rd, err := New(cfg, s, nil)
	require.NoError(t, err)
	rd.statusEvery = 2 * testPoll
	kernels := make(chan *fakeKernel, 8)
	rd.open = func(ctx context.Context, q *msgQueue) (kernelStream, []event.Event, error) {
		k := newFakeKernel(cfg.Mode, q)
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
