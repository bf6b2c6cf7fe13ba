// Package modbustest is an in-process Modbus slave for tests: it holds
// coils, discrete inputs, holding and input registers, answers RTU over any
// io.ReadWriter (a net.Pipe, a pty) and Modbus TCP on a listener, and can be
// told to misbehave (delay, drop, corrupt) through a hook. It is a fake for
// tests of this module and of interop with other masters (mbpoll,
// libmodbus), not a device implementation.
//
// It is test equipment (docs/ARCHITECTURE.md): a real peer for tests,
// never part of the firmware.
package modbustest
