// Package poll turns Modbus devices into readings: register maps from the
// configuration, a scheduler per bus, typed decoding and EMI accounting.
//
// A [Poller] holds one [Bus] per serial line or TCP address. A bus owns one
// [modbus.Master] and one scheduler: on a serial line transactions are
// strictly one at a time (the master enforces it; the scheduler plans which
// device is due next), on TCP up to max_in_flight devices are polled at once.
// Each device's registers are coalesced into as few requests as the limits
// (125 registers, 2000 bits) and the device's max_gap allow. A device that
// keeps timing out is backed off exponentially (capped) and probed again, so
// a dead meter does not starve the live ones sharing its line.
//
// A poll becomes one record (kind reading) with a typed field per register
// of the requests answered with data, stamped at the midpoint of the first
// request sent and the last answer received, half that span added to the
// clock's error bound, and the checksum verdict. A request refused with an
// exception leaves its registers out; the exception is recorded, as a
// reading flagged quality "exception", when it starts and again when it
// clears, not every poll. BUSY and ACKNOWLEDGE are asked again with back-off
// within the poll's deadline; other exceptions are final. A poll in which a
// request goes unanswered, or gets only damaged answers, is no reading. Every damaged
// frame (CRC error, short or overlong frame, wrong unit...) is counted per
// bus and per device and its raw bytes kept, in hex, in a diagnostic record,
// rate-limited per bus with a count of the ones suppressed.
//
// Steps 1 and 2 of a Modbus reading's life in docs/ARCHITECTURE.md.
package poll
