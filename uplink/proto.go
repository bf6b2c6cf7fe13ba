package uplink

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ProtocolVersion is sent in Hello and Welcome. A collector answers a
// version it does not speak with an Error naming both versions. Version 2
// added Hello.Floor, Ping/Pong and the zstd codec; version 3 the batch
// limits agreed in Hello and Welcome; version 4 the configuration
// bundles (ConfigStatus, ConfigOffer, ConfigPull, ConfigBundle), sent
// only on a session whose Welcome says 4.
const ProtocolVersion = 4

// MinProtocolVersion is the oldest version a collector still takes: a
// version 2 gateway gets the collector's own batch limits, unannounced,
// and a version 2 or 3 gateway no configuration bundles.
const MinProtocolVersion = 2

// DefaultMaxFrame bounds one message. A peer announcing a larger frame gets
// an error before anything is allocated for it.
const DefaultMaxFrame = 16 << 20

// Bounds on a batch. A gateway states its batch limits in Hello, the
// collector answers with the limits both keep to in Welcome (each the
// smaller of the two sides'), and refuses a Data message that breaks them.
const (
	// MaxBatchRecords is the protocol's most records per batch.
	MaxBatchRecords = 100000
	// MaxBatchBytes is the protocol's most record bytes per batch.
	MaxBatchBytes = DefaultMaxFrame / 2
	// MinBatchBytes is the least a side may offer.
	MinBatchBytes = 1024
	// MinRecord is the size of the smallest record: an event.Event with
	// nothing set encodes to 15 bytes (version and six enum bytes, three
	// one-byte varints, four empty strings, no fields).
	MinRecord = 15
	// MaxRecordBytes bounds one record. The spool takes at most 208 KiB of
	// record data per append, so no gateway has a larger one; a batch over
	// its byte limit is a single such record.
	MaxRecordBytes = 256 << 10
	// recordLenBytes is the most a record's uvarint length takes (below 2 MiB).
	recordLenBytes = 3
	// HelloMaxFrame bounds the frames of a session before its Hello is
	// taken: a Hello is two strings of at most 4 KiB and a few varints.
	HelloMaxFrame = 16 << 10
)

// PayloadBound is the most a Data payload may decode to under the limits
// maxRecords and maxBytes: the record bytes (or one record of the largest
// size) and each record's length.
func PayloadBound(maxRecords, maxBytes int) int {
	return max(maxBytes, MaxRecordBytes) + maxRecords*recordLenBytes
}

// FrameBound is the largest Data frame under the same limits: the payload
// (compression never grows it by more than zstd's block headers) and the
// message header.
func FrameBound(maxRecords, maxBytes int) int {
	p := PayloadBound(maxRecords, maxBytes)
	return p + p/64 + 256
}

// MsgType is the first byte of every frame's body.
type MsgType uint8

const (
	MsgHello MsgType = iota + 1
	MsgWelcome
	MsgData
	MsgAck
	MsgError
	MsgPing
	MsgPong
)

func (t MsgType) String() string {
	switch t {
	case MsgHello:
		return "hello"
	case MsgWelcome:
		return "welcome"
	case MsgData:
		return "data"
	case MsgAck:
		return "ack"
	case MsgError:
		return "error"
	case MsgPing:
		return "ping"
	case MsgPong:
		return "pong"
	case MsgConfigStatus:
		return "config_status"
	case MsgConfigOffer:
		return "config_offer"
	case MsgConfigPull:
		return "config_pull"
	case MsgConfigBundle:
		return "config_bundle"
	}
	return fmt.Sprintf("msg(%d)", uint8(t))
}

// Codec says how a Data payload is compressed.
type Codec uint8

