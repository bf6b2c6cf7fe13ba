package uplink

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Remote configuration (protocol version 4). After Welcome the gateway
// says what it runs (ConfigStatus); the collector offers the bundle it
// holds for that gateway when it is newer (ConfigOffer), then and
// whenever it changes; the gateway asks for it (ConfigPull) and gets it
// (ConfigBundle). The bundle is opaque here: its signature, version and
// target are checked by the gateway (docs/ARCHITECTURE.md, "Fleet
// configuration").
const (
	MsgConfigStatus MsgType = 8  // gateway → collector
	MsgConfigOffer  MsgType = 9  // collector → gateway
	MsgConfigPull   MsgType = 10 // gateway → collector
	MsgConfigBundle MsgType = 11 // collector → gateway
)

// MaxBundleBytes bounds one signed configuration bundle. An offer of a
// larger one is refused without pulling it, a ConfigBundle frame larger
// than it is refused before it is read, and weir-collector fleet push
// refuses to hold one. A configuration is a few KiB.
const MaxBundleBytes = 256 << 10

// MaxConfigLabels bounds the labels a gateway states in ConfigStatus.
const MaxConfigLabels = 32

// ControlFrameMax bounds every frame but Data once a session is open:
// a ConfigBundle is at most a bundle and its header, anything else fits
// in a Hello's bound.
func ControlFrameMax(t MsgType) int {
	if t == MsgConfigBundle {
		return MaxBundleBytes + 64
	}
	return HelloMaxFrame
}

// Digest is the SHA-256 of a bundle's bytes.
type Digest [32]byte

// DigestOf is b's digest.
func DigestOf(b []byte) Digest { return sha256.Sum256(b) }

func (d Digest) String() string { return fmt.Sprintf("%x", d[:6]) }

// Results a gateway reports in ConfigStatus.
const (
	ConfigApplied    = "applied"     // in force, the health check passed
	ConfigRefused    = "refused"     // not applied: the reason says why
	ConfigRolledBack = "rolled_back" // applied, failed its health check (or the gateway stopped meanwhile), the previous configuration restored
	ConfigApplying   = "applying"    // being applied and checked now
)

// ConfigStatus is the gateway's remote configuration: the bundle version
// in force (Applied, 0 for the local file alone), the newest version it
// has acted on (Highest: it takes none at or below it again), the last
// bundle it was offered or given and what came of it, and its labels
// (for the collector's target selectors).
type ConfigStatus struct {
	Applied uint64
	Highest uint64
	Version uint64
	Result  string
	Error   string
	Labels  []Label // sorted by key
}

// Label is one of a gateway's labels.
type Label struct{ Key, Value string }

// ConfigOffer says the collector holds bundle Version for this gateway,
// of Size bytes and with digest Digest.
type ConfigOffer struct {
	Version uint64
	Size    uint64
	Digest  Digest
}

// ConfigPull asks for the bundle offered.
type ConfigPull struct {
	Version uint64
	Digest  Digest
}

// ConfigBundle is the signed bundle asked for.
type ConfigBundle struct {
	Version uint64
	Bundle  []byte
}

func (*ConfigStatus) Type() MsgType { return MsgConfigStatus }
func (*ConfigOffer) Type() MsgType  { return MsgConfigOffer }
func (*ConfigPull) Type() MsgType   { return MsgConfigPull }
func (*ConfigBundle) Type() MsgType { return MsgConfigBundle }

func (m *ConfigStatus) appendBody(b []byte) []byte {
	b = binary.AppendUvarint(b, m.Applied)
	b = binary.AppendUvarint(b, m.Highest)
	b = binary.AppendUvarint(b, m.Version)
	b = appendString(b, m.Result)
	b = appendString(b, m.Error)
	b = binary.AppendUvarint(b, uint64(len(m.Labels)))
	for _, l := range m.Labels {
		b = appendString(b, l.Key)
		b = appendString(b, l.Value)
	}
	return b
}

func (m *ConfigOffer) appendBody(b []byte) []byte {
	b = binary.AppendUvarint(b, m.Version)
	b = binary.AppendUvarint(b, m.Size)
	return append(b, m.Digest[:]...)
}

func (m *ConfigPull) appendBody(b []byte) []byte {
	b = binary.AppendUvarint(b, m.Version)
	return append(b, m.Digest[:]...)
}

func (m *ConfigBundle) appendBody(b []byte) []byte {
	b = binary.AppendUvarint(b, m.Version)
	return append(b, m.Bundle...)
}

// decodeConfig decodes the version 4 messages; nothing is sized by what
// the peer declares before it is checked.
func decodeConfig(t MsgType, d *reader) Message {
	switch t {
	case MsgConfigStatus:
		m := &ConfigStatus{Applied: d.uvarint(), Highest: d.uvarint(), Version: d.uvarint(), Result: d.str(), Error: d.str()}
		n := d.uvarint()
		if d.err == nil && n > MaxConfigLabels {
			d.err = fmt.Errorf("%d labels, more than %d", n, MaxConfigLabels)
		}
		for i := uint64(0); d.err == nil && i < n; i++ {
			l := Label{Key: d.str(), Value: d.str()}
			if d.err == nil && len(m.Labels) > 0 && l.Key <= m.Labels[len(m.Labels)-1].Key {
				d.err = errors.New("labels not sorted by key, or a key twice")
			}
			m.Labels = append(m.Labels, l)
		}
		return m
	case MsgConfigOffer:
		m := &ConfigOffer{Version: d.uvarint(), Size: d.uvarint()}
		copy(m.Digest[:], d.bytes(len(m.Digest)))
		return m
	case MsgConfigPull:
		m := &ConfigPull{Version: d.uvarint()}
		copy(m.Digest[:], d.bytes(len(m.Digest)))
		return m
	default:
		m := &ConfigBundle{Version: d.uvarint(), Bundle: d.rest()}
		if d.err == nil && len(m.Bundle) > MaxBundleBytes {
			d.err = fmt.Errorf("bundle of %d bytes, more than %d", len(m.Bundle), MaxBundleBytes)
		}
		if d.err == nil && (m.Version == 0 || len(m.Bundle) == 0) {
			d.err = errors.New("empty bundle or version 0")
		}
		return m
	}
}

func (d *reader) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b)-d.off < n {
		d.err = errors.New("truncated")
		return nil
	}
	b := d.b[d.off : d.off+n]
	d.off += n
	return b
}
