package ptp

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/facebook/time/ptp/protocol"
	"github.com/stretchr/testify/require"
	"github.com/weirgw/weir/event"
)

// ptp4lState is what the fake ptp4l answers.
type ptp4lState struct {
	port      protocol.PortState
	gmPresent bool
	gm        protocol.ClockIdentity
	offsetNS  int64
	delayNS   int64
	silent    bool // answer nothing, as a dead ptp4l
	stale     bool // send the previous answer again before each answer, as a late one would come
	// time properties
	utcOffset  int16
	tpFlags    uint8
	timeSource protocol.TimeSource
}

// fakePTP4L is ptp4l's management socket: a unixgram server answering GETs
// with TLVs encoded by facebook/time's protocol package.
type fakePTP4L struct {
	path string
	mu   sync.Mutex
	st   ptp4lState
}

func startFakePTP4L(t *testing.T, st ptp4lState) *fakePTP4L {
	t.Helper()
	dir, err := os.MkdirTemp("", "weirptp") // short: unix socket paths are limited to 108 bytes
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakePTP4L{path: filepath.Join(dir, "ptp4l"), st: st}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: f.path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	go f.serve(t, conn)
	return f
}

func (f *fakePTP4L) set(st ptp4lState) { f.mu.Lock(); f.st = st; f.mu.Unlock() }

func (f *fakePTP4L) serve(t *testing.T, conn *net.UnixConn) {
	buf := make([]byte, 1500)
	var prev []byte
	for {
		n, from, err := conn.ReadFromUnix(buf)
		if err != nil {
			return
		}
		r := bytes.NewReader(buf[:n])
		var head protocol.ManagementMsgHead
		var tlv protocol.ManagementTLVHead
		if binary.Read(r, binary.BigEndian, &head) != nil || binary.Read(r, binary.BigEndian, &tlv) != nil {
			t.Errorf("fake ptp4l: bad request % x", buf[:n])
			return
		}
		f.mu.Lock()
		st := f.st
		f.mu.Unlock()
		if st.silent {
			continue
		}
		send := func(b []byte) {
			if st.stale && prev != nil {
				_, _ = conn.WriteToUnix(prev, from)
			}
			_, _ = conn.WriteToUnix(b, from)
			prev = b
		}
		head.ActionField = protocol.RESPONSE
		th := protocol.ManagementTLVHead{TLVHead: protocol.TLVHead{TLVType: protocol.TLVManagement}, ManagementID: tlv.ManagementID}
		var answer protocol.ManagementTLV
		gmPresent := int32(0)
		if st.gmPresent {
			gmPresent = 1
		}
		switch tlv.ManagementID {
		case protocol.IDTimeStatusNP:
			answer = &protocol.TimeStatusNPTLV{ManagementTLVHead: th, MasterOffsetNS: st.offsetNS, GMPresent: gmPresent, GMIdentity: st.gm}
		case protocol.IDCurrentDataSet:
			answer = &protocol.CurrentDataSetTLV{ManagementTLVHead: th, StepsRemoved: 1,
				OffsetFromMaster: protocol.NewTimeInterval(float64(st.offsetNS)), MeanPathDelay: protocol.NewTimeInterval(float64(st.delayNS))}
		case protocol.IDParentDataSet:
			answer = &protocol.ParentDataSetTLV{ManagementTLVHead: th, GrandmasterIdentity: st.gm}
		case protocol.IDPortDataSet:
			b, err := (&PortDataSetTLV{ManagementTLVHead: th, PortState: st.port, VersionNumber: 2}).MarshalBinary(head)
			if err != nil {
				t.Errorf("fake ptp4l: %v", err)
				return
			}
			send(b)
			continue
		case protocol.IDTimePropertiesDataSet:
			b, err := (&TimePropertiesTLV{ManagementTLVHead: th, CurrentUTCOffset: st.utcOffset, Flags: st.tpFlags, TimeSource: st.timeSource}).MarshalBinary(head)
			if err != nil {
				t.Errorf("fake ptp4l: %v", err)
				return
			}
			send(b)
			continue
		default:
			t.Errorf("fake ptp4l: unexpected management id 0x%04x", uint16(tlv.ManagementID))
			return
		}
		b, err := (&protocol.Management{ManagementMsgHead: head, TLV: answer}).MarshalBinary()
		if err != nil {
			t.Errorf("fake ptp4l: %v", err)
			return
		}
		send(b)
	}
}

