package collector

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSeqSet(t *testing.T) {
	cases := []struct {
		name  string
		floor uint64
		add   []uint64
		want  seqSet
	}{
		{"in order", 0, []uint64{5, 6, 7}, seqSet{Ranges: [][2]uint64{{5, 7}}}},
		{"from floor", 4, []uint64{5, 6, 7}, seqSet{Floor: 7}},
		{"gap then fill", 4, []uint64{7, 8, 5, 6}, seqSet{Floor: 8}},
		{"two gaps", 0, []uint64{10, 20, 30, 21, 11, 29}, seqSet{Ranges: [][2]uint64{{10, 11}, {20, 21}, {29, 30}}}},
		{"join", 0, []uint64{10, 12, 11}, seqSet{Ranges: [][2]uint64{{10, 12}}}},
		{"below floor", 10, []uint64{3, 10}, seqSet{Floor: 10}},
		{"dup", 0, []uint64{3, 3, 3}, seqSet{Ranges: [][2]uint64{{3, 3}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := seqSet{}
			s.raise(c.floor)
			for _, q := range c.add {
				s.add(q, 0)
			}
			if len(s.Ranges) == 0 {
				s.Ranges = nil
			}
			require.Equal(t, c.want, s)
			for _, q := range c.add {
				require.True(t, s.holds(q))
			}
		})
	}
	s := seqSet{Ranges: [][2]uint64{{10, 11}, {20, 21}}}
	require.Equal(t, uint64(11), s.highest(), "no floor yet: the lowest range")
	require.False(t, s.holds(15))
	s.raise(19)
	require.Equal(t, uint64(21), s.highest(), "a floor below the second range swallows both")
}

// TestSeqSetRangeCap: past the cap the highest range is forgotten, never
// a hole folded into the floor.
func TestSeqSetRangeCap(t *testing.T) {
	s := seqSet{Floor: 10}
	for _, q := range []uint64{20, 30, 40} {
		require.False(t, s.add(q, 3))
	}
	require.True(t, s.add(50, 3), "a fourth range: itself the highest, not kept")
	require.Equal(t, [][2]uint64{{20, 20}, {30, 30}, {40, 40}}, s.Ranges)
	require.True(t, s.add(25, 3), "a fourth range below the highest: the highest goes")
	require.Equal(t, [][2]uint64{{20, 20}, {25, 25}, {30, 30}}, s.Ranges)
	require.False(t, s.add(21, 3), "extending a range is no new range")
	require.False(t, s.add(11, 3))
	require.Equal(t, uint64(11), s.Floor, "the floor moves only over what was received")
	require.False(t, s.holds(12))
}

// TestClaim: a declared floor counts as held only sequences the collector
// has seen; beyond that it is refused, reported once.
func TestClaim(t *testing.T) {
	cases := []struct {
		name    string
		set     seqSet
		floor   uint64
		verdict FloorVerdict
		highest uint64
		after   seqSet
	}{
		{"no state", seqSet{}, 4999, FloorNew, 4999, seqSet{}},
		{"at the floor", seqSet{Floor: 100}, 100, FloorKept, 100, seqSet{Floor: 100}},
		{"below the floor", seqSet{Floor: 100}, 40, FloorKept, 100, seqSet{Floor: 100}},
		{"below, ranges above", seqSet{Floor: 100, Ranges: [][2]uint64{{200, 300}}}, 100, FloorKept, 100,
			seqSet{Floor: 100, Ranges: [][2]uint64{{200, 300}}}},
		{"inside a range", seqSet{Floor: 100, Ranges: [][2]uint64{{200, 300}}}, 250, FloorOverHole, 300,
			seqSet{Floor: 100, Ranges: [][2]uint64{{200, 300}}, Reported: 250}},
		{"the attack: 2^64-2", seqSet{Floor: 1042}, 1<<64 - 2, FloorBeyond, 1<<64 - 2, seqSet{Floor: 1042, Reported: 1<<64 - 2}},
		{"already reported", seqSet{Floor: 1042, Reported: 5000}, 5000, FloorReported, 5000, seqSet{Floor: 1042, Reported: 5000}},
		{"higher than reported", seqSet{Floor: 1042, Reported: 5000}, 5001, FloorBeyond, 5001, seqSet{Floor: 1042, Reported: 5001}},
		{"no floor yet, up to the first range", seqSet{Ranges: [][2]uint64{{5000, 6000}}}, 4999, FloorRaised, 6000, seqSet{Floor: 6000}},
		{"no floor yet, into the first range", seqSet{Ranges: [][2]uint64{{5000, 6000}}}, 5500, FloorRaised, 6000, seqSet{Floor: 6000}},
		{"no floor yet, over a hole", seqSet{Ranges: [][2]uint64{{5000, 6000}, {7000, 8000}}}, 7500, FloorOverHole, 8000,
			seqSet{Ranges: [][2]uint64{{5000, 6000}, {7000, 8000}}, Reported: 7500}},
		{"no floor yet, beyond", seqSet{Ranges: [][2]uint64{{5000, 6000}}}, 9000, FloorBeyond, 9000,
			seqSet{Ranges: [][2]uint64{{5000, 6000}}, Reported: 9000}},
		{"max", seqSet{Floor: 7}, 1<<64 - 1, FloorBeyond, 1<<64 - 1, seqSet{Floor: 7, Reported: 1<<64 - 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.set
			r := s.claim(c.floor)
			require.Equal(t, c.verdict, r.Verdict)
			require.Equal(t, c.highest, r.Highest)
			if len(s.Ranges) == 0 {
				s.Ranges = nil
			}
			require.Equal(t, c.after, s)
		})
	}
}

func TestSeqSetCheck(t *testing.T) {
	require.NoError(t, (&seqSet{Floor: 3, Ranges: [][2]uint64{{5, 6}, {8, 8}}}).check())
	for _, bad := range []seqSet{
		{Floor: 3, Ranges: [][2]uint64{{4, 6}}},
		{Ranges: [][2]uint64{{6, 5}}},
		{Ranges: [][2]uint64{{5, 6}, {7, 9}}},
		{Ranges: [][2]uint64{{5, 9}, {3, 4}}},
		{Floor: 1<<64 - 1, Ranges: [][2]uint64{{1, 1}}},
	} {
		require.Error(t, bad.check(), "%+v", bad)
	}
}
