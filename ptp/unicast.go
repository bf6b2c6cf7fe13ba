package ptp

import (
	"math"
	"time"

	"github.com/facebook/time/ptp/protocol"
)

// unicastState is the slave's side of unicast negotiation (IEEE 1588-2019
// 16.1): it asks the configured master for Announce, Sync and Delay_Resp
// by unicast for a while, and asks again before each grant runs out. A
// ptp4l master grants such requests with unicast_listen.
type unicastState struct {
	duration time.Duration
	wanted   []unicastWant
	grants   map[protocol.MessageType]*unicastGrant
}

type unicastWant struct {
	msg protocol.MessageType
	log protocol.LogInterval
}

type unicastGrant struct {
	until     time.Time // zero: never granted
	requested time.Time // last request sent
	refused   bool      // the last answer was a refusal (duration 0)
}

// unicastAnnounceLog asks for an Announce every 2 s: a lost master is
// noticed after three of them.
const unicastAnnounceLog protocol.LogInterval = 1

// requestRetry spaces requests that got no grant.
const requestRetry = 2 * time.Second

func newUnicastState(duration, sync time.Duration) *unicastState {
	u := &unicastState{duration: duration, grants: map[protocol.MessageType]*unicastGrant{}}
	syncLog := logOf(sync)
	u.wanted = []unicastWant{
		{protocol.MessageAnnounce, unicastAnnounceLog},
		{protocol.MessageSync, syncLog},
		{protocol.MessageDelayResp, syncLog},
	}
	for _, w := range u.wanted {
		u.grants[w.msg] = &unicastGrant{}
	}
	return u
}

// logOf is the log2 seconds of a power-of-two interval.
func logOf(d time.Duration) protocol.LogInterval {
	return protocol.LogInterval(math.Round(math.Log2(d.Seconds())))
}

// request returns a Signaling message asking for every grant that is
// missing or past half its life, or nil when none is due.
func (s *slave) unicastRequest(now time.Time) []byte {
	u := s.uni
	if u == nil {
		return nil
	}
	var tlvs []protocol.TLV
	for _, w := range u.wanted {
		g := u.grants[w.msg]
		due := g.until.IsZero() || g.until.Sub(now) < u.duration/2
		if !due || (!g.requested.IsZero() && now.Sub(g.requested) < requestRetry) {
			continue
		}
		g.requested = now
		tlvs = append(tlvs, &protocol.RequestUnicastTransmissionTLV{
			TLVHead:               protocol.TLVHead{TLVType: protocol.TLVRequestUnicastTransmission, LengthField: 6},
			MsgTypeAndReserved:    protocol.NewUnicastMsgTypeAndFlags(w.msg, 0),
			LogInterMessagePeriod: w.log,
			DurationField:         uint32(u.duration / time.Second),
		})
	}
	if len(tlvs) == 0 {
		return nil
	}
	s.nextSignal++
	m := protocol.Signaling{
		Header: protocol.Header{
			SdoIDAndMsgType:    protocol.NewSdoIDAndMsgType(protocol.MessageSignaling, 0),
			Version:            protocol.Version,
			DomainNumber:       s.domain,
			FlagField:          protocol.FlagUnicast,
			SourcePortIdentity: s.self,
			SequenceID:         s.nextSignal,
			ControlField:       5,
			LogMessageInterval: 0x7f,
		},
		TargetPortIdentity: protocol.DefaultTargetPortIdentity,
		TLVs:               tlvs,
	}
	b := make([]byte, 256)
	n, err := m.MarshalBinaryTo(b)
	if err != nil {
		return nil
	}
	b = b[:n]
	// MarshalBinaryTo leaves the length to the caller.
	b[2], b[3] = byte(n>>8), byte(n)
	return b
}

// signaling takes the master's answers: a grant of duration 0 is a
// refusal.
func (s *slave) signaling(b []byte, now time.Time) {
	var m protocol.Signaling
	if s.uni == nil {
		s.counts[msgUnexpected]++
		return
	}
	if m.UnmarshalBinary(b) != nil {
		s.counts[msgMalformed]++
		return
	}
	if m.TargetPortIdentity != s.self && m.TargetPortIdentity != protocol.DefaultTargetPortIdentity {
		s.counts[msgUnexpected]++
		return
	}
	granted := false
	for _, tlv := range m.TLVs {
		g, ok := tlv.(*protocol.GrantUnicastTransmissionTLV)
		if !ok {
			continue
		}
		st := s.uni.grants[g.MsgTypeAndReserved.MsgType()]
		if st == nil {
			continue
		}
		granted = true
		st.refused = g.DurationField == 0
		if st.refused {
			st.until = time.Time{}
			continue
		}
		st.until = now.Add(time.Duration(g.DurationField) * time.Second)
	}
	if granted {
		s.counts[msgGrant]++
	} else {
		s.counts[msgUnexpected]++
	}
}

// unicastRefused names the message types the master refused, if any.
func (s *slave) unicastRefused() []string {
	if s.uni == nil {
		return nil
	}
	var r []string
	for _, w := range s.uni.wanted {
		if s.uni.grants[w.msg].refused {
			r = append(r, w.msg.String())
		}
	}
	return r
}
