// Package line owns ASCII line sensors: instruments that talk in text lines
// on a serial port (GPS receivers and weather stations speaking NMEA 0183,
// analysers with a CRC trailer, or plain lines with no checksum). It splits
// the byte stream into lines, verifies each line's checksum with a pure
// parser ([Parse]), and turns every line into one [event.Event] carrying
// the verdict.
//
// A line that fails its checksum is still recorded, because for a line
// sensor the raw line is the evidence of what the wire carried. It is
// marked so it can never pass for a reading: event Checksum is bad, the
// "verdict" field says mismatch, missing or malformed, severity is warning
// and priority is normal whatever the sensor's priority.
//
// Checksums (the verified bytes never include the line terminator):
//
//   - nmea: NMEA 0183. The line is "$" or "!", the body, "*" and two hex
//     digits: the XOR of every byte of the body (between the start
//     character and the last "*").
//   - crc16-ccitt: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no
//     reflection, xorout 0; check value of "123456789" is 0x29B1).
//   - crc16-xmodem: CRC-16/XMODEM (poly 0x1021, init 0x0000, no reflection,
//     xorout 0; check 0x31C3).
//   - crc32: CRC-32/ISO-HDLC as in zlib and hash/crc32's IEEE (check
//     0xCBF43926).
//   - none: no verification; verdict "none".
//
// For the CRCs the trailer is the configured separator (default "*") and
// exactly 4 (CRC-16) or 8 (CRC-32) hex digits, either case, at the end of
// the line; the CRC covers every byte before the last separator, the
// separator excluded.
//
// Lines longer than max_line_length are split into pieces, none dropped;
// each piece is flagged (overlong, part) and, since no piece holds a whole
// checksummed line, gets verdict malformed. A line cut by shutdown or a
// reopen of the port is flagged partial and parsed as it is.
//
// The package does not own the gateway wiring (inputs.lines) nor the
// serial line itself (package serialport).
//
// docs/ARCHITECTURE.md places this package among the sensors.
package line
