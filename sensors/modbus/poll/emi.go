package poll

import (
	"context"
	"errors"
	"time"

	"github.com/weirgw/weir/sensors/modbus"
)

// Counters is the EMI accounting of a bus or a device. Attempts counts
// requests put on the line, retries included; each ends in a response
// (exceptions included), a timeout, a frame error of one kind or a
// transport error.
type Counters struct {
	Polls           uint64 `json:"polls"`
	PollsFailed     uint64 `json:"polls_failed"`
	Attempts        uint64 `json:"attempts"`
	Responses       uint64 `json:"responses"`
	Retries         uint64 `json:"retries"`
	Timeouts        uint64 `json:"timeouts"`
	Exceptions      uint64 `json:"exceptions"`
	CRCErrors       uint64 `json:"crc_errors"`
	ShortFrames     uint64 `json:"short_frames"`
	OverlongFrames  uint64 `json:"overlong_frames"`
	OtherFrames     uint64 `json:"other_frame_errors"` // wrong unit or function, bad length, ...
	TransportErrors uint64 `json:"transport_errors"`
}

// FrameErrors is the sum of the frame error counters.
func (c Counters) FrameErrors() uint64 {
	return c.CRCErrors + c.ShortFrames + c.OverlongFrames + c.OtherFrames
}

// outcome classifies one attempt's error (nil: a good answer).
type outcome int

const (
	outOK outcome = iota
	outException
	outTimeout
	outFrame
	outTransport
	outCancelled
)

func classify(ctx context.Context, err error) (outcome, *modbus.FrameError) {
	var fe *modbus.FrameError
	var ex *modbus.ExceptionError
	switch {
	case err == nil:
		return outOK, nil
	case errors.As(err, &fe):
		return outFrame, fe
	case errors.As(err, &ex):
		return outException, nil
	case errors.Is(err, modbus.ErrTimeout):
		return outTimeout, nil
	case ctx.Err() != nil:
		return outCancelled, nil
	}
	return outTransport, nil
}

func (c *Counters) count(o outcome, fe *modbus.FrameError) {
	if o == outCancelled {
		return
	}
	c.Attempts++
	switch o {
	case outOK:
		c.Responses++
	case outException:
		c.Responses++
		c.Exceptions++
	case outTimeout:
		c.Timeouts++
	case outTransport:
		c.TransportErrors++
	case outFrame:
		switch fe.Kind {
		case modbus.FrameCRC:
			c.CRCErrors++
		case modbus.FrameShort:
			c.ShortFrames++
		case modbus.FrameOverlong:
			c.OverlongFrames++
		default:
			c.OtherFrames++
		}
	}
}

// rateWindow keeps attempts and frame errors in 10 s buckets for 15
// minutes, for frame-error rates over the last 1 and 15 minutes.
type rateWindow struct {
	buckets [90]struct {
		slot             int64 // unix time / 10 s
		attempts, errors uint64
	}
}

const bucketSecs = 10

func (w *rateWindow) add(now time.Time, attempts, errs uint64) {
	s := now.Unix() / bucketSecs
	b := &w.buckets[s%int64(len(w.buckets))]
	if b.slot != s {
		b.slot, b.attempts, b.errors = s, 0, 0
	}
	b.attempts += attempts
	b.errors += errs
}

// rate returns frame errors per attempt over the last d (a multiple of
// 10 s, at most 15 minutes); 0 with no attempts.
func (w *rateWindow) rate(now time.Time, d time.Duration) float64 {
	s := now.Unix() / bucketSecs
	n := int64(d / (bucketSecs * time.Second))
	var a, e uint64
	for _, b := range w.buckets {
		if b.slot > s-n && b.slot <= s {
			a += b.attempts
			e += b.errors
		}
	}
	if a == 0 {
		return 0
	}
	return float64(e) / float64(a)
}

// limiter is a token bucket of perMinute tokens refilled continuously.
type limiter struct {
	perMinute  int
	tokens     float64
	last       time.Time
	suppressed uint64 // since the last record let through
	total      uint64 // suppressed ever
}

func (l *limiter) allow(now time.Time) bool {
	if l.last.IsZero() {
		l.tokens = float64(l.perMinute)
	} else {
		l.tokens = min(float64(l.perMinute), l.tokens+now.Sub(l.last).Minutes()*float64(l.perMinute))
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true
	}
	l.suppressed++
	l.total++
	return false
}
