package integrity

import (
	"crypto/sha256"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"
)

func sampleEntries() []entry {
	return []entry{
		{Type: TypeAbsent},
		{Type: TypeFile, Mode: 0o644, UID: 0, GID: 0, Size: 1200, Mtime: 1763900000123456789, Inode: 1234, Hashed: true, SHA256: sha256.Sum256([]byte("x"))},
		{Type: TypeFile, Mode: 0o755 | fs.ModeSetuid | fs.ModeSetgid, UID: 1 << 31, GID: 1<<32 - 1, Size: 1 << 40, Mtime: -1, Inode: 1<<64 - 1, HashSkipped: true},
		{Type: TypeFile, Mode: 0o600, Unreadable: true},
		{Type: TypeDir, Mode: 0o1777 | fs.ModeSticky, Size: 4096, Inode: 2},
		{Type: TypeSymlink, Mode: 0o777, Target: "/etc/alternatives/editor", Inode: 3},
		{Type: TypeOther, Mode: 0o620},
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range sampleEntries() {
		e.Mode &= modeBits
		b := appendEntry(nil, &e)
		got, err := decodeEntry(b)
		require.NoError(t, err, "%+v", e)
		require.Equal(t, e, got)
	}
}

func TestDecodeEntryRefuses(t *testing.T) {
	file := sampleEntries()[1]
	good := appendEntry(nil, &file)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"version", []byte{2, 1}, "entry version 2"},
		{"type", []byte{1, 9}, "entry type 9 unknown"},
		{"absent tail", []byte{1, 0, 0}, "absent entry with 1 trailing"},
		{"flags", []byte{1, 1, 0x80}, "flags 0x80 unknown"},
		{"contradicting flags", []byte{1, 1, flagHashed | flagHashSkipped}, "contradict"},
		{"no flags", []byte{1, 1}, "truncated"},
		{"truncated sha", good[:len(good)-10], "truncated"},
		{"trailing", append(append([]byte{}, good...), 0), "trailing"},
		{"mode bits", []byte{1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0}, "unknown bits"},
		{"uid range", []byte{1, 1, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0}, "out of range"},
		{"target length", []byte{1, 3, 0, 0, 0, 0, 0, 0, 0, 5, 'a'}, "target of 5 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeEntry(tt.b)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestCompare(t *testing.T) {
	base := entry{Type: TypeFile, Mode: 0o644, Size: 10, Mtime: 100, Inode: 7, Hashed: true, SHA256: [32]byte{1}}
	with := func(f func(*entry)) *entry {
		e := base
		f(&e)
		return &e
	}
	dir := entry{Type: TypeDir, Mode: 0o755, Size: 4096, Mtime: 100, Inode: 8}
	link := entry{Type: TypeSymlink, Mode: 0o777, Target: "a", Mtime: 1, Inode: 9}
	absent := &entry{}
	tests := []struct {
		name     string
		old, cur *entry
		kind     string
		attrs    []string
	}{
		{"never seen, absent", nil, absent, "", nil},
		{"tombstone, absent", absent, absent, "", nil},
		{"equal", &base, with(func(*entry) {}), "", nil},
		{"created", nil, &base, ChangeCreated, nil},
		{"created after tombstone", absent, &base, ChangeCreated, nil},
		{"deleted", &base, absent, ChangeDeleted, nil},
		{"content", &base, with(func(e *entry) { e.SHA256[0] = 2; e.Size = 11; e.Mtime = 101 }), ChangeModified, []string{"sha256", "size", "mtime"}},
		{"touched", &base, with(func(e *entry) { e.Mtime = 101 }), ChangeModified, []string{"mtime"}},
		{"replaced", &base, with(func(e *entry) { e.Inode = 70 }), ChangeModified, []string{"inode"}},
		{"hash skipped now", &base, with(func(e *entry) { e.Hashed, e.HashSkipped, e.SHA256 = false, true, [32]byte{} }), ChangeModified, []string{"sha256"}},
		{"mode", &base, with(func(e *entry) { e.Mode = 0o600 }), ChangeMode, []string{"mode"}},
		{"owner", &base, with(func(e *entry) { e.UID, e.GID = 1, 2 }), ChangeOwner, []string{"uid", "gid"}},
		{"mode and owner", &base, with(func(e *entry) { e.Mode, e.GID = 0o600, 2 }), ChangeMode, []string{"mode", "gid"}},
		{"content wins over mode", &base, with(func(e *entry) { e.Mode, e.Size = 0o600, 1 }), ChangeModified, []string{"size", "mode"}},
		{"type", &base, &link, ChangeType, []string{"type", "target"}},
		{"dir size and mtime ignored", &dir, &entry{Type: TypeDir, Mode: 0o755, Size: 8192, Mtime: 200, Inode: 8}, "", nil},
		{"dir replaced", &dir, &entry{Type: TypeDir, Mode: 0o755, Inode: 80}, ChangeModified, []string{"inode"}},
		{"link remade, same target", &link, &entry{Type: TypeSymlink, Mode: 0o777, Target: "a", Mtime: 2, Inode: 90}, "", nil},
		{"link retargeted", &link, &entry{Type: TypeSymlink, Mode: 0o777, Target: "b"}, ChangeModified, []string{"target"}},
		{"unreadable both", &entry{Type: TypeFile, Unreadable: true}, &entry{Type: TypeFile, Unreadable: true}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, attrs := compare(tt.old, tt.cur)
			require.Equal(t, tt.kind, kind)
			require.Equal(t, tt.attrs, attrs)
		})
	}
}
