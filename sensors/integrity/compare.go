package integrity

// Change kinds, the "change" field of a record.
const (
	ChangeCreated  = "created"
	ChangeModified = "modified" // content: sha256, size, mtime, inode or target
	ChangeDeleted  = "deleted"
	ChangeMode     = "mode"
	ChangeOwner    = "owner"
	ChangeType     = "type"
)

// Attribute names, as they appear in a record's "changes" field and, with
// old_ and new_ before them, as its value fields.
const (
	attrType   = "type"
	attrSHA256 = "sha256"
	attrSize   = "size"
	attrMtime  = "mtime"
	attrInode  = "inode"
	attrTarget = "target"
	attrMode   = "mode"
	attrUID    = "uid"
	attrGID    = "gid"
)

// compare says how cur differs from the baseline entry old (nil: the path
// was never seen): the change kind, "" when nothing changed, and every
// attribute that differs.
//
// Size and mtime are compared for regular files only: a directory's change
// whenever an entry is added or removed, which is reported for the entry
// itself, and a FIFO's whenever it is written. Nor are a symlink's mode
// (always 0777 on Linux) and inode compared: ln -sf makes a new link, but
// only its target matters.
func compare(old *entry, cur *entry) (kind string, attrs []string) {
	oldPresent := old != nil && old.Type != TypeAbsent
	curPresent := cur.Type != TypeAbsent
	switch {
	case !oldPresent && !curPresent:
		return "", nil
	case !oldPresent:
		return ChangeCreated, nil
	case !curPresent:
		return ChangeDeleted, nil
	}
	if old.Type != cur.Type {
		attrs = append(attrs, attrType)
	}
	if old.Type == TypeFile && cur.Type == TypeFile {
		if old.Hashed != cur.Hashed || old.Hashed && old.SHA256 != cur.SHA256 {
			attrs = append(attrs, attrSHA256)
		}
		if old.Size != cur.Size {
			attrs = append(attrs, attrSize)
		}
		if old.Mtime != cur.Mtime {
			attrs = append(attrs, attrMtime)
		}
	}
	if old.Type != TypeSymlink && cur.Type != TypeSymlink && old.Inode != cur.Inode {
		attrs = append(attrs, attrInode)
	}
	if old.Target != cur.Target {
		attrs = append(attrs, attrTarget)
	}
	if old.Type != TypeSymlink && cur.Type != TypeSymlink && old.Mode != cur.Mode {
		attrs = append(attrs, attrMode)
	}
	if old.UID != cur.UID {
		attrs = append(attrs, attrUID)
	}
	if old.GID != cur.GID {
		attrs = append(attrs, attrGID)
	}
	if len(attrs) == 0 {
		return "", nil
	}
	// The most telling attribute names the change.
	kind = ChangeOwner
	for _, a := range attrs {
		switch a {
		case attrType:
			return ChangeType, attrs
		case attrSHA256, attrSize, attrMtime, attrInode, attrTarget:
			kind = ChangeModified
		case attrMode:
			if kind == ChangeOwner {
				kind = ChangeMode
			}
		}
	}
	return kind, attrs
}
