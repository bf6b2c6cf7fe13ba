package collector

import (
	"fmt"
	"sort"
)

// seqSet is the dedupe state of one gateway: every sequence at or below
// floor counts as held, and above it the held sequences as sorted,
// disjoint, non-adjacent ranges. Batches spread over several collector
// sessions (uplink.mode balance) arrive out of order, so a single
// "highest" mark would wrongly drop the earlier batch that lands second.
type seqSet struct {
	Floor  uint64      `json:"floor"`
	Ranges [][2]uint64 `json:"ranges,omitempty"` // [lo, hi] inclusive, lo > Floor+1
	// Reported is the highest declared floor refused and reported so far:
	// a gateway that lost records keeps declaring the same floor at every
	// reconnect, and one critical record says it.
	Reported uint64 `json:"reported,omitempty"`
}

// holds reports whether seq is held.
func (s *seqSet) holds(seq uint64) bool {
	if seq <= s.Floor {
		return true
	}
	i := sort.Search(len(s.Ranges), func(i int) bool { return s.Ranges[i][1] >= seq })
	return i < len(s.Ranges) && s.Ranges[i][0] <= seq
}

// add marks seq held. With maxRanges > 0 the ranges are capped: when a new
// range would pass the cap, the highest range is forgotten, and add reports
// it. Forgetting a held range can only make a resent record be written
// again; folding a hole into the floor instead would drop records that
// never arrived.
func (s *seqSet) add(seq uint64, maxRanges int) (forgot bool) {
	if seq <= s.Floor {
		return false
	}
	if seq == s.Floor+1 {
		s.Floor = seq
		s.merge()
		return false
	}
	// Appending in order is the common case: check the last range first.
	if n := len(s.Ranges); n > 0 && s.Ranges[n-1][1]+1 == seq {
		s.Ranges[n-1][1] = seq
		return false
	}
	i := sort.Search(len(s.Ranges), func(i int) bool { return s.Ranges[i][1]+1 >= seq })
	switch {
	case i < len(s.Ranges) && s.Ranges[i][0] <= seq && seq <= s.Ranges[i][1]:
		return false
	case i < len(s.Ranges) && s.Ranges[i][1]+1 == seq:
		s.Ranges[i][1] = seq
		if i+1 < len(s.Ranges) && s.Ranges[i+1][0] == seq+1 {
			s.Ranges[i][1] = s.Ranges[i+1][1]
			s.Ranges = append(s.Ranges[:i+1], s.Ranges[i+2:]...)
		}
		return false
	case i < len(s.Ranges) && s.Ranges[i][0] == seq+1:
		s.Ranges[i][0] = seq
		return false
	}
	if maxRanges > 0 && len(s.Ranges) >= maxRanges {
		if i == len(s.Ranges) {
			return true // seq would be the highest range: it is the one forgotten
		}
		s.Ranges = s.Ranges[:len(s.Ranges)-1]
		forgot = true
	}
	s.Ranges = append(s.Ranges, [2]uint64{})
	copy(s.Ranges[i+1:], s.Ranges[i:])
	s.Ranges[i] = [2]uint64{seq, seq}
	return forgot
}

// raise moves the floor up to f: every sequence at or below it counts as
// held.
func (s *seqSet) raise(f uint64) {
	if f <= s.Floor {
		return
	}
	s.Floor = f
	i := 0
	for i < len(s.Ranges) && s.Ranges[i][1] <= f {
		i++
	}
	s.Ranges = s.Ranges[i:]
	s.merge()
}

// merge folds a range that touches the floor into it.
func (s *seqSet) merge() {
	for len(s.Ranges) > 0 && s.Ranges[0][0] <= s.Floor+1 {
		s.Floor = max(s.Floor, s.Ranges[0][1])
		s.Ranges = s.Ranges[1:]
	}
}

// highest is the resume mark: the floor, or, when no floor was ever set
// (state recovered from the sink alone, before the gateway's first Hello),
// the end of the lowest range.
func (s *seqSet) highest() uint64 {
	if s.Floor == 0 && len(s.Ranges) > 0 {
		return s.Ranges[0][1]
	}
	return s.Floor
}

// top is the highest sequence held (0: none).
func (s *seqSet) top() uint64 {
	if n := len(s.Ranges); n > 0 {
		return s.Ranges[n-1][1]
	}
	return s.Floor
}

func (s *seqSet) empty() bool { return s.Floor == 0 && len(s.Ranges) == 0 }

