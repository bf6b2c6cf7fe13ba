// Package ptp owns the gateway's notion of time: a Clock that returns the
// current time together with a statement of how far it can be trusted
// (source, locked/holdover/freerun state, error bound), and a Status with
// what is known of the grandmaster, offset and path delay for diagnosis.
//
// Now sits on every record's path: a clock read plus one atomic load of an
// immutable snapshot that a background goroutine replaces whole.
//
// Holdover is a pure state machine (HoldoverConfig.Step, .At): locked while
// samples are synced and within the offset threshold; holdover on loss of
// the master or a large offset, with an error bound growing from the last
// locked one by elapsed time × the frequency uncertainty; freerun after the
// holdover limit. Now evaluates the bound at the instant it reads the clock.
//
// Modes: system is CLOCK_REALTIME, free-running, with an unknown error
// bound. linuxptp is CLOCK_REALTIME as ptp4l (or phc2sys) disciplines it,
// its quality polled from ptp4l's management socket with facebook/time's
// ptp/protocol (TIME_STATUS_NP, CURRENT_DATA_SET, PARENT_DATA_SET, and
// PORT_DATA_SET and TIME_PROPERTIES_DATA_SET decoded here); or, with
// clock.linuxptp.phc, the PTP hardware clock ptp4l disciplines, read
// directly and made UTC with the offset TIME_PROPERTIES_DATA_SET gives
// (until it is known, time is CLOCK_REALTIME claiming nothing). builtin
// is Weir's own PTPv2 end-to-end slave over UDP (slave.go, bmca.go,
// unicast.go), steering a software clock (softclock.go) with
// facebook/time's PI servo, or CLOCK_REALTIME when adjust_system_clock
// says so.
//
// Where time sits in the life of a record: docs/ARCHITECTURE.md, "Time".
package ptp
