package integrity

import (
	"encoding/hex"
	"fmt"
	"io/fs"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
)

// change makes the record of one change at p from old (nil if p was never
// seen) to cur. Every attribute of each side present goes into the fields,
// with old_ and new_ before its name; the message names what differs.
func (r *runner) change(p, kind string, attrs []string, old, cur *entry) event.Event {
	sev := event.SevWarning
	if r.m.self[p] {
		sev = event.SevCritical
	}
	fields := make([]event.Field, 0, 40)
	fields = append(fields, event.Str("path", p), event.Str("change", kind))
	if len(attrs) > 0 {
		fields = append(fields, event.Str("changes", strings.Join(attrs, ",")))
	}
	if old != nil && old.Type != TypeAbsent {
		fields = appendEntryFields(fields, "old_", old)
	}
	if cur.Type != TypeAbsent {
		fields = appendEntryFields(fields, "new_", cur)
	}
	return event.Event{
		Source:   Source,
		Kind:     event.KindIntegrity,
		Severity: sev,
		Priority: event.PriorityCritical,
		Message:  message(p, kind, attrs, old, cur),
		Fields:   fields,
	}
}

// summary is the one record of a new baseline.
func (r *runner) summary(roots []string, c *tally) event.Event {
	return event.Event{
		Source:   Source,
		Kind:     event.KindIntegrity,
		Severity: event.SevNotice,
		Priority: event.PriorityCritical,
		Message: fmt.Sprintf("baseline created: %d files under %s (%d regular, %d directories, %d symlinks, %d other)",
			c.total(), strings.Join(roots, ", "), c[TypeFile], c[TypeDir], c[TypeSymlink], c[TypeOther]),
		Fields: []event.Field{
			event.Str("change", "baseline"),
			event.Str("paths", strings.Join(roots, ",")),
			event.Int("files", int64(c.total())),
			event.Int("regular", int64(c[TypeFile])),
			event.Int("dirs", int64(c[TypeDir])),
			event.Int("symlinks", int64(c[TypeSymlink])),
			event.Int("other", int64(c[TypeOther])),
		},
	}
}

func appendEntryFields(f []event.Field, pre string, e *entry) []event.Field {
	f = append(f,
		event.Str(pre+attrType, e.Type.String()),
		event.Int(pre+attrSize, e.Size),
		event.Str(pre+attrMode, modeString(e)),
		event.Uint(pre+attrUID, uint64(e.UID)),
		event.Uint(pre+attrGID, uint64(e.GID)),
		event.Str(pre+attrMtime, time.Unix(0, e.Mtime).UTC().Format(time.RFC3339Nano)),
		event.Uint(pre+attrInode, e.Inode),
	)
	if u, err := user.LookupId(strconv.FormatUint(uint64(e.UID), 10)); err == nil {
		f = append(f, event.Str(pre+"user", u.Username))
	}
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(e.GID), 10)); err == nil {
		f = append(f, event.Str(pre+"group", g.Name))
	}
	switch {
	case e.Hashed:
		f = append(f, event.Str(pre+attrSHA256, hex.EncodeToString(e.SHA256[:])))
	case e.HashSkipped:
		f = append(f, event.Bool(pre+"hash_skipped", true))
	case e.Unreadable:
		f = append(f, event.Bool(pre+"unreadable", true))
	}
	if e.Target != "" {
		f = append(f, event.Str(pre+attrTarget, e.Target))
	}
	return f
}

// modeString is the mode in octal with its special bits, as chmod takes
// it: 0644, 4755.
func modeString(e *entry) string {
	m := uint32(e.Mode.Perm())
	if e.Mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if e.Mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if e.Mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return fmt.Sprintf("%04o", m)
}

// shortHash is the start of a hash for messages; fields carry it whole.
func shortHash(e *entry) string {
	switch {
	case e.Hashed:
		return hex.EncodeToString(e.SHA256[:4]) + "…"
	case e.HashSkipped:
		return "(not hashed: too large)"
	case e.Unreadable:
		return "(unreadable)"
	}
	return "-"
}

// message says what changed, e.g. "modified /etc/passwd: sha256
// ab12cd34…→ef56ab78…, size 1200→1234".
func message(p, kind string, attrs []string, old, cur *entry) string {
	var b strings.Builder
	b.WriteString(kind)
	b.WriteByte(' ')
	b.WriteString(p)
	switch kind {
	case ChangeCreated:
		fmt.Fprintf(&b, ": %s", describe(cur))
		return b.String()
	case ChangeDeleted:
		fmt.Fprintf(&b, ": was %s", describe(old))
		return b.String()
	}
	b.WriteString(": ")
	for i, a := range attrs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a)
		b.WriteByte(' ')
		switch a {
		case attrType:
			fmt.Fprintf(&b, "%s→%s", old.Type, cur.Type)
		case attrSHA256:
			fmt.Fprintf(&b, "%s→%s", shortHash(old), shortHash(cur))
		case attrSize:
			fmt.Fprintf(&b, "%d→%d", old.Size, cur.Size)
		case attrMtime:
			fmt.Fprintf(&b, "%s→%s", stamp(old.Mtime), stamp(cur.Mtime))
		case attrInode:
			fmt.Fprintf(&b, "%d→%d", old.Inode, cur.Inode)
		case attrTarget:
			fmt.Fprintf(&b, "%q→%q", old.Target, cur.Target)
		case attrMode:
			fmt.Fprintf(&b, "%s→%s", modeString(old), modeString(cur))
		case attrUID, attrGID:
			v := func(e *entry) uint32 {
				if a == attrUID {
					return e.UID
				}
				return e.GID
			}
			fmt.Fprintf(&b, "%d→%d", v(old), v(cur))
		}
	}
	return b.String()
}

// describe sums an entry up for created and deleted messages.
func describe(e *entry) string {
	s := fmt.Sprintf("%s, mode %s, owner %d:%d", e.Type, modeString(e), e.UID, e.GID)
	switch e.Type {
	case TypeFile:
		s += fmt.Sprintf(", size %d, sha256 %s", e.Size, shortHash(e))
	case TypeSymlink:
		s += fmt.Sprintf(", target %q", e.Target)
	}
	return s
}

func stamp(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339) }
