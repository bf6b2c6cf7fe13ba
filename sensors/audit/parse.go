package audit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Record is one line of the audit log.
type Record struct {
	Node   string // node= prefix of a forwarded or node-tagged log; "" if none
	Type   string // e.g. SYSCALL, PATH, USER_LOGIN, UNKNOWN[1334]
	Time   int64  // ns since the Unix epoch (the log gives milliseconds)
	Serial uint64
	// Fields are the key=value pairs in line order; the contents of a
	// userspace record's msg='...' are flattened in. Bare words (AVC's
	// "denied { read } for") have an empty Key.
	Fields []Field
	// Interp are the interpreted values auditd's enriched format appends
	// after a 0x1d byte: UID="root", ARCH=x86_64, SYSCALL=openat...
	Interp []Field
	// Line is the whole line without its newline.
	Line string
	// Offset of the line in its file; set by the reader.
	Offset int64
	// Err says the line could not be parsed; then only Line and Offset
	// are set, and the line is still emitted, flagged parse_error.
	Err error
}

// Field is one key=value of a record.
type Field struct {
	Key   string
	Value string // without quotes; hex-decoded when Encoded
	// Quoted says the value was in double quotes: for the fields the
	// kernel encodes, that means it was plain text.
	Quoted bool
	// Encoded says the value was hex in the log and Value is decoded.
	Encoded bool
}

// Get returns the value of the first field named key.
func (r *Record) Get(key string) (string, bool) {
	for i := range r.Fields {
		if r.Fields[i].Key == key {
			return r.Fields[i].Value, true
		}
	}
	return "", false
}

// interp returns the value of the first interpreted field named key.
func (r *Record) interp(key string) (string, bool) {
	for i := range r.Interp {
		if r.Interp[i].Key == key {
			return r.Interp[i].Value, true
		}
	}
	return "", false
}

// enrichSep starts the enriched format's interpreted section.
const enrichSep = 0x1d

// maxSeconds keeps Time within int64 nanoseconds (year 2262).
const maxSeconds = 9_000_000_000

// ParseLine parses one audit log line (without its newline):
//
//	[node=NAME ]type=TYPE msg=audit(SECONDS.MILLIS:SERIAL): key=value ...[\x1dKEY=value ...]
//
// Values may be bare, "double-quoted", 'single-quoted' (msg='...', whose
// key=value pairs are flattened into Fields) or {braced}. Values of the
// fields the kernel hex-encodes (proctitle, exe, comm, name, cwd, key,
// data, cmd, acct, EXECVE's aN, ...) are decoded when they are bare, of
// even length and all hex; otherwise kept as they are. The error says what
// is wrong; the caller names the file and offset.
func ParseLine(line string) (Record, error) {
	r := Record{Line: line}
	rest := line
	if strings.HasPrefix(rest, "node=") {
		sp := strings.IndexByte(rest, ' ')
		if sp < 0 {
			return Record{Line: line}, errors.New("node= but no type= after it")
		}
		r.Node = rest[len("node="):sp]
		rest = strings.TrimLeft(rest[sp:], " ")
	}
	if !strings.HasPrefix(rest, "type=") {
		return Record{Line: line}, errors.New("does not start with type=")
	}
	sp := strings.IndexByte(rest, ' ')
	if sp < 0 {
		return Record{Line: line}, errors.New("no msg=audit(...) after type=")
	}
	r.Type = rest[len("type="):sp]
	if r.Type == "" {
		return Record{Line: line}, errors.New("empty type=")
	}
	rest = strings.TrimLeft(rest[sp:], " ")
	if !strings.HasPrefix(rest, "msg=audit(") {
		return Record{Line: line}, fmt.Errorf("no msg=audit( after type=%s", r.Type)
	}
	rest = rest[len("msg=audit("):]
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return Record{Line: line}, fmt.Errorf("type=%s: msg=audit( not closed", r.Type)
	}
	var err error
	if r.Time, r.Serial, err = parseStamp(rest[:end]); err != nil {
		return Record{Line: line}, fmt.Errorf("type=%s: msg=audit(%s): %w", r.Type, rest[:end], err)
	}
	// "):", or ") :" as some documentation prints it.
	rest = strings.TrimLeft(rest[end+1:], " ")
	if !strings.HasPrefix(rest, ":") {
		return Record{Line: line}, fmt.Errorf("type=%s: no ':' after msg=audit(...)", r.Type)
	}
	rest = rest[1:]
	body, interp := rest, ""
	if i := strings.IndexByte(rest, enrichSep); i >= 0 {
		body, interp = rest[:i], rest[i+1:]
	}
	n := strings.Count(body, "=")
	r.Fields = make([]Field, 0, n+strings.Count(body, " ")/4)
	if r.Fields, err = parseFields(r.Fields, body, r.Type, true); err != nil {
		return Record{Line: line}, fmt.Errorf("type=%s: %w", r.Type, err)
	}
	if interp != "" {
		r.Interp = make([]Field, 0, strings.Count(interp, "="))
		if r.Interp, err = parseFields(r.Interp, interp, "", false); err != nil {
			return Record{Line: line}, fmt.Errorf("type=%s: enriched part: %w", r.Type, err)
		}
	}
	return r, nil
}

