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
	t := &PortDataSetTLV{}
	t.ManagementTLVHead = tlvHead(protocol.IDPortDataSet, binary.Size(t))
	return getRequest(t)
}

// MarshalBinary encodes a management message carrying t, as a test peer
// answering PORT_DATA_SET sends it.
func (t *PortDataSetTLV) MarshalBinary(head protocol.ManagementMsgHead) ([]byte, error) {
	return marshalManagement(head, t)
}

// DecodePortDataSet decodes a management message answering a PORT_DATA_SET
// GET; other TLVs, including management error status, are errors.
func DecodePortDataSet(b []byte) (*PortDataSetTLV, error) {
	var t PortDataSetTLV
	if err := decodeManagement(b, protocol.IDPortDataSet, &t); err != nil {
		return nil, fmt.Errorf("port data set: %w", err)
	}
	return &t, nil
}

// getRequest is a GET of tlv's data set, built as facebook/time builds
// its requests (with a zero data field of the full size, which ptp4l
// ignores in a GET).
func getRequest(tlv protocol.ManagementTLV) *protocol.Management {
	req := protocol.ParentDataSetRequest()
	req.MessageLength = uint16(mgmtHeadSize + binary.Size(tlv))
	req.TLV = tlv
	return req
}

// tlvHead is the management TLV head for data set id whose TLV struct
// (head included) is size bytes.
func tlvHead(id protocol.ManagementID, size int) protocol.ManagementTLVHead {
	return protocol.ManagementTLVHead{
		TLVHead:      protocol.TLVHead{TLVType: protocol.TLVManagement, LengthField: uint16(size - tlvHeadSize)},
		ManagementID: id,
	}
}

// marshalManagement encodes head and tlv, a fixed-size struct starting
// with the management TLV head, with the message and TLV lengths set
// from their sizes.
func marshalManagement(head protocol.ManagementMsgHead, tlv any) ([]byte, error) {
	size := binary.Size(tlv)
	head.MessageLength = uint16(mgmtHeadSize + size)
	var b bytes.Buffer
	if err := binary.Write(&b, binary.BigEndian, head); err != nil {
		return nil, err
	}
	if err := binary.Write(&b, binary.BigEndian, tlv); err != nil {
		return nil, err
	}
	out := b.Bytes()
	binary.BigEndian.PutUint16(out[mgmtHeadSize+2:], uint16(size-tlvHeadSize))
	return out, nil
}

var (
	mgmtHeadSize = binary.Size(protocol.ManagementMsgHead{})
	tlvHeadSize  = binary.Size(protocol.TLVHead{})
)

// decodeManagement decodes b, an answer to a GET of data set id, into
// out, a pointer to a fixed-size struct that starts with the management
// TLV head. It checks what a confused peer or a stale answer would get
// wrong: the message type, the action, the TLV type (a management error
// status is reported with its error), the management id and the TLV
// length against the bytes actually there.
func decodeManagement(b []byte, id protocol.ManagementID, out any) error {
	var head protocol.ManagementMsgHead
	if err := binary.Read(bytes.NewReader(b), binary.BigEndian, &head); err != nil {
		return fmt.Errorf("message head (%d bytes): %w", len(b), err)
	}
	if mt := head.MessageType(); mt != protocol.MessageManagement {
		return fmt.Errorf("got message type %s, want %s", mt, protocol.MessageManagement)
	}
	if head.Action() != protocol.RESPONSE {
		return fmt.Errorf("got action %d, want RESPONSE (%d)", head.Action(), protocol.RESPONSE)
	}
	rest := b[mgmtHeadSize:]
	var tlv protocol.ManagementTLVHead
	if err := binary.Read(bytes.NewReader(rest), binary.BigEndian, &tlv); err != nil {
		return fmt.Errorf("tlv head: %w", err)
	}
	if tlv.TLVType == protocol.TLVManagementErrorStatus {
		// ptp4l puts the error id where a management TLV has its
		// management id, and the id asked for after it.
		errID := protocol.ManagementErrorID(tlv.ManagementID)
		asked := ""
		if len(rest) >= tlvHeadSize+4 {
			asked = fmt.Sprintf(" to 0x%04x", binary.BigEndian.Uint16(rest[tlvHeadSize+2:]))
		}
		return fmt.Errorf("management error status%s: %s (0x%04x)", asked, errID, uint16(errID))
	}
	if tlv.TLVType != protocol.TLVManagement {
		return fmt.Errorf("got tlv type %s, want %s", tlv.TLVType, protocol.TLVManagement)
	}
	if tlv.ManagementID != id {
		return fmt.Errorf("got management id 0x%04x, want 0x%04x", uint16(tlv.ManagementID), uint16(id))
	}
	want := binary.Size(out) - tlvHeadSize // the length field counts the management id and the data
	if got := int(tlv.LengthField); got < want || tlvHeadSize+got > len(rest) {
		return fmt.Errorf("tlv length %d with %d bytes after the tlv head, want at least %d", got, len(rest)-tlvHeadSize, want)
	}
	if err := binary.Read(bytes.NewReader(rest), binary.BigEndian, out); err != nil {
		return err
	}
	return nil
}
