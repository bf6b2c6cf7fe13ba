package fleet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// Two tiers of buckets per series: 10 s for a day and 5 min for a week.
// Each bucket is one float32; a series is a fixed block of the gateway's
// file, so a gateway's file never grows past seriesFileMax.
var tiers = [2]struct {
	width time.Duration
	slots int64
}{{10 * time.Second, 8640}, {5 * time.Minute, 2016}}

const (
	// MaxSeries is the most series one gateway keeps (links, buses, kinds
	// of record included); past it new series are dropped and counted.
	MaxSeries = 32
	// MaxSeriesName is the longest series name kept; longer ones are cut.
	MaxSeriesName = 62

	seriesMagic  = "WEIRTS01"
	headerSize   = 4096
	nameTableOff = 192
	nameEntry    = 64
	blockHead    = 16 // the newest bucket of each tier, int64 each
	blockSize    = 45056
	// seriesFileMax is the size bound of one gateway's series file.
	seriesFileMax = headerSize + MaxSeries*blockSize
)

func init() {
	// The block must hold both tiers; checked once rather than trusted.
	if blockHead+4*(tiers[0].slots+tiers[1].slots) > blockSize {
		panic("fleet: series block too small for its tiers")
	}
}

// Agg says how the samples falling into one bucket combine.
type Agg uint8

const (
	// AggExtreme keeps the sample of largest magnitude (the worst RTT,
	// loss, backlog or offset of the bucket).
	AggExtreme Agg = iota
	// AggSum adds samples up: counts of records, shown as a rate.
	AggSum
)

// An empty slot is zero on disk: values are stored XORed with NaN's
// bits, so a new (sparse) file reads as empty everywhere.
const emptyBits = 0x7fc00000

func encodeSlot(v float32) uint32 { return math.Float32bits(v) ^ emptyBits }
func decodeSlot(u uint32) float32 { return math.Float32frombits(u ^ emptyBits) }

func merge(agg Agg, old, v float32) float32 {
	switch {
	case isNaN(old):
		return v
	case isNaN(v):
		return old
	case agg == AggSum:
		return old + v
	case math.Abs(float64(v)) > math.Abs(float64(old)):
		return v
	}
	return old
}

func isNaN(v float32) bool { return v != v }

// openBucket is the bucket of a tier being filled: samples merge here and
// reach the file when the next bucket starts (or at a flush), so a steady
// stream costs one write per bucket, not one per sample.
type openBucket struct {
	b   int64
	v   float32 // what was added since the bucket was last written (NaN: nothing)
	set bool
}

// seriesSet is the series of one gateway: their names, and the file that
// holds their buckets (opened per use, so a thousand gateways hold no
// thousand descriptors).
type seriesSet struct {
	path  string
	id    string
	names []string
	aggs  []Agg
	index map[string]int
	heads [][2]int64 // the newest bucket written to the file, per tier (0: none)
	open  [][2]openBucket

	f       *os.File
	dropped uint64 // samples of series past MaxSeries
	err     error  // the last file error, reported once per flush
}

func newSeriesSet(path, id string) *seriesSet {
	return &seriesSet{path: path, id: id, index: map[string]int{}}
}

// load reads the names and heads of an existing file. A file that is not
// ours, or not for this gateway, is emptied: it is a cache of the sink.
func (s *seriesSet) load() error {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fleet: series %s: %w", s.path, err)
	}
	defer f.Close()
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return fmt.Errorf("fleet: series %s: header: %w", s.path, err)
	}
	if err := s.parseHeader(hdr); err != nil {
		return fmt.Errorf("fleet: series %s: %w", s.path, err)
	}
	var hb [blockHead]byte
	for i := range s.names {
		if _, err := f.ReadAt(hb[:], headerSize+int64(i)*blockSize); err != nil {
			return fmt.Errorf("fleet: series %s: %q: %w", s.path, s.names[i], err)
		}
		for t := range tiers {
			h := int64(binary.LittleEndian.Uint64(hb[8*t:]))
			if h < 0 {
				return fmt.Errorf("fleet: series %s: %q: negative head %d", s.path, s.names[i], h)
			}
			s.heads[i][t] = h
		}
	}
	return nil
}

