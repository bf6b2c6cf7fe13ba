package ptp

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/facebook/time/ptp/protocol"
)

// Message verdicts, as counted in Status.Messages.
const (
	msgMalformed  = "malformed" // too short, wrong version, bad length or field
	msgOtherDom   = "other_domain"
	msgNotMaster  = "not_master" // from a port that is not the chosen master
	msgUnexpected = "unexpected" // a message a slave does not use, or on the wrong port
	msgStale      = "stale"      // a Follow_Up or Delay_Resp matching nothing pending
	msgBadDelay   = "bad_delay"  // a negative or absurd path delay
	msgAnnounce   = "announce"
	msgSync       = "sync"
	msgFollowUp   = "follow_up"
	msgDelayResp  = "delay_resp"
	msgGrant      = "unicast_grant"
	// The servo's verdicts on the measured offsets: one far outside the
	// recent spread is skipped; after 15 of them in a row the spike filter
	// gives up, and the servo starts over from two samples.
	msgSpike      = "spike"
	msgServoReset = "servo_reset"
)

// headerLen is the PTPv2 common header; the message bodies a slave reads.
const (
	headerLen      = 34
	syncLen        = headerLen + 10
	followUpLen    = headerLen + 10
	delayRespLen   = headerLen + 20
	announceLen    = headerLen + 30
	maxTimestampNS = 1_000_000_000
)

// measurement is one offset from the master, ready for the servo.
type measurement struct {
	offset time.Duration // disciplined clock − master
	delay  time.Duration // filtered mean path delay
	local  time.Time     // local (undisciplined) time of the Sync's arrival
}

// pendingSync is a two-step Sync waiting for its Follow_Up.
type pendingSync struct {
	seq        uint16
	t2         time.Time // disciplined arrival time
	local      time.Time
	correction time.Duration
}

// earlyFollowUp is a Follow_Up that arrived before its Sync.
type earlyFollowUp struct {
	seq uint16
	t1  time.Time // with the Follow_Up's correction
}

// syncPair is the latest complete master→slave exchange.
type syncPair struct {
	t1, t2 time.Time
	local  time.Time
}

// slave is the protocol side of the built-in end-to-end slave: it takes
// received messages with their arrival times on the disciplined clock and
// yields offsets. No I/O and no clock reads, so fuzzing and unit tests
// drive it directly. One goroutine uses it.
type slave struct {
	self   protocol.PortIdentity
	domain uint8
	// only, when valid, is the one master address accepted (unicast_master).
	only netip.Addr

	fm     *foreignMasters
	master *foreignMaster // chosen; nil while listening

	sync     *pendingSync
	early    *earlyFollowUp
	pair     *syncPair
	delayReq struct {
		seq     uint16
		t3      time.Time
		pending bool
	}
	delayLog  protocol.LogInterval // master's logMinDelayReqInterval
	syncLog   protocol.LogInterval
	delays    []time.Duration // recent path delays, for the median
	delayLen  int
	nextDelay uint16

	// uni, when set, negotiates unicast service from the master at only.
	uni        *unicastState
	nextSignal uint16

	counts map[string]uint64
}

func newSlave(self protocol.PortIdentity, domain uint8, only netip.Addr, delayFilter int, firstSeq uint16) *slave {
	return &slave{
		self: self, domain: domain, only: only,
		fm: newForeignMasters(self), delayLen: delayFilter, nextDelay: firstSeq,
		counts: map[string]uint64{},
	}
}

// handle takes one datagram received on the event (319) or general (320)
// port at rx, on the disciplined clock, with local the same instant on the
// undisciplined one. It returns a measurement when a Sync exchange
// completes with a known path delay.
func (s *slave) handle(b []byte, event bool, rx, local time.Time, from netip.Addr) *measurement {
	if len(b) < headerLen || b[1]&0x0f != 2 {
		s.counts[msgMalformed]++
		return nil
	}
	length := int(binary.BigEndian.Uint16(b[2:]))
	if length < headerLen || length > len(b) {
		s.counts[msgMalformed]++
		return nil
	}
	b = b[:length]
	if b[4] != s.domain {
		s.counts[msgOtherDom]++
		return nil
	}
	if s.only.IsValid() && from != s.only {
		s.counts[msgNotMaster]++
		return nil
	}
	switch t := protocol.MessageType(b[0] & 0x0f); {
	case t == protocol.MessageAnnounce && !event:
		return s.announce(b, rx, from)
	case t == protocol.MessageSync && event:
		return s.syncMsg(b, rx, local)
	case t == protocol.MessageFollowUp && !event:
		return s.followUp(b)
	case t == protocol.MessageDelayResp && !event:
		return s.delayResp(b)
	case t == protocol.MessageSignaling && !event:
		s.signaling(b, local)
		return nil
	default:
		s.counts[msgUnexpected]++
		return nil
	}
}

