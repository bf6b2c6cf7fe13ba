// Package ptp owns the gateway's notion of time: a Clock that returns the
// current time together with a statement of how far it can be trusted.
//
// Only the system mode exists so far: CLOCK_REALTIME, free-running, with an
// unknown error bound. The linuxptp and built-in PTPv2 slave modes come with
// their own issue and keep this interface.
package ptp