func (s *seriesSet) parseHeader(hdr []byte) error {
	if string(hdr[:8]) != seriesMagic {
		return errors.New("not a series file")
	}
	for t := range tiers {
		w := binary.LittleEndian.Uint32(hdr[8+8*t:])
		n := binary.LittleEndian.Uint32(hdr[12+8*t:])
		if time.Duration(w)*time.Second != tiers[t].width || int64(n) != tiers[t].slots {
			return fmt.Errorf("tier %d is %ds x %d, want %s x %d", t, w, n, tiers[t].width, tiers[t].slots)
		}
	}
	idLen := int(binary.LittleEndian.Uint16(hdr[24:]))
	if idLen > MaxIDLen || string(hdr[26:26+idLen]) != s.id {
		return errors.New("written for another gateway")
	}
	n := int(binary.LittleEndian.Uint16(hdr[160:]))
	if n > MaxSeries {
		return fmt.Errorf("%d series, at most %d", n, MaxSeries)
	}
	for i := range n {
		e := hdr[nameTableOff+i*nameEntry : nameTableOff+(i+1)*nameEntry]
		l := int(e[0])
		if l == 0 || l > MaxSeriesName || Agg(e[nameEntry-1]) > AggSum {
			return fmt.Errorf("series %d: bad name entry", i)
		}
		name := string(e[1 : 1+l])
		if _, dup := s.index[name]; dup {
			return fmt.Errorf("series %q twice", name)
		}
		s.add(name, Agg(e[nameEntry-1]))
	}
	return nil
}

func (s *seriesSet) header() []byte {
	hdr := make([]byte, headerSize)
	copy(hdr, seriesMagic)
	for t := range tiers {
		binary.LittleEndian.PutUint32(hdr[8+8*t:], uint32(tiers[t].width/time.Second))
		binary.LittleEndian.PutUint32(hdr[12+8*t:], uint32(tiers[t].slots))
	}
	binary.LittleEndian.PutUint16(hdr[24:], uint16(len(s.id)))
	copy(hdr[26:], s.id)
	binary.LittleEndian.PutUint16(hdr[160:], uint16(len(s.names)))
	for i, n := range s.names {
		e := hdr[nameTableOff+i*nameEntry : nameTableOff+(i+1)*nameEntry]
		e[0] = byte(len(n))
		copy(e[1:], n)
		e[nameEntry-1] = byte(s.aggs[i])
	}
	return hdr
}

func (s *seriesSet) add(name string, agg Agg) int {
	i := len(s.names)
	s.names = append(s.names, name)
	s.aggs = append(s.aggs, agg)
	s.index[name] = i
	s.heads = append(s.heads, [2]int64{})
	s.open = append(s.open, [2]openBucket{})
	return i
}

