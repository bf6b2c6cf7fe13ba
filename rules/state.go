package rules

import (
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

// batchSeqs is one observed batch's first sequence, set by Commit once the
// spool assigned it; 0 until then.
// pos, when set (Engine.CommitKept), maps an index of the batch observed
// to its place among the records spooled, -1 for one left out.
type batchSeqs struct {
	first uint64
	pos   []int32
}

// seqRef names a record by its batch and index, its sequence once known.
type seqRef struct {
	b *batchSeqs
	i uint32
}

func (r seqRef) seq() uint64 {
	if r.b == nil || r.b.first == 0 {
		return 0
	}
	if r.b.pos != nil {
		if int(r.i) >= len(r.b.pos) || r.b.pos[r.i] < 0 {
			return 0 // not spooled: a processor dropped it
		}
		return r.b.first + uint64(r.b.pos[r.i])
	}
	return r.b.first + uint64(r.i)
}

// rule is a compiled rule with its state. The compiled part never changes
// (Observe matches without a lock); the state is the engine's, under its
// lock.
type rule struct {
	cfg      RuleConfig
	fp       string
	m, when  *match.Matcher
	cooldown int64 // ns
	window   int64 // ns
	forNS    int64

	groups  map[string]*group
	matched uint64
	alerts  uint64
	last    *AlertInfo
}

// group is one group_by value's state. Which fields are used depends on
// the rule's type.
type group struct {
	key  string
	seen int64 // newest record time, or the clock when created

	// count
	hits  []hit
	sum   float64
	stage int

	// rate
	samples []sample
	ratio   float64

	// sustained: on since, from the record at onRef
	on       bool
	since    int64
	onRef    seqRef
	observed int64 // time of the record that set on

	// absent: the newest record seen
	lastRef seqRef

	// every type
	alerted   bool
	lastAlert int64
}

type hit struct {
	t   int64
	w   float64
	ref seqRef
}

type sample struct {
	t         int64
	errs, tot float64
	ref       seqRef
}

// AlertInfo is the last alert of a rule or pattern, for weir alerts.
type AlertInfo struct {
	At            time.Time `json:"at"`
	Level         Level     `json:"level"`
	Message       string    `json:"message"`
	Group         string    `json:"group,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
}

// firing is an alert decided while observing, made into a record once the
// sequences it names are known.
type firing struct {
	rule        string
	typ         string // the rule's type, or the pattern
	description string
	group       string
	level       Level
	stage       int
	count       float64
	window      time.Duration
	first, last seqRef
	firstT      int64
	lastT       int64
	corrID      string
	related     []seqRef
	moreRelated int
	keys        []string
	message     string
}

// severityMask is the bits of severities at least as severe as s.
func severityMask(s string) uint8 {
	sev, ok := match.ParseSeverity(s)
	if !ok {
		return 0
	}
	var m uint8
	for v := event.Severity(0); v <= sev; v++ {
		m |= 1 << v
	}
	return m
}