const (
	CodecNone Codec = iota
	CodecZstd       // the payload is one zstd frame holding the CodecNone payload
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Hello opens a session: the gateway names itself. Floor is the sequence
// below the gateway's oldest unacknowledged record: everything at or below
// it is either held by the collector already or gone from the spool, and
// will never be sent. The collector takes it only as far as it can check
// (see uplink/collector). MaxRecords and MaxBytes (version 3) are the
// gateway's batch limits.
type Hello struct {
	Version    uint64
	Gateway    string
	BootID     string
	Floor      uint64
	MaxRecords uint64
	MaxBytes   uint64
}

// Welcome answers Hello with the highest sequence up to which the collector
// holds every record of this gateway above Hello.Floor durably (Floor
// itself when it holds none above it), so the sender resumes after it.
// MaxRecords and MaxBytes (version 3) are the batch limits of the session:
// the gateway sends no batch of more records, nor of more record bytes
// unless it is a single record.
type Welcome struct {
	Version    uint64
	Highest    uint64
	MaxRecords uint64
	MaxBytes   uint64
}

// Data carries Count records with sequences First..First+Count-1.
type Data struct {
	First   uint64
	Count   uint64
	Codec   Codec
	Payload []byte // Count records, each a uvarint length and its bytes
}

// Ack says the collector holds durably the Data message whose last
// sequence is Cumulative and every Data sent before it on this session.
// A collector acks each Data in the order it came. Within one session of
// failover mode that is every sequence up to Cumulative; in balance mode a
// session may carry a resent batch numbered below earlier ones, so the
// sender matches acks to batches in send order. Selective ranges (the count
// on the wire is always 0) are left to the transport: uplink/rudp
// acknowledges segments selectively under the byte stream.
type Ack struct {
	Cumulative uint64
}

// Ping asks the peer for a Pong with the same nonce: a keepalive and an
// RTT probe. Either side may send it once the session is open; a collector
// answers it between Data messages, so over TCP the round trip includes
// queueing behind batches already sent.
type Ping struct {
	Nonce uint64
}

// Pong answers Ping.
type Pong struct {
	Nonce uint64
}

// Error is sent before a peer closes a session on purpose, so the other
// side can log why rather than guess from a reset.
type Error struct {
	Code    ErrorCode
	Message string
}

// ErrorCode classifies an Error.
type ErrorCode uint8

const (
	ErrProtocol ErrorCode = iota + 1
	ErrIdentity
	ErrVersion
	ErrSink
	ErrPayload    // a Data payload that does not decompress or split
	ErrLimit      // a Data message breaks the batch limits agreed in Welcome
	ErrBusy       // the collector is over a budget (memory, sessions of this gateway): retry later
	ErrSessionEnd // the session ends on purpose: its certificate expired, it reached its maximum age, or the gateway was revoked
)

func (c ErrorCode) String() string {
	switch c {
	case ErrProtocol:
		return "protocol"
	case ErrIdentity:
		return "identity"
	case ErrVersion:
		return "version"
	case ErrSink:
		return "sink"
	case ErrPayload:
		return "payload"
	case ErrLimit:
		return "limit"
	case ErrBusy:
		return "busy"
	case ErrSessionEnd:
		return "session_end"
	}
	return fmt.Sprintf("code(%d)", uint8(c))
}

func (e *Error) Error() string {
	return fmt.Sprintf("peer refused (%s): %s", e.Code, e.Message)
}

// Message is one of Hello, Welcome, Data, Ack, Error, Ping, Pong, or
// (version 4) ConfigStatus, ConfigOffer, ConfigPull, ConfigBundle.
type Message interface {
	Type() MsgType
	appendBody(b []byte) []byte
}

func (*Hello) Type() MsgType   { return MsgHello }
func (*Welcome) Type() MsgType { return MsgWelcome }
func (*Data) Type() MsgType    { return MsgData }
func (*Ack) Type() MsgType     { return MsgAck }
func (*Error) Type() MsgType   { return MsgError }
func (*Ping) Type() MsgType    { return MsgPing }
func (*Pong) Type() MsgType    { return MsgPong }

func (m *Ping) appendBody(b []byte) []byte { return binary.AppendUvarint(b, m.Nonce) }
func (m *Pong) appendBody(b []byte) []byte { return binary.AppendUvarint(b, m.Nonce) }

func (m *Hello) appendBody(b []byte) []byte {
	b = binary.AppendUvarint(b, m.Version)
	b = appendString(b, m.Gateway)
	b = appendString(b, m.BootID)
	b = binary.AppendUvarint(b, m.Floor)
	if m.Version >= 3 {
		b = binary.AppendUvarint(b, m.MaxRecords)
		b = binary.AppendUvarint(b, m.MaxBytes)
	}
	return b
}

func (m *Welcome) appendBody(b []byte) []byte {
	b = binary.AppendUvarint(b, m.Version)
	b = binary.AppendUvarint(b, m.Highest)
	if m.Version >= 3 {
		b = binary.AppendUvarint(b, m.MaxRecords)
		b = binary.AppendUvarint(b, m.MaxBytes)
	}
	return b
}

func (m *Data) appendBody(b []byte) []byte {
	b = binary.AppendUvarint(b, m.First)
	b = binary.AppendUvarint(b, m.Count)
	b = append(b, byte(m.Codec))
	return append(b, m.Payload...)
}

func (m *Ack) appendBody(b []byte) []byte {
	b = binary.AppendUvarint(b, m.Cumulative)
	// Selective-ack ranges come with the DTLS transport; the count is on the
	// wire already so version 1 peers stay compatible.
	return binary.AppendUvarint(b, 0)
}

func (m *Error) appendBody(b []byte) []byte {
	b = append(b, byte(m.Code))
	return appendString(b, m.Message)
}

// AppendFrame appends m as one frame: a 4-byte big-endian length of what
// follows, the message type, and the body.
func AppendFrame(b []byte, m Message) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(m.Type()))
	b = m.appendBody(b)
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// ReadFrame reads one frame into buf (grown as bytes arrive, up to
// maxFrame) and returns the type and body; body aliases buf.
func ReadFrame(r *bufio.Reader, buf []byte, maxFrame int) (MsgType, []byte, []byte, error) {
	fr := FrameReader{r: r, buf: buf, Max: maxFrame}
	t, body, err := fr.Next()
	return t, body, fr.buf, err
}

