package ptp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/facebook/time/ptp/protocol"
)

// foreignMaster is what is known of one announcing port (IEEE 1588-2008
// 9.3.2.4: a foreign master record).
type foreignMaster struct {
	port     protocol.PortIdentity
	addr     netip.Addr
	last     protocol.Announce // the latest Announce, TLVs dropped
	received []time.Time       // arrival times within the qualification window
}

// qualificationWindow is FOREIGN_MASTER_TIME_WINDOW: four announce
// intervals; foreignThreshold Announces within it qualify a master.
const (
	foreignWindowIntervals = 4
	foreignThreshold       = 2
)

// foreignMasters is the slave's table of announcers and the choice among
// them. Used by one goroutine only.
type foreignMasters struct {
	self    protocol.PortIdentity
	masters map[protocol.PortIdentity]*foreignMaster
	// receiptTimeout is announceReceiptTimeout: a master silent for this
	// many of its own announce intervals is forgotten.
	receiptTimeout int
	// minInterval is the Announce interval granted by unicast
	// negotiation: a master may fill the message's field with its
	// multicast interval while sending at the granted one.
	minInterval time.Duration
}

// interval is the announce interval to time a master's Announces by.
func (f *foreignMasters) interval(l protocol.LogInterval) time.Duration {
	return max(logInterval(l), f.minInterval)
}

func newForeignMasters(self protocol.PortIdentity) *foreignMasters {
	return &foreignMasters{self: self, masters: map[protocol.PortIdentity]*foreignMaster{}, receiptTimeout: 3}
}

// maxForeignMasters bounds the table against a flood of forged announcers.
const maxForeignMasters = 16

// observe records an Announce. It reports false when the message is not
// one a slave may follow: its own, a loop (steps removed ≥ 255), or one
// more announcer than the table holds.
func (f *foreignMasters) observe(a *protocol.Announce, from netip.Addr, at time.Time) bool {
	if a.SourcePortIdentity == f.self || a.GrandmasterIdentity == f.self.ClockIdentity || a.StepsRemoved >= 255 {
		return false
	}
	m := f.masters[a.SourcePortIdentity]
	if m == nil {
		if len(f.masters) >= maxForeignMasters {
			f.expire(at)
			if len(f.masters) >= maxForeignMasters {
				return false
			}
		}
		m = &foreignMaster{port: a.SourcePortIdentity}
		f.masters[a.SourcePortIdentity] = m
	}
	m.addr = from
	m.last = protocol.Announce{Header: a.Header, AnnounceBody: a.AnnounceBody}
	m.received = append(m.received, at)
	window := foreignWindowIntervals * f.interval(a.LogMessageInterval)
	for len(m.received) > 0 && at.Sub(m.received[0]) > window {
		m.received = m.received[1:]
	}
	if len(m.received) > foreignThreshold+1 {
		m.received = m.received[len(m.received)-foreignThreshold-1:]
	}
	return true
}

// expire forgets masters not heard from within their receipt timeout.
func (f *foreignMasters) expire(now time.Time) {
	for id, m := range f.masters {
		if len(m.received) == 0 || now.Sub(m.received[len(m.received)-1]) > time.Duration(f.receiptTimeout)*f.interval(m.last.LogMessageInterval) {
			delete(f.masters, id)
		}
	}
}

// best returns the best qualified master, or nil.
func (f *foreignMasters) best(now time.Time) *foreignMaster {
	f.expire(now)
	var best *foreignMaster
	for _, m := range f.masters {
		if len(m.received) < foreignThreshold {
			continue
		}
		if best == nil || compareAnnounce(&m.last, &best.last) < 0 {
			best = m
		}
	}
	return best
}

// compareAnnounce is the data set comparison of IEEE 1588-2008 9.3.4
// (figures 27 and 28) as a slave-only port sees it: negative when a is the
// better master. Identities compare as unsigned octet strings.
// (facebook/time's bmc.Dscmp subtracts identities as int64, which
// overflows for identities with the top bit set.)
func compareAnnounce(a, b *protocol.Announce) int {
	if a.GrandmasterIdentity != b.GrandmasterIdentity {
		qa, qb := a.GrandmasterClockQuality, b.GrandmasterClockQuality
		for _, c := range [][2]int{
			{int(a.GrandmasterPriority1), int(b.GrandmasterPriority1)},
			{int(qa.ClockClass), int(qb.ClockClass)},
			{int(qa.ClockAccuracy), int(qb.ClockAccuracy)},
			{int(qa.OffsetScaledLogVariance), int(qb.OffsetScaledLogVariance)},
			{int(a.GrandmasterPriority2), int(b.GrandmasterPriority2)},
		} {
			if c[0] != c[1] {
				return c[0] - c[1]
			}
		}
		return compareIdentity(a.GrandmasterIdentity, b.GrandmasterIdentity)
	}
	// Same grandmaster through two ports: the shorter path wins when it is
	// shorter by more than one step, else the lower sender identity.
	if int(a.StepsRemoved)+1 < int(b.StepsRemoved) {
		return -1
	}
	if int(b.StepsRemoved)+1 < int(a.StepsRemoved) {
		return 1
	}
	if c := compareIdentity(a.SourcePortIdentity.ClockIdentity, b.SourcePortIdentity.ClockIdentity); c != 0 {
		return c
	}
	return int(a.SourcePortIdentity.PortNumber) - int(b.SourcePortIdentity.PortNumber)
}

func compareIdentity(a, b protocol.ClockIdentity) int {
	var x, y [8]byte
	binary.BigEndian.PutUint64(x[:], uint64(a))
	binary.BigEndian.PutUint64(y[:], uint64(b))
	return bytes.Compare(x[:], y[:])
}

// logInterval turns a log2 seconds message interval into a duration,
// clamped to the range IEEE 1588 profiles use (1/128 s to 64 s) so a
// hostile value cannot make a window of centuries or of nothing.
func logInterval(l protocol.LogInterval) time.Duration {
	v := int8(l)
	if v < -7 {
		v = -7
	}
	if v > 6 {
		v = 6
	}
	if v >= 0 {
		return time.Second << v
	}
	return time.Second >> -v
}
