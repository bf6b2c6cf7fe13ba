package modbus

import (
	"errors"
	"sync/atomic"
)

// Stats is a snapshot of a master's counters since it was made. Requests
// counts attempts put on the line (so retries are in it too); every attempt
// ends in exactly one of Responses, Timeouts, a frame error counter or a
// transport error (Requests minus all of those).
type Stats struct {
	Requests       uint64 // attempts sent
	Responses      uint64 // well-formed answers, exceptions included
	Exceptions     uint64 // exception responses
	Timeouts       uint64 // no byte of an answer within the timeout
	Retries        uint64 // attempts after the first
	CRCErrors      uint64
	ShortFrames    uint64
	OverlongFrames uint64
	WrongUnit      uint64
	WrongFunction  uint64
	OtherFrame     uint64 // bad length, echo mismatch, bad MBAP header, unknown transaction id
	Reconnects     uint64 // TCP: connections dialled after the first
}

// FrameErrors returns the sum of all frame error counters: what an EMI
// frame-error rate is computed from.
func (s Stats) FrameErrors() uint64 {
	return s.CRCErrors + s.ShortFrames + s.OverlongFrames + s.WrongUnit + s.WrongFunction + s.OtherFrame
}

type counters struct {
	requests, responses, exceptions, timeouts, retries    atomic.Uint64
	crc, short, overlong, wrongUnit, wrongFunction, other atomic.Uint64
	reconnects                                            atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Requests: c.requests.Load(), Responses: c.responses.Load(), Exceptions: c.exceptions.Load(),
		Timeouts: c.timeouts.Load(), Retries: c.retries.Load(), CRCErrors: c.crc.Load(),
		ShortFrames: c.short.Load(), OverlongFrames: c.overlong.Load(), WrongUnit: c.wrongUnit.Load(),
		WrongFunction: c.wrongFunction.Load(), OtherFrame: c.other.Load(), Reconnects: c.reconnects.Load(),
	}
}

// count classifies the outcome of one attempt.
func (c *counters) count(err error) {
	if err == nil {
		c.responses.Add(1)
		return
	}
	var ex *ExceptionError
	if errors.As(err, &ex) {
		c.responses.Add(1)
		c.exceptions.Add(1)
		return
	}
	if errors.Is(err, ErrTimeout) {
		c.timeouts.Add(1)
		return
	}
	var fe *FrameError
	if errors.As(err, &fe) {
		c.countFrame(fe.Kind)
	}
}

func (c *counters) countFrame(k FrameErrorKind) {
	switch k {
	case FrameCRC:
		c.crc.Add(1)
	case FrameShort:
		c.short.Add(1)
	case FrameOverlong:
		c.overlong.Add(1)
	case FrameWrongUnit:
		c.wrongUnit.Add(1)
	case FrameWrongFunction:
		c.wrongFunction.Add(1)
	default:
		c.other.Add(1)
	}
}