// ErrFrameTooLarge says a frame's header announced more than the limit.
var ErrFrameTooLarge = errors.New("frame too large")

// FrameReader reads frames from a peer. Its buffer grows as the bytes of a
// frame arrive, never by what the frame's header declares: a peer that
// announces a large frame and sends little of it costs what it sent.
type FrameReader struct {
	r   *bufio.Reader
	buf []byte
	// Max bounds a frame; it may change between frames (a session's limit
	// rises once its Hello is taken).
	Max int
	// Limit, if set, bounds a frame by its type as well, checked on the
	// type byte before the body is read: a small message cannot borrow
	// the room a batch is allowed.
	Limit func(MsgType) int
	// Reserve, if set, is asked for n more bytes before the buffer grows by
	// n; its error ends the read. Release gives back what the reader holds.
	Reserve func(n int) error
	held    int
}

// NewFrameReader reads frames of at most max bytes from r.
func NewFrameReader(r *bufio.Reader, max int) *FrameReader {
	return &FrameReader{r: r, Max: max}
}

// frameChunk is the first allocation for a frame's body; the buffer doubles
// from there as bytes arrive.
const frameChunk = 32 << 10

// Next reads one frame and returns its type and body; body aliases the
// reader's buffer until the next call.
func (fr *FrameReader) Next() (MsgType, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	// Compared as uint64 before it becomes an int: on a 32-bit board a
	// length from 2 GiB up would turn negative and pass the limit.
	size := uint64(binary.BigEndian.Uint32(hdr[:]))
	if size == 0 {
		return 0, nil, errors.New("uplink: empty frame")
	}
	if fr.Max < 0 || size > uint64(fr.Max) {
		return 0, nil, fmt.Errorf("uplink: frame of %d bytes exceeds the %d-byte limit: %w", size, fr.Max, ErrFrameTooLarge)
	}
	n := int(size)
	if fr.Limit != nil {
		t, err := fr.r.Peek(1)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, fmt.Errorf("uplink: read %d-byte frame: %w", n, err)
		}
		if l := fr.Limit(MsgType(t[0])); n > l {
			return 0, nil, fmt.Errorf("uplink: %s frame of %d bytes exceeds the %d-byte limit: %w", MsgType(t[0]), n, l, ErrFrameTooLarge)
		}
	}
	buf := fr.buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grow := min(n, max(2*cap(buf), frameChunk)) - cap(buf)
			if fr.Reserve != nil {
				if err := fr.Reserve(grow); err != nil {
					return 0, nil, fmt.Errorf("uplink: %d-byte frame: %w", n, err)
				}
				fr.held += grow
			}
			nb := make([]byte, len(buf), cap(buf)+grow)
			copy(nb, buf)
			buf = nb
		}
		m, err := fr.r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			fr.buf = buf
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, fmt.Errorf("uplink: read %d-byte frame: %w", n, err)
		}
	}
	fr.buf = buf
	return MsgType(buf[0]), buf[1:], nil
}

// Held is the size of the buffer Reserve was asked for.
func (fr *FrameReader) Held() int { return fr.held }