// file opens the series file for the current operation (closed by
// release).
func (s *seriesSet) file() (*os.File, error) {
	if s.f != nil {
		return s.f, nil
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	s.f = f
	return f, nil
}

func (s *seriesSet) release() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// sample adds v at time t to series name, creating it (up to MaxSeries).
func (s *seriesSet) sample(name string, agg Agg, t time.Time, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if len(name) > MaxSeriesName {
		name = name[:MaxSeriesName]
	}
	i, ok := s.index[name]
	if !ok {
		if len(s.names) >= MaxSeries {
			s.dropped++
			return
		}
		i = s.add(name, agg)
		s.keep(s.writeHeader())
	}
	for ti := range tiers {
		b := t.UnixNano() / int64(tiers[ti].width)
		o := &s.open[i][ti]
		if o.set && o.b == b {
			o.v = merge(s.aggs[i], o.v, float32(v))
			continue
		}
		if o.set && !isNaN(o.v) {
			s.keep(s.write(i, ti, o.b, o.v))
		}
		*o = openBucket{b: b, v: float32(v), set: true}
	}
}

func (s *seriesSet) keep(err error) {
	if err != nil && s.err == nil {
		s.err = err
	}
}

func (s *seriesSet) writeHeader() error {
	f, err := s.file()
	if err != nil {
		return err
	}
	_, err = f.WriteAt(s.header(), 0)
	return err
}

func slotOff(i, ti int, b int64) int64 {
	off := int64(headerSize) + int64(i)*blockSize + blockHead
	if ti == 1 {
		off += 4 * tiers[0].slots
	}
	return off + 4*(b%tiers[ti].slots)
}

// write merges v into bucket b of series i, tier ti: a bucket newer than
// the tier's head moves the head, emptying the slots it passes over; one
// within the ring is merged with what it holds; an older one is gone.
func (s *seriesSet) write(i, ti int, b int64, v float32) error {
	n := tiers[ti].slots
	head := s.heads[i][ti]
	if b <= head-n || b <= 0 {
		return nil
	}
	f, err := s.file()
	if err != nil {
		return err
	}
	var buf [4]byte
	if b > head {
		// A new series' block is still a hole of zeros: empty already.
		if head > 0 {
			if err := s.clear(f, i, ti, head+1, min(b-1, head+n)); err != nil {
				return err
			}
		}
		binary.LittleEndian.PutUint32(buf[:], encodeSlot(v))
		if _, err := f.WriteAt(buf[:], slotOff(i, ti, b)); err != nil {
			return err
		}
		var hb [8]byte
		binary.LittleEndian.PutUint64(hb[:], uint64(b))
		if _, err := f.WriteAt(hb[:], int64(headerSize)+int64(i)*blockSize+8*int64(ti)); err != nil {
			return err
		}
		s.heads[i][ti] = b
		return nil
	}
	if _, err := f.ReadAt(buf[:], slotOff(i, ti, b)); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	binary.LittleEndian.PutUint32(buf[:], encodeSlot(merge(s.aggs[i], decodeSlot(binary.LittleEndian.Uint32(buf[:])), v)))
	_, err = f.WriteAt(buf[:], slotOff(i, ti, b))
	return err
}

// clear empties buckets from..to of a tier (at most one ring's worth).
func (s *seriesSet) clear(f *os.File, i, ti int, from, to int64) error {
	if to < from {
		return nil
	}
	n := tiers[ti].slots
	if to-from+1 > n {
		from = to - n + 1
	}
	zero := make([]byte, 4*(to-from+1))
	// The ring may wrap: write up to its end, then from its start.
	first := min(to, from+(n-from%n)-1)
	k := 4 * (first - from + 1)
	if _, err := f.WriteAt(zero[:k], slotOff(i, ti, from)); err != nil {
		return err
	}
	if first < to {
		if _, err := f.WriteAt(zero[k:], slotOff(i, ti, first+1)); err != nil {
			return err
		}
	}
	return nil
}

// flush writes every open bucket; they stay open for later samples.
func (s *seriesSet) flush() error {
	for i := range s.open {
		for ti := range tiers {
			o := &s.open[i][ti]
			if o.set && !isNaN(o.v) {
				s.keep(s.write(i, ti, o.b, o.v))
				o.v = float32(math.NaN())
			}
		}
	}
	err := s.err
	s.err = nil
	return err
}

// Points is one series over a window: values per bucket from Start, one
// every Step; NaN where there is nothing.
type Points struct {
	Name   string
	Agg    Agg
	Start  time.Time
	Step   time.Duration
	Values []float64
}

// read returns series i over the last n buckets of tier ti ending at
// bucket end, with what is open merged in.
func (s *seriesSet) read(i, ti int, end, n int64) (Points, error) {
	w := tiers[ti].width
	p := Points{Name: s.names[i], Agg: s.aggs[i], Start: time.Unix(0, (end-n+1)*int64(w)), Step: w, Values: make([]float64, n)}
	ring := tiers[ti].slots
	raw := make([]byte, 4*ring)
	f, err := s.file()
	if err != nil {
		return p, err
	}
	if _, err := f.ReadAt(raw, slotOff(i, ti, 0)); err != nil && !errors.Is(err, io.EOF) {
		return p, err
	}
	head := s.heads[i][ti]
	o := s.open[i][ti]
	for k := range n {
		b := end - n + 1 + k
		v := float32(math.NaN())
		if b > head-ring && b <= head && b > 0 {
			v = decodeSlot(binary.LittleEndian.Uint32(raw[4*(b%ring):]))
		}
		if o.set && o.b == b {
			v = merge(s.aggs[i], v, o.v)
		}
		p.Values[k] = float64(v)
	}
	return p, nil
}
