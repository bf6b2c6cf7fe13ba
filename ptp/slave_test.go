package ptp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/facebook/time/ptp/protocol"
	"github.com/stretchr/testify/require"
)

var (
	testSelf    = protocol.PortIdentity{ClockIdentity: 0xaabbccfffe000001, PortNumber: 1}
	testMaster  = protocol.PortIdentity{ClockIdentity: 0x001122fffe334455, PortNumber: 1}
	testMasterA = netip.MustParseAddr("10.0.0.1")
	t0          = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
)

func header(t protocol.MessageType, src protocol.PortIdentity, seq uint16, flags uint16, length uint16) protocol.Header {
	return protocol.Header{
		SdoIDAndMsgType: protocol.NewSdoIDAndMsgType(t, 0), Version: protocol.Version,
		MessageLength: length, FlagField: flags, SourcePortIdentity: src, SequenceID: seq,
	}
}

func ts(t time.Time) protocol.Timestamp {
	return protocol.Timestamp{Seconds: protocol.NewPTPSeconds(t), Nanoseconds: uint32(t.Nanosecond())}
}

func announceMsg(src protocol.PortIdentity, gm protocol.ClockIdentity, prio1 uint8, flags uint16, utcOffset int16) []byte {
	a := protocol.Announce{
		Header: header(protocol.MessageAnnounce, src, 1, flags, announceLen),
		AnnounceBody: protocol.AnnounceBody{
			CurrentUTCOffset: utcOffset, GrandmasterPriority1: prio1, GrandmasterPriority2: 128,
			GrandmasterClockQuality: protocol.ClockQuality{ClockClass: 248, ClockAccuracy: 0xfe, OffsetScaledLogVariance: 0xffff},
			GrandmasterIdentity:     gm,
		},
	}
	b := make([]byte, 128)
	n, err := a.MarshalBinaryTo(b)
	if err != nil {
		panic(err)
	}
	return b[:n]
}

