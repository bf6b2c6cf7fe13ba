package line

import "sync/atomic"

// Stats counts a sensor's lines since it was made. Every record is counted
// once in Lines and once under its verdict (OK, None, Mismatches, Missing
// or Malformed); Overlong counts the pieces of split lines (all malformed)
// and Partial the lines cut by a shutdown or a reopen.
type Stats struct {
	Lines      uint64
	OK         uint64
	None       uint64
	Mismatches uint64
	Missing    uint64
	Malformed  uint64
	Overlong   uint64
	Partial    uint64
	// Bytes read from the port; Open says whether it is open now.
	Bytes uint64
	Open  bool
	// Reopens counts successful opens after the first, OpenErrors failed
	// ones, EmitErrors failed emit calls.
	Reopens    uint64
	OpenErrors uint64
	EmitErrors uint64
	// LastLine is when the newest line arrived, ns since the epoch; 0 if
	// none has.
	LastLine int64
}

// counters are updated by Run and read by Stats from any goroutine.
type counters struct {
	lines, ok, none, mismatches, missing, malformed, overlong, partial atomic.Uint64
	bytes, reopens, openErrors, emitErrors                             atomic.Uint64
	lastLine                                                           atomic.Int64
	open                                                               atomic.Bool
}

// bytesSince reports whether bytes were read since the count was mark.
func (c *counters) bytesSince(mark uint64) bool { return c.bytes.Load() != mark }

func (c *counters) verdict(v Verdict) {
	c.lines.Add(1)
	switch v {
	case VerdictOK:
		c.ok.Add(1)
	case VerdictNone:
		c.none.Add(1)
	case VerdictMismatch:
		c.mismatches.Add(1)
	case VerdictMissing:
		c.missing.Add(1)
	default:
		c.malformed.Add(1)
	}
}

func (c *counters) snapshot() Stats {
	return Stats{
		Lines: c.lines.Load(), OK: c.ok.Load(), None: c.none.Load(), Mismatches: c.mismatches.Load(),
		Missing: c.missing.Load(), Malformed: c.malformed.Load(), Overlong: c.overlong.Load(),
		Partial: c.partial.Load(), Bytes: c.bytes.Load(), Open: c.open.Load(), Reopens: c.reopens.Load(),
		OpenErrors: c.openErrors.Load(), EmitErrors: c.emitErrors.Load(), LastLine: c.lastLine.Load(),
	}
}