func (s *slave) announce(b []byte, rx time.Time, from netip.Addr) *measurement {
	var a protocol.Announce
	if len(b) < announceLen || a.UnmarshalBinary(b) != nil {
		s.counts[msgMalformed]++
		return nil
	}
	if !s.fm.observe(&a, from, rx) {
		s.counts[msgUnexpected]++
		return nil
	}
	s.counts[msgAnnounce]++
	s.choose(rx)
	return nil
}

// choose runs the best master selection; a new master discards whatever
// was half-measured with the old one.
func (s *slave) choose(now time.Time) {
	best := s.fm.best(now)
	if best == s.master {
		return
	}
	if best != nil && s.master != nil && best.port == s.master.port {
		s.master = best
		return
	}
	s.master = best
	s.forget()
	s.delays = s.delays[:0]
}

// forget drops exchanges in flight: after a step their times are on the
// old scale.
func (s *slave) forget() {
	s.sync, s.early, s.pair = nil, nil, nil
	s.delayReq.pending = false
}

func (s *slave) fromMaster(b []byte) bool {
	if s.master == nil {
		return false
	}
	id := protocol.PortIdentity{
		ClockIdentity: protocol.ClockIdentity(binary.BigEndian.Uint64(b[20:])),
		PortNumber:    binary.BigEndian.Uint16(b[28:]),
	}
	return id == s.master.port
}

func (s *slave) syncMsg(b []byte, rx, local time.Time) *measurement {
	var m protocol.SyncDelayReq
	if len(b) < syncLen || m.UnmarshalBinary(b) != nil || m.CorrectionField.TooBig() {
		s.counts[msgMalformed]++
		return nil
	}
	if !s.fromMaster(b) {
		s.counts[msgNotMaster]++
		return nil
	}
	twoStep := m.FlagField&protocol.FlagTwoStep != 0
	t1, ok := s.masterTime(m.OriginTimestamp)
	if !ok && !twoStep {
		s.counts[msgMalformed]++
		return nil
	}
	s.counts[msgSync]++
	s.syncLog = m.LogMessageInterval
	if twoStep {
		if e := s.early; e != nil && e.seq == m.SequenceID {
			// The Follow_Up overtook its Sync (the two ports are read
			// by two goroutines).
			s.early = nil
			return s.complete(e.t1.Add(m.CorrectionField.Duration()), rx, local)
		}
		s.sync = &pendingSync{seq: m.SequenceID, t2: rx, local: local, correction: m.CorrectionField.Duration()}
		return nil
	}
	s.sync = nil
	return s.complete(t1.Add(m.CorrectionField.Duration()), rx, local)
}

func (s *slave) followUp(b []byte) *measurement {
	var m protocol.FollowUp
	if len(b) < followUpLen || m.UnmarshalBinary(b) != nil || m.CorrectionField.TooBig() {
		s.counts[msgMalformed]++
		return nil
	}
	if !s.fromMaster(b) {
		s.counts[msgNotMaster]++
		return nil
	}
	t1, ok := s.masterTime(m.PreciseOriginTimestamp)
	if !ok {
		s.counts[msgMalformed]++
		return nil
	}
	s.counts[msgFollowUp]++
	p := s.sync
	if p == nil || p.seq != m.SequenceID {
		// Its Sync may still be on the way; a later Follow_Up replaces it.
		s.early = &earlyFollowUp{seq: m.SequenceID, t1: t1.Add(m.CorrectionField.Duration())}
		return nil
	}
	s.sync = nil
	return s.complete(t1.Add(p.correction+m.CorrectionField.Duration()), p.t2, p.local)
}

// complete records the pair and, once a path delay is known, measures.
func (s *slave) complete(t1, t2, local time.Time) *measurement {
	s.pair = &syncPair{t1: t1, t2: t2, local: local}
	if len(s.delays) == 0 {
		return nil
	}
	d := s.delay()
	return &measurement{offset: t2.Sub(t1) - d, delay: d, local: local}
}