func linuxPTPConfig(socket string) Config {
	c := DefaultConfig()
	c.Mode = ModeLinuxPTP
	c.LinuxPTP.Socket = socket
	c.LinuxPTP.PollInterval = 20 * time.Millisecond
	c.Holdover.Limit = time.Hour
	return c
}

func runClock(t *testing.T, c Config) Clock {
	t.Helper()
	require.NoError(t, c.Validate())
	clk, err := New(c)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- clk.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return clk
}

const gm = protocol.ClockIdentity(0x001122fffe334455)

func TestLinuxPTP(t *testing.T) {
	for name, tc := range map[string]struct {
		st        ptp4lState
		wantState string
		wantPort  string
		wantGM    string
		wantBound int64 // at the sample, before growth
	}{
		"slave locks": {ptp4lState{port: protocol.PortStateSlave, gmPresent: true, gm: gm, offsetNS: -1500, delayNS: 20000},
			"locked", "SLAVE", "001122.fffe.334455", 21500},
		"listening without master": {ptp4lState{port: protocol.PortStateListening},
			"freerun", "LISTENING", "", -1},
		"uncalibrated is not locked": {ptp4lState{port: protocol.PortStateUncalibrated, gmPresent: true, gm: gm, offsetNS: 100},
			"freerun", "UNCALIBRATED", "001122.fffe.334455", -1},
		"offset beyond threshold": {ptp4lState{port: protocol.PortStateSlave, gmPresent: true, gm: gm, offsetNS: 5e6},
			"freerun", "SLAVE", "001122.fffe.334455", -1},
	} {
		t.Run(name, func(t *testing.T) {
			f := startFakePTP4L(t, tc.st)
			clk := runClock(t, linuxPTPConfig(f.path))
			require.Eventually(t, func() bool { return clk.Status().PortState != "" }, 5*time.Second, 5*time.Millisecond)
			st := clk.Status()
			require.Empty(t, st.Error)
			require.Equal(t, ModeLinuxPTP, st.Mode)
			require.Equal(t, tc.wantState, st.State)
			require.Equal(t, tc.wantPort, st.PortState)
			require.Equal(t, tc.wantGM, st.Grandmaster)
			require.Equal(t, tc.st.offsetNS, st.OffsetNS)
			require.Equal(t, tc.st.delayNS, st.PathDelayNS)
			_, q := clk.Now()
			require.Equal(t, event.TimePTP, q.Source)
			if tc.wantBound < 0 {
				require.Equal(t, int64(-1), q.ErrorBound)
			} else {
				// 1 ppm of growth over at most the test's few seconds.
				require.InDelta(t, tc.wantBound, q.ErrorBound, 5000)
			}
		})
	}
}