func syncMsg(src protocol.PortIdentity, seq uint16, twoStep bool, origin time.Time) []byte {
	flags := uint16(0)
	if twoStep {
		flags = protocol.FlagTwoStep
	}
	m := protocol.SyncDelayReq{Header: header(protocol.MessageSync, src, seq, flags, syncLen)}
	if !twoStep {
		m.OriginTimestamp = ts(origin)
	}
	b, err := m.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

func followUpMsg(src protocol.PortIdentity, seq uint16, origin time.Time) []byte {
	m := protocol.FollowUp{Header: header(protocol.MessageFollowUp, src, seq, 0, followUpLen),
		FollowUpBody: protocol.FollowUpBody{PreciseOriginTimestamp: ts(origin)}}
	b, err := m.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

func delayRespMsg(src protocol.PortIdentity, seq uint16, to protocol.PortIdentity, rx time.Time) []byte {
	m := protocol.DelayResp{Header: header(protocol.MessageDelayResp, src, seq, 0, delayRespLen),
		DelayRespBody: protocol.DelayRespBody{ReceiveTimestamp: ts(rx), RequestingPortIdentity: to}}
	b, err := m.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

// exchange drives s through one full exchange with a master whose clock
// reads master = local − offset, over a path of delay each way. It
// returns the measurement of a following Sync.
func exchange(t *testing.T, s *slave, at time.Time, offset, delay time.Duration, seq uint16) *measurement {
	t.Helper()
	// Sync leaves the master at master time at−offset, arrives delay later.
	t1 := at.Add(-offset)
	t2 := at.Add(delay)
	require.Nil(t, s.handle(syncMsg(testMaster, seq, true, time.Time{}), true, t2, t2, testMasterA))
	m := s.handle(followUpMsg(testMaster, seq, t1), false, t2, t2, testMasterA)
	req := s.delayRequest()
	require.NotNil(t, req)
	t3 := t2.Add(10 * time.Millisecond)
	s.sent(t3)
	t4 := t3.Add(delay).Add(-offset)
	var dr protocol.SyncDelayReq
	require.NoError(t, dr.UnmarshalBinary(req))
	require.Equal(t, protocol.MessageDelayReq, dr.MessageType())
	require.Equal(t, testSelf, dr.SourcePortIdentity)
	require.Nil(t, s.handle(delayRespMsg(testMaster, dr.SequenceID, testSelf, t4), false, t4, t4, testMasterA))
	return m
}

func qualified(t *testing.T, s *slave, at time.Time) {
	t.Helper()
	for i := range 2 {
		s.handle(announceMsg(testMaster, testMaster.ClockIdentity, 128, 0, 37), false, at.Add(time.Duration(i)*time.Second), at, testMasterA)
	}
	require.NotNil(t, s.master, "two announces qualify the master")
}

func TestSlaveMeasuresOffsetAndDelay(t *testing.T) {
	for _, tc := range []struct {
		name          string
		offset, delay time.Duration
	}{
		{"ahead", 250 * time.Millisecond, 30 * time.Microsecond},
		{"behind", -3 * time.Second, 2 * time.Microsecond},
		{"zero", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSlave(testSelf, 0, netip.Addr{}, 10, 7)
			qualified(t, s, t0)
			require.Nil(t, exchange(t, s, t0.Add(2*time.Second), tc.offset, tc.delay, 1), "no delay known yet")
			m := exchange(t, s, t0.Add(3*time.Second), tc.offset, tc.delay, 2)
			require.NotNil(t, m)
			require.Equal(t, tc.offset, m.offset)
			require.Equal(t, tc.delay, m.delay)
		})
	}
}

func TestSlaveFollowUpBeforeSync(t *testing.T) {
	s := newSlave(testSelf, 0, netip.Addr{}, 10, 7)
	qualified(t, s, t0)
	exchange(t, s, t0.Add(2*time.Second), 5*time.Millisecond, 10*time.Microsecond, 1)
	at := t0.Add(3 * time.Second)
	t1, t2 := at.Add(-5*time.Millisecond), at.Add(10*time.Microsecond)
	require.Nil(t, s.handle(followUpMsg(testMaster, 2, t1), false, t2, t2, testMasterA))
	m := s.handle(syncMsg(testMaster, 2, true, time.Time{}), true, t2, t2, testMasterA)
	require.NotNil(t, m)
	require.Equal(t, 5*time.Millisecond, m.offset)
}

func TestSlaveOneStepSync(t *testing.T) {
	s := newSlave(testSelf, 0, netip.Addr{}, 10, 7)
	qualified(t, s, t0)
	exchange(t, s, t0.Add(2*time.Second), time.Millisecond, 10*time.Microsecond, 1)
	at := t0.Add(3 * time.Second)
	t2 := at.Add(10 * time.Microsecond)
	m := s.handle(syncMsg(testMaster, 2, false, at.Add(-time.Millisecond)), true, t2, t2, testMasterA)
	require.NotNil(t, m)
	require.Equal(t, time.Millisecond, m.offset)
}

func TestSlavePTPTimescale(t *testing.T) {
	// A grandmaster on the PTP timescale counts TAI: 37 s ahead of UTC.
	s := newSlave(testSelf, 0, netip.Addr{}, 10, 7)
	for i := range 2 {
		s.handle(announceMsg(testMaster, testMaster.ClockIdentity, 128, protocol.FlagPTPTimescale|protocol.FlagCurrentUtcOffsetValid, 37), false, t0.Add(time.Duration(i)*time.Second), t0, testMasterA)
	}
	exchange(t, s, t0.Add(2*time.Second), -37*time.Second, 0, 1)
	m := exchange(t, s, t0.Add(3*time.Second), -37*time.Second, 0, 2)
	require.NotNil(t, m)
	require.Equal(t, time.Duration(0), m.offset)
}

func TestSlaveIgnores(t *testing.T) {
	other := protocol.PortIdentity{ClockIdentity: 0x99, PortNumber: 1}
	s := newSlave(testSelf, 0, netip.Addr{}, 10, 7)
	qualified(t, s, t0)
	exchange(t, s, t0.Add(2*time.Second), 0, 0, 1)
	before := s.counts[msgDelayResp]
	// Another slave's Delay_Resp on the shared group.
	s.handle(delayRespMsg(testMaster, s.nextDelay, other, t0), false, t0, t0, testMasterA)
	require.Equal(t, before, s.counts[msgDelayResp])
	require.Equal(t, uint64(1), s.counts[msgUnexpected])
	// A Sync from a port that is not the master.
	s.handle(syncMsg(other, 9, false, t0), true, t0, t0, testMasterA)
	require.Equal(t, uint64(1), s.counts[msgNotMaster])
	// Another domain.
	b := syncMsg(testMaster, 9, false, t0)
	b[4] = 3
	s.handle(b, true, t0, t0, testMasterA)
	require.Equal(t, uint64(1), s.counts[msgOtherDom])
	// A Sync on the general port.
	s.handle(syncMsg(testMaster, 9, false, t0), false, t0, t0, testMasterA)
	require.Equal(t, uint64(2), s.counts[msgUnexpected])
}

func TestSlaveMalformed(t *testing.T) {
	good := syncMsg(testMaster, 1, false, t0)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short header", good[:20]},
		{"version 1", append([]byte{good[0], 1}, good[2:]...)},
		{"length beyond datagram", func() []byte { b := append([]byte(nil), good...); b[3] = 200; return b }()},
		{"length below header", func() []byte { b := append([]byte(nil), good...); b[3] = 10; return b }()},
		{"sync body cut", func() []byte { b := append([]byte(nil), good[:40]...); b[3] = 40; return b }()},
		{"nanoseconds ≥ 1e9", func() []byte {
			b := append([]byte(nil), good...)
			b[40], b[41], b[42], b[43] = 0xff, 0xff, 0xff, 0xff
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSlave(testSelf, 0, netip.Addr{}, 10, 7)
			qualified(t, s, t0)
			exchange(t, s, t0.Add(2*time.Second), 0, 0, 1)
			require.Nil(t, s.handle(tc.b, true, t0, t0, testMasterA))
			require.Equal(t, uint64(1), s.counts[msgMalformed])
		})
	}
}

func TestBestMaster(t *testing.T) {
	a := protocol.PortIdentity{ClockIdentity: 0x8000000000000001, PortNumber: 1}
	b := protocol.PortIdentity{ClockIdentity: 0x0000000000000002, PortNumber: 1}
	s := newSlave(testSelf, 0, netip.Addr{}, 10, 7)
	send := func(src protocol.PortIdentity, prio1 uint8, at time.Time) {
		s.handle(announceMsg(src, src.ClockIdentity, prio1, 0, 37), false, at, at, testMasterA)
	}
	send(a, 100, t0)
	require.Nil(t, s.master, "one Announce does not qualify")
	send(a, 100, t0.Add(time.Second))
	require.Equal(t, a, s.master.port)
	// b has the better priority1: it wins once qualified.
	send(b, 50, t0.Add(1500*time.Millisecond))
	require.Equal(t, a, s.master.port)
	send(b, 50, t0.Add(2*time.Second))
	require.Equal(t, b, s.master.port)
	// b falls silent for more than three intervals: back to a.
	send(a, 100, t0.Add(3*time.Second))
	send(a, 100, t0.Add(4*time.Second))
	send(a, 100, t0.Add(5500*time.Millisecond))
	require.Equal(t, a, s.master.port)
	// Everyone silent: no master.
	s.choose(t0.Add(20 * time.Second))
	require.Nil(t, s.master)
}

func TestCompareAnnounce(t *testing.T) {
	base := func() *protocol.Announce {
		var a protocol.Announce
		a.GrandmasterPriority1, a.GrandmasterPriority2 = 128, 128
		a.GrandmasterClockQuality = protocol.ClockQuality{ClockClass: 248, ClockAccuracy: 0xfe, OffsetScaledLogVariance: 0xffff}
		a.GrandmasterIdentity = 0x10
		a.SourcePortIdentity = protocol.PortIdentity{ClockIdentity: 0x10, PortNumber: 1}
		return &a
	}
	for _, tc := range []struct {
		name   string
		change func(better *protocol.Announce)
	}{
		{"priority1", func(a *protocol.Announce) { a.GrandmasterPriority1 = 1 }},
		{"class", func(a *protocol.Announce) { a.GrandmasterClockQuality.ClockClass = 6 }},
		{"accuracy", func(a *protocol.Announce) { a.GrandmasterClockQuality.ClockAccuracy = 0x21 }},
		{"variance", func(a *protocol.Announce) { a.GrandmasterClockQuality.OffsetScaledLogVariance = 0x4e5d }},
		{"priority2", func(a *protocol.Announce) { a.GrandmasterPriority2 = 1 }},
		{"identity, unsigned", func(a *protocol.Announce) { a.GrandmasterIdentity = 0x01 }},
		{"same GM, fewer steps", func(a *protocol.Announce) { a.StepsRemoved = 0 }},
		{"same GM, lower sender", func(a *protocol.Announce) { a.SourcePortIdentity.ClockIdentity = 0x01 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			better, worse := base(), base()
			switch tc.name {
			case "identity, unsigned":
				worse.GrandmasterIdentity = 0x8000000000000000
			case "same GM, fewer steps":
				worse.StepsRemoved = 2
			case "same GM, lower sender":
			default:
				// Another grandmaster with a lower identity: only the
				// attribute under test can make better win.
				worse.GrandmasterIdentity = 0x08
			}
			tc.change(better)
			require.Negative(t, compareAnnounce(better, worse))
			require.Positive(t, compareAnnounce(worse, better))
		})
	}
}

func TestSoftClock(t *testing.T) {
	local := &stepClock{t: t0}
	c := newSoftClock(local)
	_, now := c.Now()
	require.Equal(t, t0, now)
	c.Step(-250 * time.Millisecond)
	_, now = c.Now()
	require.Equal(t, t0.Add(-250*time.Millisecond), now)
	c.SetFrequency(1000) // 1 ppm fast
	local.t = local.t.Add(10 * time.Second)
	_, now = c.Now()
	require.Equal(t, t0.Add(10*time.Second-250*time.Millisecond+10*time.Microsecond), now)
	// A frequency change keeps the clock continuous.
	c.SetFrequency(-1000)
	_, again := c.Now()
	require.Equal(t, now, again)
	require.Equal(t, -250*time.Millisecond+10*time.Microsecond, c.Correction(local.t))
}

// stepClock is a local clock that moves only when told.
type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time                   { return c.t }
func (c *stepClock) FromKernel(t time.Time) time.Time { return t }

func grantMsg(to protocol.PortIdentity, grants map[protocol.MessageType]uint32) []byte {
	var tlvs []protocol.TLV
	for mt, d := range grants {
		tlvs = append(tlvs, &protocol.GrantUnicastTransmissionTLV{
			TLVHead:            protocol.TLVHead{TLVType: protocol.TLVGrantUnicastTransmission, LengthField: 8},
			MsgTypeAndReserved: protocol.NewUnicastMsgTypeAndFlags(mt, 0), DurationField: d,
		})
	}
	m := protocol.Signaling{Header: header(protocol.MessageSignaling, testMaster, 1, protocol.FlagUnicast, 0),
		TargetPortIdentity: to, TLVs: tlvs}
	b := make([]byte, 256)
	n, err := m.MarshalBinaryTo(b)
	if err != nil {
		panic(err)
	}
	b[2], b[3] = byte(n>>8), byte(n)
	return b[:n]
}

func TestUnicastNegotiation(t *testing.T) {
	s := newSlave(testSelf, 0, testMasterA, 10, 7)
	s.uni = newUnicastState(time.Minute, time.Second/4)
	req := s.unicastRequest(t0)
	require.NotNil(t, req)
	var m protocol.Signaling
	require.NoError(t, m.UnmarshalBinary(req))
	require.Equal(t, testSelf, m.SourcePortIdentity)
	got := map[protocol.MessageType]protocol.LogInterval{}
	for _, tlv := range m.TLVs {
		r := tlv.(*protocol.RequestUnicastTransmissionTLV)
		require.Equal(t, uint32(60), r.DurationField)
		got[r.MsgTypeAndReserved.MsgType()] = r.LogInterMessagePeriod
	}
	require.Equal(t, map[protocol.MessageType]protocol.LogInterval{
		protocol.MessageAnnounce: 1, protocol.MessageSync: -2, protocol.MessageDelayResp: -2}, got)
	require.Nil(t, s.unicastRequest(t0.Add(time.Second)), "no repeat before the retry interval")
	require.NotNil(t, s.unicastRequest(t0.Add(3*time.Second)), "no grant: asked again")

	// Granted for 60 s: nothing due until half of it has passed.
	all := map[protocol.MessageType]uint32{protocol.MessageAnnounce: 60, protocol.MessageSync: 60, protocol.MessageDelayResp: 60}
	s.handle(grantMsg(testSelf, all), false, t0.Add(4*time.Second), t0.Add(4*time.Second), testMasterA)
	require.Equal(t, uint64(1), s.counts[msgGrant])
	require.Nil(t, s.unicastRequest(t0.Add(20*time.Second)))
	require.NotNil(t, s.unicastRequest(t0.Add(35*time.Second)), "renewed at half life")
	require.Empty(t, s.unicastRefused())

	// A refusal is remembered and named.
	s.handle(grantMsg(testSelf, map[protocol.MessageType]uint32{protocol.MessageSync: 0}), false, t0.Add(40*time.Second), t0.Add(40*time.Second), testMasterA)
	require.Equal(t, []string{"SYNC"}, s.unicastRefused())
	// Another slave's grant is not ours.
	other := protocol.PortIdentity{ClockIdentity: 0x99, PortNumber: 1}
	s.handle(grantMsg(other, all), false, t0, t0, testMasterA)
	require.Equal(t, uint64(1), s.counts[msgUnexpected])
	// Nor is anything from another address.
	s.handle(grantMsg(testSelf, all), false, t0, t0, netip.MustParseAddr("10.0.0.9"))
	require.Equal(t, uint64(1), s.counts[msgNotMaster])
}

// FuzzSlaveHandle feeds arbitrary datagrams to a slave that already follows
// a master: every datagram gets exactly one verdict, and a malformed one
// changes nothing.
func FuzzSlaveHandle(f *testing.F) {
	for _, b := range [][]byte{
		announceMsg(testMaster, testMaster.ClockIdentity, 128, 0, 37),
		syncMsg(testMaster, 3, true, time.Time{}),
		syncMsg(testMaster, 3, false, t0),
		followUpMsg(testMaster, 3, t0),
		delayRespMsg(testMaster, 8, testSelf, t0),
		grantMsg(testSelf, map[protocol.MessageType]uint32{protocol.MessageSync: 60, protocol.MessageAnnounce: 0}),
	} {
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, event bool) {
		s := newSlave(testSelf, 0, testMasterA, 10, 7)
		s.uni = newUnicastState(time.Minute, time.Second)
		qualified(t, s, t0)
		exchange(t, s, t0.Add(2*time.Second), 0, 0, 1)
		total := func() (n uint64) {
			for _, c := range s.counts {
				n += c
			}
			return n
		}
		before, malformed := total(), s.counts[msgMalformed]
		master, pair, delays := s.master, s.pair, len(s.delays)
		m := s.handle(b, event, t0.Add(3*time.Second), t0.Add(3*time.Second), testMasterA)
		require.Equal(t, before+1, total(), "one verdict per datagram")
		if s.counts[msgMalformed] > malformed {
			require.Nil(t, m)
			require.Equal(t, master, s.master)
			require.Equal(t, pair, s.pair)
			require.Equal(t, delays, len(s.delays))
		}
	})
}
