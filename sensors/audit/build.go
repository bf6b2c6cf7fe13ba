package audit

import (
	"errors"
	"strconv"
	"strings"

	"github.com/weirgw/weir/event"
)

// Limits of one record built from an event: the codec allows 1024 fields;
// the message is a summary, the whole text is in raw.
const (
	maxFields       = 1000
	maxMessageBytes = 1024
)

// errLineTooLong marks the pieces of a line longer than max_line_bytes.
var errLineTooLong = errors.New("line longer than max_line_bytes; emitted in pieces")

// builder turns Groups into records. It keeps scratch space between
// calls, so it is not safe for concurrent use.
type builder struct {
	source string // record source
	path   string // the file, for the path field
	// netlink is the netlink mode the records were read in; set, it is
	// the field netlink, in place of path and offset.
	netlink string
	keepRaw bool
	seen    map[string]struct{}
	msg     []byte
	// keys interns the field names made of parts ("path.1.name",
	// "uid_name"), so an event does not allocate them again.
	keys map[string]string
	kb   []byte
}

// maxInterned bounds keys: names come from the log, which may hold any.
const maxInterned = 1024

func newBuilder(source string, keepRaw bool) *builder {
	return &builder{source: source, keepRaw: keepRaw, seen: map[string]struct{}{}, keys: map[string]string{}}
}

// key returns a+b+c, lower-casing b when lower, interned.
func (b *builder) key(a, mid, c string, lower bool) string {
	kb := append(b.kb[:0], a...)
	for i := 0; i < len(mid); i++ {
		ch := mid[i]
		if lower && 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		kb = append(kb, ch)
	}
	kb = append(kb, c...)
	b.kb = kb
	if k, ok := b.keys[string(kb)]; ok {
		return k
	}
	k := string(kb)
	if len(b.keys) < maxInterned {
		b.keys[k] = k
	}
	return k
}

// summary is what the message and the severity are made from.
type summary struct {
	first       string // type of the first record
	hasSyscall  bool
	syscall     string // name or number
	success     int    // -1 unknown, 0 no, 1 yes
	exit        string
	avc         string // "denied { read }"
	avcType     string
	authFailure bool
	anomaly     bool
}

// event makes the record of g.
func (b *builder) event(g Group) event.Event {
	clear(b.seen)
	first := &g.Records[0]
	ev := event.Event{
		Source:   b.source,
		Kind:     event.KindAudit,
		Severity: event.SevInfo,
		Priority: event.PriorityNormal,
	}
	fields := make([]event.Field, 0, 16+6*len(g.Records))
	if b.netlink != "" {
		fields = append(fields, event.Str("netlink", b.netlink))
	} else {
		fields = append(fields, event.Str("path", b.path), event.Uint("offset", uint64(first.Offset)))
	}
	if first.Err != nil {
		fields = append(fields, event.Str("parse_error", first.Err.Error()))
		if errors.Is(first.Err, errLineTooLong) {
			fields = append(fields, event.Bool("truncated", true))
		}
		ev.Severity = event.SevNotice
		ev.Message = first.Line
		ev.Fields = fields
		return ev
	}
	ev.Observed = first.Time

	var types strings.Builder
	for i := range g.Records {
		if i > 0 {
			types.WriteByte(',')
		}
		types.WriteString(g.Records[i].Type)
	}
	fields = append(fields, event.Str("types", types.String()))
	if first.Node != "" {
		fields = append(fields, event.Str("node", first.Node))
	}
	fields = append(fields, event.Uint("serial", first.Serial))
	if g.Split {
		fields = append(fields, event.Bool("split", true))
	}
	for _, f := range fields {
		b.seen[f.Key] = struct{}{}
	}
	// A record's own path= or offset= field is not taken in either
	// source, so the two give the same fields.
	b.seen["raw"], b.seen["path"], b.seen["offset"] = struct{}{}, struct{}{}, struct{}{}

	s := summary{first: first.Type, success: -1}
	var args []string // EXECVE arguments
	for i := range g.Records {
		r := &g.Records[i]
		switch r.Type {
		case "PATH":
			fields = b.pathFields(fields, r, i)
			continue
		case "EXECVE":
			args = execveArgs(args, r)
			if v, ok := r.Get("argc"); ok {
				fields = b.addTyped(fields, "execve.argc", v)
			}
			continue
		case "PROCTITLE":
			if v, ok := r.Get("proctitle"); ok {
				fields = b.add(fields, event.Str("proctitle", proctitle(v)))
			}
			continue
		case "SYSCALL":
			s.hasSyscall = true
			fields = b.syscallFields(fields, r, &s)
		case "AVC", "USER_AVC":
			if s.avc == "" {
				s.avc, s.avcType = avcVerdict(r), r.Type
			}
		case "USER_AUTH", "USER_LOGIN", "USER_ACCT", "USER_ERR", "USER_CHAUTHTOK", "GRP_AUTH", "USER_MGMT", "CRED_ACQ", "USER_START":
			if v, _ := r.Get("res"); v == "failed" || v == "0" {
				s.authFailure = true
			}
		}
		if strings.HasPrefix(r.Type, "ANOM_") || r.Type == "SELINUX_ERR" || r.Type == "USER_SELINUX_ERR" {
			s.anomaly = true
		}
		for _, f := range r.Fields {
			if f.Key == "" || f.Value == "(null)" || f.Value == "?" {
				continue
			}
			switch f.Key {
			case "success":
				continue // added once, as a bool, at the end
			case "res":
				if s.success < 0 {
					switch f.Value {
					case "success", "1", "yes":
						s.success = 1
					case "failed", "0", "no":
						s.success = 0
					}
				}
			case "key":
				fields = b.add(fields, event.Str("key", strings.ReplaceAll(f.Value, "\x01", ",")))
				continue
			}
			fields = b.addTyped(fields, f.Key, f.Value)
		}
		for _, f := range r.Interp {
			switch f.Key {
			case "ARCH", "SYSCALL":
				continue // syscallFields took them
			}
			fields = b.add(fields, event.Str(b.key("", f.Key, "_name", true), f.Value))
		}
	}
	for n, a := range args {
		fields = b.add(fields, event.Str(b.key("execve.a", strconv.Itoa(n), "", false), a))
	}
	if s.success >= 0 {
		fields = b.add(fields, event.Bool("success", s.success == 1))
	}
	if s.avc != "" {
		fields = b.add(fields, event.Str("avc", s.avc))
	}
	if len(fields) >= maxFields {
		fields = append(fields[:maxFields], event.Bool("fields_truncated", true))
	}
	if b.keepRaw {
		fields = append(fields, event.Str("raw", rawLines(g)))
	}
	ev.Fields = fields
	ev.Severity, ev.Priority = severity(&s)
	ev.Message = b.message(&s, fields)
	return ev
}

