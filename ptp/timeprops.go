package ptp

import (
	"encoding/binary"
	"fmt"

	"github.com/facebook/time/ptp/protocol"
)

// TimePropertiesTLV is the TIME_PROPERTIES_DATA_SET management TLV (IEEE
// 1588-2008 15.5.3.6.1, linuxptp's struct timePropertiesDS): what the
// grandmaster says of its timescale. Decoded here, as PORT_DATA_SET is,
// for facebook/time has no decoder for it.
type TimePropertiesTLV struct {
	protocol.ManagementTLVHead

	CurrentUTCOffset int16 // TAI − UTC in seconds
	Flags            uint8 // the second octet of a header's flagField
	TimeSource       protocol.TimeSource
}

// MgmtID is TIME_PROPERTIES_DATA_SET.
func (*TimePropertiesTLV) MgmtID() protocol.ManagementID { return protocol.IDTimePropertiesDataSet }

// Type is the management TLV type.
func (t *TimePropertiesTLV) Type() protocol.TLVType { return t.TLVType }

func (t *TimePropertiesTLV) flag(f uint16) bool { return t.Flags&uint8(f) != 0 }

// Leap61: the last minute of the current UTC day has 61 seconds.
func (t *TimePropertiesTLV) Leap61() bool { return t.flag(protocol.FlagLeap61) }

// Leap59: the last minute of the current UTC day has 59 seconds.
func (t *TimePropertiesTLV) Leap59() bool { return t.flag(protocol.FlagLeap59) }

// UTCOffsetValid: the grandmaster vouches for CurrentUTCOffset.
func (t *TimePropertiesTLV) UTCOffsetValid() bool { return t.flag(protocol.FlagCurrentUtcOffsetValid) }

// PTPTimescale: the grandmaster's time is TAI (the PTP epoch); otherwise
// it is arbitrary (ARB), as a ptp4l grandmaster on software time stamps
// (CLOCK_REALTIME, UTC) announces.
func (t *TimePropertiesTLV) PTPTimescale() bool { return t.flag(protocol.FlagPTPTimescale) }

// TimeTraceable: the time is traceable to a primary reference.
func (t *TimePropertiesTLV) TimeTraceable() bool { return t.flag(protocol.FlagTimeTraceable) }

// FrequencyTraceable: the frequency is traceable to a primary reference.
func (t *TimePropertiesTLV) FrequencyTraceable() bool { return t.flag(protocol.FlagFrequencyTraceable) }

// TimeSourceName is the timeSource as IEEE 1588 names it (GNSS,
// INTERNAL_OSCILLATOR, ...), or its value in hex when it has no name.
func (t *TimePropertiesTLV) TimeSourceName() string {
	if s, ok := protocol.TimeSourceToString[t.TimeSource]; ok {
		return s
	}
	return fmt.Sprintf("0x%02x", uint8(t.TimeSource))
}

// TimePropertiesRequest builds a GET of TIME_PROPERTIES_DATA_SET.
func TimePropertiesRequest() *protocol.Management {
	t := &TimePropertiesTLV{}
	t.ManagementTLVHead = tlvHead(protocol.IDTimePropertiesDataSet, binary.Size(t))
	return getRequest(t)
}

// MarshalBinary encodes a management message carrying t, as a test peer
// answering TIME_PROPERTIES_DATA_SET sends it.
func (t *TimePropertiesTLV) MarshalBinary(head protocol.ManagementMsgHead) ([]byte, error) {
	return marshalManagement(head, t)
}

// DecodeTimeProperties decodes a management message answering a
// TIME_PROPERTIES_DATA_SET GET; other TLVs, including management error
// status, are errors.
func DecodeTimeProperties(b []byte) (*TimePropertiesTLV, error) {
	var t TimePropertiesTLV
	if err := decodeManagement(b, protocol.IDTimePropertiesDataSet, &t); err != nil {
		return nil, fmt.Errorf("time properties data set: %w", err)
	}
	return &t, nil
}
