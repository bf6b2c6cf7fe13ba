package modbus

import (
	"errors"
	"fmt"
)

// ExceptionCode is the code of a Modbus exception response.
type ExceptionCode byte

// Exception codes of the Modbus application protocol specification v1.1b3,
// section 7.
const (
	IllegalFunction                    ExceptionCode = 0x01
	IllegalDataAddress                 ExceptionCode = 0x02
	IllegalDataValue                   ExceptionCode = 0x03
	ServerDeviceFailure                ExceptionCode = 0x04
	Acknowledge                        ExceptionCode = 0x05
	ServerDeviceBusy                   ExceptionCode = 0x06
	MemoryParityError                  ExceptionCode = 0x08
	GatewayPathUnavailable             ExceptionCode = 0x0A
	GatewayTargetDeviceFailedToRespond ExceptionCode = 0x0B
)

// String returns the specification's name, e.g. "ILLEGAL DATA ADDRESS".
func (c ExceptionCode) String() string {
	switch c {
	case IllegalFunction:
		return "ILLEGAL FUNCTION"
	case IllegalDataAddress:
		return "ILLEGAL DATA ADDRESS"
	case IllegalDataValue:
		return "ILLEGAL DATA VALUE"
	case ServerDeviceFailure:
		return "SERVER DEVICE FAILURE"
	case Acknowledge:
		return "ACKNOWLEDGE"
	case ServerDeviceBusy:
		return "SERVER DEVICE BUSY"
	case MemoryParityError:
		return "MEMORY PARITY ERROR"
	case GatewayPathUnavailable:
		return "GATEWAY PATH UNAVAILABLE"
	case GatewayTargetDeviceFailedToRespond:
		return "GATEWAY TARGET DEVICE FAILED TO RESPOND"
	}
	return fmt.Sprintf("UNKNOWN EXCEPTION 0x%02X", byte(c))
}

// ExceptionError is a well-formed exception response: the device understood
// the request and refused it. It is not retried.
type ExceptionError struct {
	Function FunctionCode // the function of the request, without the 0x80 bit
	Code     ExceptionCode
}

// Name returns the exception's name, e.g. "ILLEGAL DATA ADDRESS".
func (e *ExceptionError) Name() string { return e.Code.String() }

func (e *ExceptionError) Error() string {
	return fmt.Sprintf("exception 0x%02X %s (function 0x%02X)", byte(e.Code), e.Code, byte(e.Function))
}

// FrameErrorKind says what was wrong with a received frame.
type FrameErrorKind int

// Kinds of frame errors. Each is counted separately in [Stats].
const (
	FrameCRC              FrameErrorKind = iota + 1 // RTU checksum mismatch
	FrameShort                                      // fewer bytes than the request implies, then silence
	FrameOverlong                                   // more bytes than the request implies
	FrameWrongUnit                                  // answer from another unit id
	FrameWrongFunction                              // answer to another function code
	FrameWrongTransaction                           // TCP: no request waits for this transaction id
	FrameBadHeader                                  // TCP: protocol id not 0 or a length out of range
	FrameBadLength                                  // PDU length or byte count not what the request implies
	FrameMismatch                                   // a write's echo differs from the request
)

func (k FrameErrorKind) String() string {
	switch k {
	case FrameCRC:
		return "crc mismatch"
	case FrameShort:
		return "short frame"
	case FrameOverlong:
		return "overlong frame"
	case FrameWrongUnit:
		return "wrong unit"
	case FrameWrongFunction:
		return "wrong function"
	case FrameWrongTransaction:
		return "unknown transaction id"
	case FrameBadHeader:
		return "bad mbap header"
	case FrameBadLength:
		return "bad length"
	case FrameMismatch:
		return "echo mismatch"
	}
	return fmt.Sprintf("frame error %d", int(k))
}

// FrameError is a received frame that cannot be trusted. Raw holds its bytes
// as received (for RTU including the CRC, for TCP including the MBAP header)
// so they can be kept, in hex, in a diagnostic record. Its contents never
// become data.
type FrameError struct {
	Kind   FrameErrorKind
	Detail string // e.g. "got 0x1a2b, want 0x4b37"
	Raw    []byte
}

func (e *FrameError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%s (% x)", e.Kind, e.Raw)
	}
	return fmt.Sprintf("%s (%s; % x)", e.Kind, e.Detail, e.Raw)
}

func frameErr(kind FrameErrorKind, raw []byte, format string, args ...any) *FrameError {
	return &FrameError{Kind: kind, Detail: fmt.Sprintf(format, args...), Raw: append([]byte(nil), raw...)}
}

// ErrTimeout is returned (wrapped) when no byte of a response arrived
// within the request's timeout.
var ErrTimeout = errors.New("timeout")

// ErrClosed is returned by a master after Close.
var ErrClosed = errors.New("master closed")
