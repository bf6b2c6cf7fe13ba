package ptp

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/facebook/time/ptp/protocol"
	"github.com/stretchr/testify/require"
)

func readCapture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ptp4l", name))
	require.NoError(t, err)
	return b
}

// The captures are linuxptp 3.1.1's answers to Weir's own requests
// (TestCapturePTP4L): a slave of a grandmaster on software time stamps
// (ARB), and a grandmaster told it is on GNSS time with a leap second
// ahead (GRANDMASTER_SETTINGS_NP).
func TestDecodeTimePropertiesCaptured(t *testing.T) {
	for name, tc := range map[string]struct {
		offset                                                int16
		leap61, leap59, valid, ptpScale, timeTrace, freqTrace bool
		source                                                string
	}{
		"time_properties_arb.bin":  {offset: 37, source: "INTERNAL_OSCILLATOR"},
		"time_properties_gnss.bin": {offset: 37, leap61: true, valid: true, ptpScale: true, timeTrace: true, freqTrace: true, source: "GNSS"},
	} {
		t.Run(name, func(t *testing.T) {
			tp, err := DecodeTimeProperties(readCapture(t, name))
			require.NoError(t, err)
			require.Equal(t, tc.offset, tp.CurrentUTCOffset)
			require.Equal(t, tc.leap61, tp.Leap61())
			require.Equal(t, tc.leap59, tp.Leap59())
			require.Equal(t, tc.valid, tp.UTCOffsetValid())
			require.Equal(t, tc.ptpScale, tp.PTPTimescale())
			require.Equal(t, tc.timeTrace, tp.TimeTraceable())
			require.Equal(t, tc.freqTrace, tp.FrequencyTraceable())
			require.Equal(t, tc.source, tp.TimeSourceName())
		})
	}
}

func TestDecodePortDataSetCaptured(t *testing.T) {
	p, err := DecodePortDataSet(readCapture(t, "port_data_set_slave.bin"))
	require.NoError(t, err)
	require.Equal(t, protocol.PortStateSlave, p.PortState)
	require.Equal(t, uint16(1), p.PortIdentity.PortNumber)
	require.Equal(t, int8(-2), p.LogSyncInterval)
	require.Equal(t, int8(-1), p.LogAnnounceInterval)
	require.Equal(t, uint8(3), p.AnnounceReceiptTimeout)
	require.Equal(t, uint8(1), p.DelayMechanism) // E2E
	require.Equal(t, uint8(2), p.VersionNumber)
}

func TestTimePropertiesRoundTrip(t *testing.T) {
	req := TimePropertiesRequest()
	b, err := req.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, b, int(req.MessageLength))
	require.Equal(t, uint16(6), binary.BigEndian.Uint16(b[mgmtHeadSize+2:]), "tlv length: management id and 4 bytes of data")

	head := req.ManagementMsgHead
	head.ActionField = protocol.RESPONSE
	in := &TimePropertiesTLV{ManagementTLVHead: req.TLV.(*TimePropertiesTLV).ManagementTLVHead,
		CurrentUTCOffset: -3, Flags: 0x2a, TimeSource: 0x42}
	b, err = in.MarshalBinary(head)
	require.NoError(t, err)
	out, err := DecodeTimeProperties(b)
	require.NoError(t, err)
	require.Equal(t, in, out)
	require.True(t, out.Leap59())
	require.True(t, out.PTPTimescale())
	require.True(t, out.FrequencyTraceable())
	require.False(t, out.Leap61() || out.UTCOffsetValid() || out.TimeTraceable())
	require.Equal(t, "0x42", out.TimeSourceName())
}

// Each way an answer can be wrong is an error that says what is wrong.
func TestDecodeManagementErrors(t *testing.T) {
	good := readCapture(t, "time_properties_arb.bin")
	patch := func(at int, v ...byte) []byte {
		c := bytes.Clone(good)
		copy(c[at:], v)
		return c
	}
	tlv := mgmtHeadSize
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":           {nil, "message head (0 bytes)"},
		"head only":       {good[:mgmtHeadSize], "tlv head"},
		"truncated data":  {good[:len(good)-1], "tlv length 6 with 5 bytes"},
		"short length":    {patch(tlv+2, 0, 4), "tlv length 4"},
		"not management":  {patch(0, 0x00), "got message type"},
		"a GET":           {patch(mgmtHeadSize-2, byte(protocol.GET)), "got action 0, want RESPONSE"},
		"other tlv type":  {patch(tlv, 0, 3), "got tlv type"},
		"other data set":  {readCapture(t, "port_data_set_slave.bin"), "got management id 0x2004, want 0x2003"},
		"unknown id":      {readCapture(t, "unknown_id.bin"), "got management id 0x6000"},
		"error status":    {readCapture(t, "error_status.bin"), "management error status to 0x2003: NOT_SUPPORTED (0x0006)"},
		"error truncated": {readCapture(t, "error_status.bin")[:tlv+6], "management error status: NOT_SUPPORTED"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeTimeProperties(tc.b)
			require.ErrorContains(t, err, "time properties data set: ")
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := DecodePortDataSet(good)
	require.ErrorContains(t, err, "port data set: got management id 0x2003, want 0x2004")
}

// FuzzDecodeManagement: any bytes from the management socket decode or
// fail with an error, never panic, and what decodes re-encodes to the
// same bytes.
func FuzzDecodeManagement(f *testing.F) {
	for _, name := range []string{"time_properties_arb.bin", "time_properties_gnss.bin", "port_data_set_slave.bin", "error_status.bin", "unknown_id.bin"} {
		f.Add(readCapture(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if tp, err := DecodeTimeProperties(b); err == nil {
			checkReencode(t, b, tp, tp.ManagementTLVHead)
		}
		if p, err := DecodePortDataSet(b); err == nil {
			checkReencode(t, b, p, p.ManagementTLVHead)
		}
	})
}

// checkReencode: the decoded message, encoded again, is b up to the
// data's end, apart from the lengths, which encoding sets from the sizes.
func checkReencode(t *testing.T, b []byte, tlv any, th protocol.ManagementTLVHead) {
	var head protocol.ManagementMsgHead
	require.NoError(t, binary.Read(bytes.NewReader(b), binary.BigEndian, &head))
	out, err := marshalManagement(head, tlv)
	require.NoError(t, err)
	in := bytes.Clone(b[:len(out)])
	binary.BigEndian.PutUint16(in[2:], uint16(len(out)))
	binary.BigEndian.PutUint16(in[mgmtHeadSize+2:], uint16(binary.Size(tlv)-tlvHeadSize))
	require.Equal(t, in, out)
	require.GreaterOrEqual(t, int(th.LengthField), binary.Size(tlv)-tlvHeadSize)
}
