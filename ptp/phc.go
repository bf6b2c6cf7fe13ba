package ptp

import (
	"time"

	"github.com/weirgw/weir/event"
)

// phcView is what Now needs to turn a PTP hardware clock's time into UTC,
// replaced whole by the goroutine that learns it.
type phcView struct {
	dev *phcDevice // nil until the device is open
	// toUTC is subtracted from the PHC's time: the UTC offset when the
	// grandmaster's timescale is PTP (TAI), zero when it is arbitrary
	// (ptp4l then keeps the PHC at the grandmaster's time as it is).
	toUTC time.Duration
	// known: a TIME_PROPERTIES_DATA_SET answer has said which; until
	// then PHC time could be UTC or 37 s ahead of it.
	known bool
}

// phcUnknown is the quality of time that could not come from the PHC (not
// open, unreadable, or its timescale not learnt yet): CLOCK_REALTIME,
// claiming nothing.
var phcUnknown = event.Quality{Source: event.TimeSystem, State: event.ClockFreerun, ErrorBound: -1}

// phcNow reads the PHC and converts its time to UTC: one atomic load of
// the view, one clock_gettime on the device, one of the snapshot. The
// holdover arithmetic counts elapsed time on the monotonic clock (the
// PHC's time carries no monotonic reading), so it holds even if
// CLOCK_REALTIME is not following the PHC.
func (l *LinuxPTP) phcNow() (time.Time, event.Quality) {
	now := time.Now()
	v := l.phc.Load()
	if v == nil || v.dev == nil || !v.known {
		return now, phcUnknown
	}
	t, err := v.dev.read()
	if err != nil {
		return now, phcUnknown
	}
	state, bound := l.hold.At(l.p.Load().sync, now)
	return t.Add(-v.toUTC), event.Quality{Source: event.TimePTP, State: state, ErrorBound: bound}
}

// phcToUTC is what PHC time is off from UTC under the grandmaster's time
// properties, the way phc2sys takes it: TAI − UTC on the PTP timescale,
// nothing on an arbitrary one.
func phcToUTC(tp *TimePropertiesTLV) time.Duration {
	if !tp.PTPTimescale() {
		return 0
	}
	return time.Duration(tp.CurrentUTCOffset) * time.Second
}