// mark is what Welcome answers a Hello with floor f: the highest h with
// every sequence in (f, h] held (f itself when f+1 is not).
func (s *seqSet) mark(f uint64) uint64 {
	if f < s.Floor {
		return s.Floor // ranges never touch the floor
	}
	if f == ^uint64(0) {
		return f
	}
	i := sort.Search(len(s.Ranges), func(i int) bool { return s.Ranges[i][1] >= f+1 })
	if i < len(s.Ranges) && s.Ranges[i][0] <= f+1 {
		return s.Ranges[i][1]
	}
	return f
}

// gap returns the lowest sequence in (base, f] that is not held, where
// base is the floor, or just below the lowest range when no floor was ever
// set (what came before a gateway's first record here was never the
// collector's to hold).
func (s *seqSet) gap(f uint64) (uint64, bool) {
	base := s.Floor
	if base == 0 && len(s.Ranges) > 0 {
		base = s.Ranges[0][0] - 1
	}
	if f <= base {
		return 0, false
	}
	next := base + 1
	for _, r := range s.Ranges {
		if r[0] > f || next > f {
			break
		}
		if r[0] > next {
			return next, true
		}
		next = max(next, r[1]+1)
	}
	if next <= f {
		return next, true
	}
	return 0, false
}

// FloorVerdict says what became of the floor a gateway declared.
type FloorVerdict int

const (
	FloorKept     FloorVerdict = iota // at or below the floor in force: nothing to do
	FloorRaised                       // applied: it covered only sequences held
	FloorNew                          // the first Hello of a gateway with no state: not applied, nothing to check it against
	FloorBeyond                       // above the highest sequence held: refused
	FloorOverHole                     // would count as held sequences that never arrived: refused
	FloorReported                     // refused, as the same or a higher floor was before
)

func (v FloorVerdict) String() string {
	switch v {
	case FloorKept:
		return "kept"
	case FloorRaised:
		return "raised"
	case FloorNew:
		return "new"
	case FloorBeyond:
		return "beyond_held"
	case FloorOverHole:
		return "over_hole"
	case FloorReported:
		return "reported"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Refused reports whether the floor was refused.
func (v FloorVerdict) Refused() bool {
	return v == FloorBeyond || v == FloorOverHole || v == FloorReported
}

// Report reports whether the refusal is new: a critical record says it.
func (v FloorVerdict) Report() bool { return v == FloorBeyond || v == FloorOverHole }

// Resumed is a sink's answer to a Hello's floor.
type Resumed struct {
	Highest uint64 // for Welcome
	Verdict FloorVerdict
	Held    uint64 // the highest sequence held from the gateway
	Hole    uint64 // FloorOverHole: the lowest sequence the floor would have swallowed
}

// claim takes a gateway's declared floor f. A floor is the gateway's word
// that it will never send anything at or below it; counting a sequence
// held on that word alone lets whoever holds the gateway's key make the
// collector ack without writing the gateway's real records. So the floor
// is applied only where the collector has seen every sequence below it:
// in steady state the floor in force is the run of sequences held from the
// start, which no real gateway's floor passes (it acks only what the
// collector held). Beyond that it is refused and the caller raises a
// critical record: a jump is either records lost at the gateway (evicted
// from a full spool before they could be sent) or someone else using its
// key.
func (s *seqSet) claim(f uint64) Resumed {
	r := Resumed{Held: s.top()}
	switch {
	case f <= s.Floor:
		r.Verdict = FloorKept
	case s.empty():
		r.Verdict = FloorNew
	case f > r.Held:
		r.Verdict = FloorBeyond
	default:
		if hole, ok := s.gap(f); ok {
			r.Verdict, r.Hole = FloorOverHole, hole
		} else {
			s.raise(f)
			r.Verdict = FloorRaised
		}
	}
	if r.Verdict.Refused() {
		if f <= s.Reported {
			r.Verdict = FloorReported
		} else {
			s.Reported = f
		}
	}
	r.Highest = s.mark(f)
	return r
}

// check verifies the invariants of a set read from a state file, which is
// a hint: a set that breaks them is not trusted.
func (s *seqSet) check() error {
	prev := s.Floor
	for i, r := range s.Ranges {
		switch {
		case r[0] > r[1]:
			return fmt.Errorf("range %d [%d, %d] is reversed", i, r[0], r[1])
		case prev == ^uint64(0) || r[0] <= prev+1:
			return fmt.Errorf("range %d [%d, %d] touches or overlaps what comes before it (%d)", i, r[0], r[1], prev)
		}
		prev = r[1]
	}
	return nil
}