// severity: denials, authentication failures and anomalies are warnings
// and critical (a full spool keeps them longest); other failures notices.
func severity(s *summary) (event.Severity, event.Priority) {
	switch {
	case strings.HasPrefix(s.avc, "denied") || s.authFailure || s.anomaly:
		return event.SevWarning, event.PriorityCritical
	case s.success == 0:
		return event.SevNotice, event.PriorityNormal
	}
	return event.SevInfo, event.PriorityNormal
}

// add appends f unless a field of its name is there already (the first
// record carrying a key wins) or the record is full.
func (b *builder) add(fields []event.Field, f event.Field) []event.Field {
	if len(fields) >= maxFields {
		if len(fields) == maxFields {
			fields = append(fields, event.Bool("fields_truncated", true))
		}
		return fields
	}
	if _, dup := b.seen[f.Key]; dup {
		return fields
	}
	b.seen[f.Key] = struct{}{}
	return append(fields, f)
}

// uintKeys and intKeys are the fields given as numbers when they parse.
var (
	uintKeys = map[string]bool{
		"pid": true, "ppid": true, "uid": true, "auid": true, "euid": true, "suid": true, "fsuid": true,
		"gid": true, "egid": true, "sgid": true, "fsgid": true, "ses": true, "items": true,
		"ouid": true, "ogid": true, "inode": true, "ino": true, "execve.argc": true, "old-auid": true,
		"old-ses": true, "audit_pid": true, "old": true, "list": true,
	}
	intKeys = map[string]bool{"exit": true}
)

func (b *builder) addTyped(fields []event.Field, key, v string) []event.Field {
	switch {
	case uintKeys[key]:
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			return b.add(fields, event.Uint(key, n))
		}
	case intKeys[key]:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return b.add(fields, event.Int(key, n))
		}
	}
	return b.add(fields, event.Str(key, v))
}

// syscallFields adds arch, syscall and syscall_name; exit and success
// follow as plain fields.
func (b *builder) syscallFields(fields []event.Field, r *Record, s *summary) []event.Field {
	arch, _ := r.Get("arch")
	name, table, known := archName(arch)
	if v, ok := r.interp("ARCH"); ok && !known {
		name = v
	}
	if name != "" {
		fields = b.add(fields, event.Str("arch", name))
		b.seen["arch"] = struct{}{}
	}
	nr, _ := r.Get("syscall")
	if n, err := strconv.ParseUint(nr, 10, 32); err == nil {
		fields = b.add(fields, event.Uint("syscall", n))
		sname, ok := r.interp("SYSCALL")
		if !ok {
			sname = table[uint32(n)]
		}
		if sname != "" {
			fields = b.add(fields, event.Str("syscall_name", sname))
			s.syscall = sname
		} else {
			s.syscall = nr
		}
	}
	if v, ok := r.Get("success"); ok && s.success < 0 {
		switch v {
		case "yes":
			s.success = 1
		case "no":
			s.success = 0
		}
	}
	s.exit, _ = r.Get("exit")
	return fields
}

