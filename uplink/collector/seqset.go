package collector

import "sort"

// seqSet is the dedupe state of one gateway: every sequence at or below
// floor counts as held, and above it the held sequences as sorted,
// disjoint, non-adjacent ranges. Batches spread over several collector
// sessions (uplink.mode balance) arrive out of order, so a single
// "highest" mark would wrongly drop the earlier batch that lands second.
type seqSet struct {
	Floor  uint64      `json:"floor"`
	Ranges [][2]uint64 `json:"ranges,omitempty"` // [lo, hi] inclusive, lo > Floor+1
}

// holds reports whether seq is held.
func (s *seqSet) holds(seq uint64) bool {
	if seq <= s.Floor {
		return true
	}
	i := sort.Search(len(s.Ranges), func(i int) bool { return s.Ranges[i][1] >= seq })
	return i < len(s.Ranges) && s.Ranges[i][0] <= seq
}

// add marks seq held.
func (s *seqSet) add(seq uint64) {
	if seq <= s.Floor {
		return
	}
	if seq == s.Floor+1 {
		s.Floor = seq
		s.merge()
		return
	}
	// Appending in order is the common case: check the last range first.
	if n := len(s.Ranges); n > 0 && s.Ranges[n-1][1]+1 == seq {
		s.Ranges[n-1][1] = seq
		return
	}
	i := sort.Search(len(s.Ranges), func(i int) bool { return s.Ranges[i][1]+1 >= seq })
	switch {
	case i < len(s.Ranges) && s.Ranges[i][0] <= seq && seq <= s.Ranges[i][1]:
		return
	case i < len(s.Ranges) && s.Ranges[i][1]+1 == seq:
		s.Ranges[i][1] = seq
		if i+1 < len(s.Ranges) && s.Ranges[i+1][0] == seq+1 {
			s.Ranges[i][1] = s.Ranges[i+1][1]
			s.Ranges = append(s.Ranges[:i+1], s.Ranges[i+2:]...)
		}
	case i < len(s.Ranges) && s.Ranges[i][0] == seq+1:
		s.Ranges[i][0] = seq
	default:
		s.Ranges = append(s.Ranges, [2]uint64{})
		copy(s.Ranges[i+1:], s.Ranges[i:])
		s.Ranges[i] = [2]uint64{seq, seq}
	}
}

// raise moves the floor up to f: the gateway says it will never send
// anything at or below it again.
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
