package integrity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
)

// FileType is what a path held when it was looked at.
type FileType uint8

const (
	TypeAbsent FileType = iota // nothing there; stored only for a root (older versions: for any deleted path)
	TypeFile
	TypeDir
	TypeSymlink
	TypeOther // device, FIFO or socket
	typeCount
)

var typeNames = [typeCount]string{"absent", "file", "dir", "symlink", "other"}

func (t FileType) String() string {
	if t < typeCount {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// entry is what the baseline holds for one path.
type entry struct {
	Type  FileType
	Mode  fs.FileMode // permission bits, setuid, setgid and sticky only
	UID   uint32
	GID   uint32
	Size  int64
	Mtime int64 // ns since the Unix epoch
	Inode uint64
	// Hashed says SHA256 holds the content's hash. A regular file is not
	// hashed when it is larger than max_file_bytes (HashSkipped) or could
	// not be read (Unreadable).
	Hashed      bool
	HashSkipped bool
	Unreadable  bool
	SHA256      [32]byte
	Target      string // a symlink's target

	// dev is the device, for the walk's loop guard; not stored.
	dev uint64
}

// modeBits are the mode bits an entry keeps; the type is in Type.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// Encoding of an entry, the position of its checkpoint "fim:<path>":
//
//	version  byte (1)
//	type     byte; TypeAbsent ends the encoding (an absent root)
//	flags    byte: 1 hashed, 2 hash skipped, 4 unreadable
//	mode, uid, gid, size: uvarint each
//	mtime    zig-zag varint, ns
//	inode    uvarint
//	sha256   32 bytes, only when hashed
//	target   uvarint length + bytes (empty but for symlinks)
const (
	entryVersion = 1

	flagHashed      = 1
	flagHashSkipped = 2
	flagUnreadable  = 4
	flagsKnown      = flagHashed | flagHashSkipped | flagUnreadable

	// maxTarget bounds a decoded symlink target; Linux allows 4095 bytes.
	maxTarget = 64 << 10
)

// appendEntry appends the encoding of e to b.
func appendEntry(b []byte, e *entry) []byte {
	b = append(b, entryVersion, byte(e.Type))
	if e.Type == TypeAbsent {
		return b
	}
	var flags byte
	if e.Hashed {
		flags |= flagHashed
	}
	if e.HashSkipped {
		flags |= flagHashSkipped
	}
	if e.Unreadable {
		flags |= flagUnreadable
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(e.Mode&modeBits))
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	b = binary.AppendUvarint(b, uint64(max(e.Size, 0)))
	b = binary.AppendVarint(b, e.Mtime)
	b = binary.AppendUvarint(b, e.Inode)
	if e.Hashed {
		b = append(b, e.SHA256[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Target)))
	return append(b, e.Target...)
}

var errTruncated = errors.New("truncated")

// decodeEntry decodes what appendEntry wrote. It refuses anything else:
// unknown versions, types or flags, values out of range, trailing bytes.
func decodeEntry(b []byte) (entry, error) {
	var e entry
	if len(b) < 2 {
		return e, fmt.Errorf("entry of %d bytes: %w", len(b), errTruncated)
	}
	if b[0] != entryVersion {
		return e, fmt.Errorf("entry version %d, want %d", b[0], entryVersion)
	}
	e.Type = FileType(b[1])
	if e.Type >= typeCount {
		return e, fmt.Errorf("entry type %d unknown", b[1])
	}
	b = b[2:]
	if e.Type == TypeAbsent {
		if len(b) != 0 {
			return e, fmt.Errorf("absent entry with %d trailing bytes", len(b))
		}
		return e, nil
	}
	if len(b) < 1 {
		return e, fmt.Errorf("entry flags: %w", errTruncated)
	}
	flags := b[0]
	b = b[1:]
	if flags&^flagsKnown != 0 {
		return e, fmt.Errorf("entry flags %#x unknown", flags)
	}
	e.Hashed, e.HashSkipped, e.Unreadable = flags&flagHashed != 0, flags&flagHashSkipped != 0, flags&flagUnreadable != 0
	if e.Hashed && (e.HashSkipped || e.Unreadable) {
		return e, fmt.Errorf("entry flags %#x contradict each other", flags)
	}
	var vals [4]uint64
	for i, name := range [4]string{"mode", "uid", "gid", "size"} {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return e, fmt.Errorf("entry %s: %w", name, errTruncated)
		}
		vals[i], b = v, b[n:]
	}
	if vals[0]&^uint64(modeBits) != 0 {
		return e, fmt.Errorf("entry mode %#x holds unknown bits", vals[0])
	}
	if vals[1] > 1<<32-1 || vals[2] > 1<<32-1 || vals[3] > 1<<63-1 {
		return e, errors.New("entry uid, gid or size out of range")
	}
	e.Mode, e.UID, e.GID, e.Size = fs.FileMode(vals[0]), uint32(vals[1]), uint32(vals[2]), int64(vals[3])
	mtime, n := binary.Varint(b)
	if n <= 0 {
		return e, fmt.Errorf("entry mtime: %w", errTruncated)
	}
	e.Mtime, b = mtime, b[n:]
	inode, n := binary.Uvarint(b)
	if n <= 0 {
		return e, fmt.Errorf("entry inode: %w", errTruncated)
	}
	e.Inode, b = inode, b[n:]
	if e.Hashed {
		if len(b) < len(e.SHA256) {
			return e, fmt.Errorf("entry sha256: %w", errTruncated)
		}
		b = b[copy(e.SHA256[:], b):]
	}
	tl, n := binary.Uvarint(b)
	if n <= 0 {
		return e, fmt.Errorf("entry target length: %w", errTruncated)
	}
	b = b[n:]
	if tl > maxTarget || tl > uint64(len(b)) {
		return e, fmt.Errorf("entry target of %d bytes with %d left", tl, len(b))
	}
	e.Target, b = string(b[:tl]), b[tl:]
	if len(b) != 0 {
		return e, fmt.Errorf("entry with %d trailing bytes", len(b))
	}
	return e, nil
}