// pathFields adds path.N.name, inode, dev, mode, ouid, ogid and nametype
// for the PATH record r, N being its item= (its index i if that is not a
// small number).
func (b *builder) pathFields(fields []event.Field, r *Record, i int) []event.Field {
	item, _ := r.Get("item")
	if n, err := strconv.ParseUint(item, 10, 16); err != nil || n > 999 {
		item = strconv.Itoa(i)
	}
	for _, f := range r.Fields {
		switch f.Key {
		case "name", "dev", "mode", "nametype":
			if f.Value != "(null)" {
				fields = b.add(fields, event.Str(b.key("path.", item, "."+f.Key, false), f.Value))
			}
		case "inode", "ouid", "ogid":
			if n, err := strconv.ParseUint(f.Value, 10, 64); err == nil {
				fields = b.add(fields, event.Uint(b.key("path.", item, "."+f.Key, false), n))
			}
		}
	}
	return fields
}

// execveArgs sets args[N] from EXECVE's aN, joining the pieces aN[0],
// aN[1]... of a long argument. Arguments are at most maxFields.
func execveArgs(args []string, r *Record) []string {
	for _, f := range r.Fields {
		if !isExecveArg(f.Key) {
			continue
		}
		num, piece := f.Key[1:], false
		if i := strings.IndexByte(num, '['); i >= 0 {
			num, piece = num[:i], true
		}
		n, err := strconv.Atoi(num)
		if err != nil || n >= maxFields {
			continue
		}
		for len(args) <= n {
			args = append(args, "")
		}
		if piece {
			args[n] += f.Value
		} else {
			args[n] = f.Value
		}
	}
	return args
}

// proctitle shows the command line with its NUL separators as spaces.
func proctitle(v string) string {
	return strings.TrimRight(strings.ReplaceAll(v, "\x00", " "), " ")
}

// avcVerdict is "denied { read }" (or granted) of an AVC or USER_AVC
// record: the words after "avc:" up to the first key=value.
func avcVerdict(r *Record) string {
	var words []string
	in := false
	for _, f := range r.Fields {
		switch {
		case f.Key == "" && f.Value == "avc:":
			in = true
		case !in:
		case f.Key != "":
			return strings.Join(words, " ")
		case f.Value != "for":
			words = append(words, f.Value)
		}
	}
	return strings.Join(words, " ")
}

func rawLines(g Group) string {
	n := 0
	for i := range g.Records {
		n += len(g.Records[i].Line) + 1
	}
	var sb strings.Builder
	sb.Grow(n)
	for i := range g.Records {
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(g.Records[i].Line)
	}
	return sb.String()
}

// summaryKeys are shown in the message when the event has them.
var (
	syscallSummaryKeys = []string{"exe", "uid", "auid", "key"}
	otherSummaryKeys   = []string{"op", "acct", "exe", "comm", "name", "key", "addr", "terminal", "scontext", "tcontext", "tclass", "res"}
)

// message is a one-line summary, e.g.
// "SYSCALL openat exe=/usr/bin/cat uid=65534 auid=4294967295 success=no exit=-13".
func (b *builder) message(s *summary, fields []event.Field) string {
	m := b.msg[:0]
	keys := otherSummaryKeys
	switch {
	case s.avc != "":
		m = append(m, s.avcType...)
		m = append(m, ' ')
		m = append(m, s.avc...)
	case s.hasSyscall && s.first == "SYSCALL":
		m = append(m, "SYSCALL "...)
		m = append(m, s.syscall...)
		keys = syscallSummaryKeys
	default:
		m = append(m, s.first...)
	}
	for _, k := range keys {
		for _, f := range fields {
			if f.Key == k {
				m = append(m, ' ')
				m = append(m, k...)
				m = append(m, '=')
				m = appendValue(m, f.Value.String())
				break
			}
		}
	}
	if s.avc != "" || s.hasSyscall && s.first == "SYSCALL" {
		switch s.success {
		case 1:
			m = append(m, " success=yes"...)
		case 0:
			m = append(m, " success=no"...)
			if s.exit != "" {
				m = append(m, " exit="...)
				m = append(m, s.exit...)
			}
		}
	}
	if len(m) > maxMessageBytes {
		m = m[:maxMessageBytes]
	}
	b.msg = m
	return string(m)
}

// appendValue quotes v when it holds a space, quote or control byte, so
// the summary stays one unambiguous line.
func appendValue(m []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == '"' || c == 0x7f {
			return strconv.AppendQuote(m, v)
		}
	}
	return append(m, v...)
}