// parseStamp parses "SECONDS.FRACTION:SERIAL".
func parseStamp(s string) (ns int64, serial uint64, err error) {
	dot := strings.IndexByte(s, '.')
	colon := strings.IndexByte(s, ':')
	if dot < 0 || colon < dot {
		return 0, 0, errors.New("timestamp is not SECONDS.MILLIS:SERIAL")
	}
	sec, ok := digits(s[:dot], maxSeconds)
	if !ok {
		return 0, 0, errors.New("seconds are not a number")
	}
	frac := s[dot+1 : colon]
	if len(frac) == 0 || len(frac) > 9 {
		return 0, 0, errors.New("fraction of a second is not 1 to 9 digits")
	}
	f, ok := digits(frac, 999_999_999)
	if !ok {
		return 0, 0, errors.New("fraction of a second is not a number")
	}
	for i := len(frac); i < 9; i++ {
		f *= 10
	}
	serial, ok = digits(s[colon+1:], 1<<63)
	if !ok {
		return 0, 0, errors.New("serial is not a number")
	}
	return int64(sec)*1e9 + int64(f), serial, nil
}

// digits parses a non-empty run of decimal digits no greater than limit.
func digits(s string, limit uint64) (uint64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n <= limit
}

// parseFields appends the fields of s to out. nested allows one level of
// msg='...' to be flattened.
func parseFields(out []Field, s, typ string, nested bool) ([]Field, error) {
	i := 0
	for {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' {
			i++
		}
		if i >= len(s) || s[i] == ' ' || i == start {
			// A bare word, or "=..." with no key: kept as a word.
			for i < len(s) && s[i] != ' ' {
				i++
			}
			out = append(out, Field{Value: s[start:i]})
			continue
		}
		key := s[start:i]
		i++ // '='
		if i < len(s) {
			var closer byte
			switch s[i] {
			case '"':
				closer = '"'
			case '\'':
				closer = '\''
			case '{':
				closer = '}'
			}
			if closer != 0 {
				j := strings.IndexByte(s[i+1:], closer)
				if j < 0 {
					return out, fmt.Errorf("value of %s: no closing %c", key, closer)
				}
				val := s[i+1 : i+1+j]
				q := s[i]
				i += j + 2
				if q == '\'' && key == "msg" && nested {
					var err error
					if out, err = parseFields(out, val, typ, false); err != nil {
						return out, fmt.Errorf("msg='...': %w", err)
					}
					continue
				}
				if q == '{' {
					val = s[i-j-2 : i] // keep the braces: a structure, not a string
				}
				out = append(out, Field{Key: key, Value: val, Quoted: q == '"'})
				continue
			}
		}
		vs := i
		for i < len(s) && s[i] != ' ' {
			i++
		}
		f := Field{Key: key, Value: s[vs:i]}
		if encodedKey(typ, key) && isHex(f.Value) {
			b, _ := hex.DecodeString(f.Value) // isHex checked it
			f.Value, f.Encoded = string(b), true
		}
		out = append(out, f)
	}
}

// encodedKey says whether the kernel (or auditd) hex-encodes key's value
// when it holds a space, quote, control character or non-ASCII byte.
func encodedKey(typ, key string) bool {
	switch key {
	case "proctitle", "exe", "comm", "name", "cwd", "key", "data", "cmd",
		"acct", "path", "dir", "file", "ocomm", "root_dir", "watch":
		return true
	}
	return typ == "EXECVE" && isExecveArg(key)
}

// isExecveArg matches EXECVE's a0, a12 and the pieces of a long argument,
// a1[0], a1[1]...; not a1_len.
func isExecveArg(key string) bool {
	if len(key) < 2 || key[0] != 'a' {
		return false
	}
	i := 1
	for i < len(key) && key[i] >= '0' && key[i] <= '9' {
		i++
	}
	if i == 1 {
		return false
	}
	if i == len(key) {
		return true
	}
	if key[i] != '[' || key[len(key)-1] != ']' || i+2 == len(key) {
		return false
	}
	for _, c := range []byte(key[i+1 : len(key)-1]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	if len(s) == 0 || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
