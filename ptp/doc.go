// Package ptp owns the gateway's notion of time: a Clock that returns the
// current time together with a statement of how far it can be trusted
// (source, locked/holdover/freerun state, error bound), and a Status with
// what is known of the grandmaster, offset and path delay for diagnosis.
//
// Now sits on every record's path: a clock read plus one atomic load of an
// immutable snapshot that a background goroutine replaces whole.
//
// The system mode is CLOCK_REALTIME, free-running, with an unknown error
// bound.
package ptp