// delay is the median of the recent path delays: a median, not a mean,
// because software time stamps have rare large outliers (a scheduling
// delay on one side) that a mean would carry for the whole window.
func (s *slave) delay() time.Duration {
	d := slices.Clone(s.delays)
	slices.Sort(d)
	return d[len(d)/2]
}

// delayRequest returns the next Delay_Req, to be sent now; its transmit
// time is reported with sent.
func (s *slave) delayRequest() []byte {
	if s.master == nil || s.pair == nil {
		return nil
	}
	s.nextDelay++
	var flags uint16
	if s.only.IsValid() {
		// Sent by unicast: the flag asks the master to answer by unicast.
		flags = protocol.FlagUnicast
	}
	m := protocol.SyncDelayReq{Header: protocol.Header{
		FlagField:          flags,
		SdoIDAndMsgType:    protocol.NewSdoIDAndMsgType(protocol.MessageDelayReq, 0),
		Version:            protocol.Version,
		MessageLength:      syncLen,
		DomainNumber:       s.domain,
		SourcePortIdentity: s.self,
		SequenceID:         s.nextDelay,
		ControlField:       1,
		LogMessageInterval: 0x7f,
	}}
	b := make([]byte, syncLen)
	if _, err := m.MarshalBinaryTo(b); err != nil {
		return nil
	}
	s.delayReq.seq, s.delayReq.pending, s.delayReq.t3 = s.nextDelay, false, time.Time{}
	return b
}

// sent records the transmit time of the Delay_Req just built.
func (s *slave) sent(t3 time.Time) {
	s.delayReq.t3, s.delayReq.pending = t3, true
}

func (s *slave) delayResp(b []byte) *measurement {
	var m protocol.DelayResp
	if len(b) < delayRespLen || m.UnmarshalBinary(b) != nil || m.CorrectionField.TooBig() {
		s.counts[msgMalformed]++
		return nil
	}
	if m.RequestingPortIdentity != s.self {
		// Another slave's answer on the shared multicast group.
		s.counts[msgUnexpected]++
		return nil
	}
	if !s.fromMaster(b) {
		s.counts[msgNotMaster]++
		return nil
	}
	if !s.delayReq.pending || m.SequenceID != s.delayReq.seq || s.pair == nil {
		s.counts[msgStale]++
		return nil
	}
	t4, ok := s.masterTime(m.ReceiveTimestamp)
	if !ok {
		s.counts[msgMalformed]++
		return nil
	}
	s.counts[msgDelayResp]++
	s.delayReq.pending = false
	s.delayLog = m.LogMessageInterval
	t4 = t4.Add(-m.CorrectionField.Duration())
	// IEEE 1588 11.3: ((t2 − t1) + (t4 − t3)) / 2.
	d := (s.pair.t2.Sub(s.pair.t1) + t4.Sub(s.delayReq.t3)) / 2
	if d < 0 || d > time.Second {
		s.counts[msgBadDelay]++
		return nil
	}
	s.delays = append(s.delays, d)
	if len(s.delays) > s.delayLen {
		s.delays = s.delays[len(s.delays)-s.delayLen:]
	}
	return nil
}

// masterTime converts a master time stamp to UTC: a grandmaster on the PTP
// timescale counts TAI, ahead of UTC by the offset it announces.
func (s *slave) masterTime(ts protocol.Timestamp) (time.Time, bool) {
	if ts.Nanoseconds >= maxTimestampNS {
		return time.Time{}, false
	}
	t := time.Unix(int64(ts.Seconds.Seconds()), int64(ts.Nanoseconds))
	if s.master != nil && s.master.last.FlagField&protocol.FlagPTPTimescale != 0 {
		t = t.Add(-time.Duration(s.master.last.CurrentUTCOffset) * time.Second)
	}
	return t, true
}

// syncInterval is the master's Sync interval, 1 s until it says.
func (s *slave) syncInterval() time.Duration {
	if s.syncLog == 0 && s.counts[msgSync] == 0 {
		return time.Second
	}
	return logInterval(s.syncLog)
}

// delayInterval is the mean Delay_Req interval the master asks for.
func (s *slave) delayInterval() time.Duration {
	if s.delayLog == 0x7f {
		return time.Second
	}
	return logInterval(s.delayLog)
}
