// Package ptp4ltest runs linuxptp's ptp4l in a linklab namespace, for
// integration tests of the ptp package and of the gateway's clock: a
// grandmaster on one side of the lab link and a slave on the other, both
// on software time stamps (-S), E2E delay measurement over UDPv4, each
// with its own configuration file and management socket in a temporary
// directory. Only _test files import it.
//
// Both namespaces share the host's one CLOCK_REALTIME, so the slave is
// configured never to step it (first_step_threshold and step_threshold
// 0), and since its PI servo still steers the clock's frequency,
// StartSlave saves the kernel's clock adjustments (frequency, status,
// error estimates) and puts them back when the test ends; a file lock
// lets one such slave at a time run on the host, whichever process
// starts it. The offsets the slave measures are then only link and
// time stamping noise and asymmetry: both ends read the same clock.
//
// The slave's "master offset" lines are parsed into Samples, so a test
// can judge how well ptp4l itself does on the link it shares with the
// code under test.
//
// It is test equipment (docs/ARCHITECTURE.md): a real peer for tests,
// never part of the firmware.
package ptp4ltest
