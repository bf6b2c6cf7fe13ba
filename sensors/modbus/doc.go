// Package modbus is a Modbus master for RTU (serial) and TCP (MBAP) with the
// checks a gateway on a noisy RS-485 bus needs: CRC-16/MODBUS on every RTU
// frame, the response length derived from the request, the unit id and
// function echoed back, and exception responses reported as typed errors
// with their names.
//
// A [Master] is built over one transport ([NewRTU] for a serial line,
// [NewTCP] for a TCP connection) and offers one method per function code
// (1, 2, 3, 4, 5, 6, 15, 16, 23) plus [Master.Do], which takes a [Request]
// and fills a caller-owned [Response]. The response carries the time the
// request was sent and the time its last byte was received, so a record can
// be stamped with their midpoint and half the round trip as uncertainty.
//
// A frame that fails its checksum, is too short or too long, or comes from
// the wrong unit or function is returned as a *[FrameError] carrying the raw
// bytes and is never turned into data. Every master keeps counters of what
// happened on its line ([Master.Stats]) for the EMI accounting above it.
//
// Transactions on an RTU master are strictly one at a time, separated by the
// inter-frame silence of 3.5 character times (1.75 ms above 19200 baud). A
// TCP master may keep several requests in flight on one connection and match
// the answers by transaction id; [TCPConfig.MaxInFlight] of 1 makes it
// behave like a serial line, for devices and gateways that need it.
//
// Bus scheduling, register maps and decoding of typed values live above this
// package; it moves bits and registers only.
//
// Step 1 of a Modbus reading's life in docs/ARCHITECTURE.md.
package modbus
