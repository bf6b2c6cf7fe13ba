package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// Netlink message types the reader handles itself (linux/netlink.h,
// linux/audit.h).
const (
	nlmsgError   = 2    // NLMSG_ERROR: an acknowledgement, errno 0, or a refusal
	nlmsgDone    = 3    // NLMSG_DONE
	auditReplace = 1329 // AUDIT_REPLACE: the kernel testing its audit daemon, a binary pid
	auditEOE     = 1320 // AUDIT_EOE: the end of a multi-record event

	// Record types: user space (1100..1199, 2100..2999), daemon
	// (1200..1299), kernel (1300..2099). Below are commands and replies.
	firstRecordType = 1100
)

// nlHeaderLen is the size of a netlink message header (struct nlmsghdr).
const nlHeaderLen = 16

// nlMessage is one message of the kernel's audit netlink socket.
type nlMessage struct {
	Type  uint16
	Flags uint16
	Seq   uint32
	// Payload is what follows the header: for a record, its text
	// ("audit(1700000000.123:42): key=value ..."), trailing NULs removed.
	// It shares the datagram's memory.
	Payload []byte
}

// decodeNetlink decodes one datagram read from the audit socket. The
// kernel sends one message a datagram. The header's length is not
// trusted for records: the kernel sets it to the payload's length
// (without the header) on the unicast socket, as auditd expects, and to
// the whole message's on the multicast group; the payload is the rest of
// the datagram either way. Header fields are in the host's byte order.
func decodeNetlink(b []byte) (nlMessage, error) {
	if len(b) < nlHeaderLen {
		return nlMessage{}, fmt.Errorf("netlink message of %d bytes, shorter than its %d-byte header", len(b), nlHeaderLen)
	}
	m := nlMessage{
		Type:    binary.NativeEndian.Uint16(b[4:6]),
		Flags:   binary.NativeEndian.Uint16(b[6:8]),
		Seq:     binary.NativeEndian.Uint32(b[8:12]),
		Payload: bytes.TrimRight(b[nlHeaderLen:], "\x00"),
	}
	if m.Type < firstRecordType {
		// A command's reply is proper netlink: its length holds.
		if n := binary.NativeEndian.Uint32(b[0:4]); n >= nlHeaderLen && int64(n) <= int64(len(b)) {
			m.Payload = b[nlHeaderLen:n]
		}
	}
	return m, nil
}

// isRecord says whether m is an audit record (not a command's reply and
// not the kernel's binary AUDIT_REPLACE probe).
func (m nlMessage) isRecord() bool {
	return m.Type >= firstRecordType && m.Type != auditReplace
}

// errno is the error an NLMSG_ERROR message carries: nil for an
// acknowledgement.
func (m nlMessage) errno() error {
	if len(m.Payload) < 4 {
		return errors.New("netlink error message without its error number")
	}
	if e := int32(binary.NativeEndian.Uint32(m.Payload[:4])); e != 0 {
		return syscall.Errno(-e)
	}
	return nil
}

// extraTypeNames are record types newer than go-libaudit's table, named
// as the kernel's linux/audit.h names them (without AUDIT_).
var extraTypeNames = map[uint16]string{
	1420: "MAC_TASK_CONTEXTS",
	1421: "MAC_OBJ_CONTEXTS",
}

// typeName is the name auditd writes in type= for a record type number:
// SYSCALL for 1300, UNKNOWN[1999] for a number it does not know.
func typeName(t uint16) string {
	if n, ok := extraTypeNames[t]; ok {
		return n
	}
	return auparse.AuditMessageType(t).String()
}

// appendLine appends the log line auditd's raw format writes for the
// record m: "type=NAME msg=PAYLOAD".
func appendLine(dst []byte, m nlMessage) []byte {
	dst = append(dst, "type="...)
	dst = append(dst, typeName(m.Type)...)
	dst = append(dst, " msg="...)
	return append(dst, m.Payload...)
}