func TestLinuxPTPHoldover(t *testing.T) {
	f := startFakePTP4L(t, ptp4lState{port: protocol.PortStateSlave, gmPresent: true, gm: gm, offsetNS: 200, delayNS: 1000})
	c := linuxPTPConfig(f.path)
	c.Holdover.Limit = 300 * time.Millisecond
	clk := runClock(t, c)
	require.Eventually(t, func() bool { return clk.Status().State == "locked" }, 5*time.Second, 5*time.Millisecond)
	locked := clk.Status().LastSync

	f.set(ptp4lState{port: protocol.PortStateListening}) // the grandmaster went away
	require.Eventually(t, func() bool { return clk.Status().State == "holdover" }, 5*time.Second, 5*time.Millisecond)
	require.False(t, clk.Status().LastSync.Before(locked))
	require.Eventually(t, func() bool { return clk.Status().State == "freerun" }, 5*time.Second, 5*time.Millisecond)

	f.set(ptp4lState{port: protocol.PortStateSlave, gmPresent: true, gm: gm, offsetNS: 200, delayNS: 1000})
	require.Eventually(t, func() bool { return clk.Status().State == "locked" }, 5*time.Second, 5*time.Millisecond)

	f.set(ptp4lState{silent: true}) // ptp4l stopped answering
	require.Eventually(t, func() bool { return clk.Status().State == "holdover" }, 5*time.Second, 5*time.Millisecond)
	require.Contains(t, clk.Status().Error, "TIME_STATUS_NP")
}

// An answer that comes after its poll gave up on it is not taken for the
// answer to the next request.
func TestLinuxPTPDropsStaleAnswers(t *testing.T) {
	f := startFakePTP4L(t, ptp4lState{port: protocol.PortStateSlave, gmPresent: true, gm: gm, offsetNS: 300, delayNS: 900, utcOffset: 37, stale: true})
	clk := runClock(t, linuxPTPConfig(f.path))
	require.Eventually(t, func() bool { return clk.Status().State == "locked" }, 5*time.Second, 5*time.Millisecond)
	st := clk.Status()
	require.Empty(t, st.Error)
	require.Equal(t, int64(300), st.OffsetNS)
	require.Equal(t, 37, st.UTCOffset)
}

func TestLinuxPTPNoSocket(t *testing.T) {
	clk := runClock(t, linuxPTPConfig(filepath.Join(os.TempDir(), "weir-absent-ptp4l")))
	require.Eventually(t, func() bool { return clk.Status().Error != "" }, 5*time.Second, 5*time.Millisecond)
	require.Contains(t, clk.Status().Error, "weir-absent-ptp4l")
	require.Equal(t, "freerun", clk.Status().State)
}

func TestLinuxPTPStartsBeforePTP4L(t *testing.T) {
	dir, err := os.MkdirTemp("", "weirptp")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "ptp4l")
	clk := runClock(t, linuxPTPConfig(socket))
	require.Eventually(t, func() bool { return clk.Status().Error != "" }, 5*time.Second, 5*time.Millisecond)

	// ptp4l comes up later at the configured address.
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	require.NoError(t, err)
	f := &fakePTP4L{path: socket, st: ptp4lState{port: protocol.PortStateSlave, gmPresent: true, gm: gm, offsetNS: 10, delayNS: 100}}
	t.Cleanup(func() { conn.Close() })
	go f.serve(t, conn)
	require.Eventually(t, func() bool { return clk.Status().State == "locked" }, 5*time.Second, 5*time.Millisecond)
}

func TestPortDataSetRoundTrip(t *testing.T) {
	req := PortDataSetRequest()
	in := &PortDataSetTLV{ManagementTLVHead: req.TLV.(*PortDataSetTLV).ManagementTLVHead,
		PortIdentity: protocol.PortIdentity{ClockIdentity: gm, PortNumber: 1}, PortState: protocol.PortStateSlave,
		PeerMeanPathDelay: protocol.NewTimeInterval(1234), LogSyncInterval: -3, VersionNumber: 2}
	head := req.ManagementMsgHead
	head.ActionField = protocol.RESPONSE
	b, err := in.MarshalBinary(head)
	require.NoError(t, err)
	out, err := DecodePortDataSet(b)
	require.NoError(t, err)
	require.Equal(t, in, out)

	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": b[:len(b)-3],
		"other id": func() []byte {
			c := bytes.Clone(b)
			binary.BigEndian.PutUint16(c[binary.Size(protocol.ManagementMsgHead{})+4:], uint16(protocol.IDParentDataSet))
			return c
		}(),
	} {
		_, err := DecodePortDataSet(bad)
		require.Error(t, err, name)
	}
}
