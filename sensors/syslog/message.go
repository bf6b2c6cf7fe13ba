package syslog

import "github.com/weirgw/weir/event"

// Message is one parsed syslog message. Its strings are substrings of the
// raw message (one copy for all of them), except structured-data values
// that held escapes.
type Message struct {
	Format   Format
	Facility uint8
	Severity event.Severity
	// NoPRI says the message had no PRI; Facility and Severity are then
	// RFC 3164's default, user.notice.
	NoPRI bool
	// Time is the message's own timestamp in ns since the epoch, 0 when it
	// has none.
	Time     int64
	Hostname string
	AppName  string // RFC 5424 APP-NAME, or the RFC 3164 TAG
	ProcID   string // RFC 5424 PROCID, or the RFC 3164 "[pid]"
	MsgID    string
	// SD holds RFC 5424 structured data as fields "sd.<SD-ID>.<PARAM-NAME>"
	// (string, unescaped), and "sd.<SD-ID>" with an empty value for an
	// element without parameters. At most maxSDFields; the rest are left
	// out and SDTruncated set.
	SD          []event.Field
	SDTruncated bool
	// Msg is the free-form message, without a leading UTF-8 BOM.
	Msg string

	keys map[string]string // SD keys seen, reused across messages
	kbuf []byte
}

// maxSDFields bounds the fields structured data may produce: an event
// holds at most event.MaxFields, and each field's key repeats its SD-ID,
// so without a bound a 128 KiB message could encode to several times its
// size and overflow a spool append.
const maxSDFields = 64

const bom = "\xef\xbb\xbf"

func (m *Message) reset() {
	*m = Message{SD: m.SD[:0], keys: m.keys, kbuf: m.kbuf}
}
