package ptp

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/facebook/time/ptp/protocol"
)

// PortDataSetTLV is the PORT_DATA_SET management TLV data field (IEEE
// 1588-2008 Table 83, linuxptp's struct portDS). facebook/time's
// management client has no decoder for it; this one is decoded here
// rather than registered in that package's global decoder table.
type PortDataSetTLV struct {
	protocol.ManagementTLVHead

	PortIdentity            protocol.PortIdentity
	PortState               protocol.PortState
	LogMinDelayReqInterval  int8
	PeerMeanPathDelay       protocol.TimeInterval
	LogAnnounceInterval     int8
	AnnounceReceiptTimeout  uint8
	LogSyncInterval         int8
	DelayMechanism          uint8
	LogMinPdelayReqInterval int8
	VersionNumber           uint8
}

// MgmtID is PORT_DATA_SET.
func (*PortDataSetTLV) MgmtID() protocol.ManagementID { return protocol.IDPortDataSet }

// Type is the management TLV type.
func (t *PortDataSetTLV) Type() protocol.TLVType { return t.TLVType }

// PortDataSetRequest builds a GET of PORT_DATA_SET, as the library's
// requests for the other data sets are built.
func PortDataSetRequest() *protocol.Management {
	req := protocol.ParentDataSetRequest()
	head := uint16(binary.Size(protocol.ManagementMsgHead{}))
	size := uint16(binary.Size(PortDataSetTLV{}))
	req.MessageLength = head + size
	req.TLV = &PortDataSetTLV{ManagementTLVHead: protocol.ManagementTLVHead{
		TLVHead:      protocol.TLVHead{TLVType: protocol.TLVManagement, LengthField: size - uint16(binary.Size(protocol.TLVHead{}))},
		ManagementID: protocol.IDPortDataSet,
	}}
	return req
}

// MarshalBinary encodes a management message carrying t, as a test peer
// answering PORT_DATA_SET sends it.
func (t *PortDataSetTLV) MarshalBinary(head protocol.ManagementMsgHead) ([]byte, error) {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.BigEndian, head); err != nil {
		return nil, err
	}
	if err := binary.Write(&b, binary.BigEndian, t); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// DecodePortDataSet decodes a management message answering a PORT_DATA_SET
// GET; other TLVs, including management error status, are errors.
func DecodePortDataSet(b []byte) (*PortDataSetTLV, error) {
	r := bytes.NewReader(b)
	var head protocol.ManagementMsgHead
	if err := binary.Read(r, binary.BigEndian, &head); err != nil {
		return nil, fmt.Errorf("port data set: message head: %w", err)
	}
	var t PortDataSetTLV
	if err := binary.Read(r, binary.BigEndian, &t.ManagementTLVHead); err != nil {
		return nil, fmt.Errorf("port data set: tlv head: %w", err)
	}
	if t.TLVType != protocol.TLVManagement {
		return nil, fmt.Errorf("port data set: got tlv type %s, want %s", t.TLVType, protocol.TLVManagement)
	}
	if t.ManagementID != protocol.IDPortDataSet {
		return nil, fmt.Errorf("port data set: got management id 0x%04x, want 0x%04x", uint16(t.ManagementID), uint16(protocol.IDPortDataSet))
	}
	r = bytes.NewReader(b[binary.Size(head):])
	if err := binary.Read(r, binary.BigEndian, &t); err != nil {
		return nil, fmt.Errorf("port data set: %w", err)
	}
	return &t, nil
}