// Shrink drops a buffer larger than keep (after a large frame) and returns
// how many reserved bytes that frees.
func (fr *FrameReader) Shrink(keep int) int {
	if cap(fr.buf) <= keep {
		return 0
	}
	freed := fr.held
	fr.buf, fr.held = nil, 0
	return freed
}

// Decode parses a frame body of type t.
func Decode(t MsgType, body []byte) (Message, error) {
	d := reader{b: body}
	var m Message
	switch t {
	case MsgHello:
		h := &Hello{Version: d.uvarint(), Gateway: d.str(), BootID: d.str(), Floor: d.uvarint()}
		if h.Version >= 3 {
			h.MaxRecords, h.MaxBytes = d.uvarint(), d.uvarint()
		}
		m = h
	case MsgWelcome:
		w := &Welcome{Version: d.uvarint(), Highest: d.uvarint()}
		if w.Version >= 3 {
			w.MaxRecords, w.MaxBytes = d.uvarint(), d.uvarint()
		}
		m = w
	case MsgData:
		dm := &Data{First: d.uvarint(), Count: d.uvarint(), Codec: Codec(d.byte())}
		dm.Payload = d.rest()
		if d.err == nil && dm.Codec != CodecNone && dm.Codec != CodecZstd {
			d.err = fmt.Errorf("unknown codec %d", dm.Codec)
		}
		if d.err == nil && (dm.Count == 0 || dm.First == 0 || dm.First+dm.Count < dm.First) {
			d.err = fmt.Errorf("bad sequence range first=%d count=%d", dm.First, dm.Count)
		}
		m = dm
	case MsgAck:
		a := &Ack{Cumulative: d.uvarint()}
		if n := d.uvarint(); d.err == nil && n != 0 {
			d.err = fmt.Errorf("selective ack ranges (%d) are not supported over this transport", n)
		}
		m = a
	case MsgError:
		m = &Error{Code: ErrorCode(d.byte()), Message: d.str()}
	case MsgPing:
		m = &Ping{Nonce: d.uvarint()}
	case MsgPong:
		m = &Pong{Nonce: d.uvarint()}
	case MsgConfigStatus, MsgConfigOffer, MsgConfigPull, MsgConfigBundle:
		m = decodeConfig(t, &d)
	default:
		return nil, fmt.Errorf("uplink: unknown message type %d", uint8(t))
	}
	if d.err == nil && d.off != len(body) {
		d.err = fmt.Errorf("%d trailing bytes", len(body)-d.off)
	}
	if d.err != nil {
		return nil, fmt.Errorf("uplink: decode %s: %w", t, d.err)
	}
	return m, nil
}

// AppendRecord appends one record to a Data payload.
func AppendRecord(payload, rec []byte) []byte {
	payload = binary.AppendUvarint(payload, uint64(len(rec)))
	return append(payload, rec...)
}

// SplitRecords calls fn for each record in a Data payload (aliasing it)
// and checks that there are exactly count of them, none shorter than
// MinRecord.
func SplitRecords(payload []byte, count uint64, fn func(i uint64, rec []byte) error) error {
	d := reader{b: payload}
	var i uint64
	for d.off < len(payload) {
		n := d.uvarint()
		if d.err == nil && n > uint64(len(payload)-d.off) {
			d.err = fmt.Errorf("record %d: length %d exceeds payload", i, n)
		}
		if d.err == nil && n < MinRecord {
			d.err = fmt.Errorf("record %d: %d bytes, shorter than the %d-byte minimum", i, n, MinRecord)
		}
		if d.err != nil {
			return fmt.Errorf("uplink: data payload: %w", d.err)
		}
		if i >= count {
			return fmt.Errorf("uplink: data payload holds more than the %d records announced", count)
		}
		if err := fn(i, payload[d.off:d.off+int(n)]); err != nil {
			return err
		}
		d.off += int(n)
		i++
	}
	if i != count {
		return fmt.Errorf("uplink: data payload holds %d records, %d announced", i, count)
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// maxProtoString bounds ids and error texts.
const maxProtoString = 4096

type reader struct {
	b   []byte
	off int
	err error
}

func (d *reader) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *reader) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.err = errors.New("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *reader) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > maxProtoString || n > uint64(len(d.b)-d.off) {
		d.err = fmt.Errorf("string of %d bytes is truncated or too long", n)
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

func (d *reader) rest() []byte {
	if d.err != nil {
		return nil
	}
	r := d.b[d.off:]
	d.off = len(d.b)
	return r
}
