package audit

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		node   string
		typ    string
		time   int64
		serial uint64
		fields map[string]string // key → value of its first field
		enc    []string          // keys whose value was hex in the log
		interp map[string]string
	}{
		{
			name: "syscall raw",
			line: `type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=2 success=no exit=-13 comm="cat" exe="/bin/cat" key="sshd_config"`,
			typ:  "SYSCALL", time: 1364481363_243_000_000, serial: 24287,
			fields: map[string]string{"arch": "c000003e", "syscall": "2", "success": "no", "exit": "-13", "comm": "cat", "exe": "/bin/cat", "key": "sshd_config"},
		},
		{
			name: "enriched",
			line: "type=SYSCALL msg=audit(1795444792.090:14): arch=c000003e syscall=257 success=no exit=-13 uid=65534 tty=(none) key=(null)\x1dARCH=x86_64 SYSCALL=openat UID=\"nobody\" SADDR={ saddr_fam=netlink nlnk-fam=16 }",
			typ:  "SYSCALL", time: 1795444792_090_000_000, serial: 14,
			fields: map[string]string{"syscall": "257", "tty": "(none)", "key": "(null)"},
			interp: map[string]string{"ARCH": "x86_64", "SYSCALL": "openat", "UID": "nobody", "SADDR": "{ saddr_fam=netlink nlnk-fam=16 }"},
		},
		{
			name: "node prefix and hex",
			line: `node=gw01 type=PROCTITLE msg=audit(1700000000.123:4567): proctitle=7368002D63006563686F`,
			node: "gw01", typ: "PROCTITLE", time: 1700000000_123_000_000, serial: 4567,
			fields: map[string]string{"proctitle": "sh\x00-c\x00echo"}, enc: []string{"proctitle"},
		},
		{
			name: "hex path name, null name",
			line: `type=PATH msg=audit(1.5:1): item=3 name=2F746D702F612062 inode=9 mode=0100644 nametype=CREATE`,
			typ:  "PATH", time: 1_500_000_000, serial: 1,
			fields: map[string]string{"item": "3", "name": "/tmp/a b", "mode": "0100644"}, enc: []string{"name"},
		},
		{
			name: "name (null) kept",
			line: `type=PATH msg=audit(1.000:2): item=1 name=(null) inode=4011`,
			typ:  "PATH", time: 1e9, serial: 2,
			fields: map[string]string{"name": "(null)", "inode": "4011"},
		},
		{
			name: "odd hex kept raw",
			line: `type=CWD msg=audit(1.000:3): cwd=2F7`,
			typ:  "CWD", time: 1e9, serial: 3,
			fields: map[string]string{"cwd": "2F7"},
		},
		{
			name: "syscall args are not decoded",
			line: `type=SYSCALL msg=audit(1.000:4): a0=ffffff9c a1=7ffd a2=0`,
			typ:  "SYSCALL", time: 1e9, serial: 4,
			fields: map[string]string{"a0": "ffffff9c", "a1": "7ffd", "a2": "0"},
		},
		{
			name: "execve args decoded",
			line: `type=EXECVE msg=audit(1.000:5): argc=3 a0="env" a1=6172672077697468 a2_len=4 a2[0]=4142 a2[1]=4344`,
			typ:  "EXECVE", time: 1e9, serial: 5,
			fields: map[string]string{"argc": "3", "a0": "env", "a1": "arg with", "a2_len": "4", "a2[0]": "AB", "a2[1]": "CD"},
			enc:    []string{"a1", "a2[0]", "a2[1]"},
		},
		{
			name: "user message flattened",
			line: `type=USER_LOGIN msg=audit(1464316036.478:1125): pid=2875 uid=0 auid=4294967295 msg='op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=192.168.1.10 terminal=ssh res=failed'`,
			typ:  "USER_LOGIN", time: 1464316036_478_000_000, serial: 1125,
			fields: map[string]string{"pid": "2875", "op": "login", "acct": "root", "exe": "/usr/sbin/sshd",
				"hostname": "?", "addr": "192.168.1.10", "terminal": "ssh", "res": "failed"},
		},
		{
			name: "user cmd hex",
			line: `type=USER_CMD msg=audit(1.000:6): pid=1 msg='cwd="/root" cmd=636174202F6574632F736861646F77 res=success'`,
			typ:  "USER_CMD", time: 1e9, serial: 6,
			fields: map[string]string{"cwd": "/root", "cmd": "cat /etc/shadow", "res": "success"}, enc: []string{"cmd"},
		},
		{
			name: "avc bare words",
			line: `type=AVC msg=audit(1226270358.848:238): avc:  denied  { write } for  pid=13349 comm="certwatch" tclass=dir`,
			typ:  "AVC", time: 1226270358_848_000_000, serial: 238,
			fields: map[string]string{"": "avc:", "pid": "13349", "comm": "certwatch", "tclass": "dir"},
		},
		{
			name: "eoe with trailing space",
			line: `type=EOE msg=audit(1700000000.123:4567): `,
			typ:  "EOE", time: 1700000000_123_000_000, serial: 4567,
		},
		{
			name: "documentation's ') :'",
			line: `type=PROCTITLE msg=audit(1364481363.243:24287) : proctitle=636174`,
			typ:  "PROCTITLE", time: 1364481363_243_000_000, serial: 24287,
			fields: map[string]string{"proctitle": "cat"}, enc: []string{"proctitle"},
		},
		{
			name: "unknown type number",
			line: `type=UNKNOWN[1334] msg=audit(1.000:7): prog-id=12 op=LOAD`,
			typ:  "UNKNOWN[1334]", time: 1e9, serial: 7,
			fields: map[string]string{"prog-id": "12", "op": "LOAD"},
		},
		{
			name: "microseconds",
			line: `type=DAEMON_START msg=audit(1.000001:8): op=start`,
			typ:  "DAEMON_START", time: 1_000_001_000, serial: 8,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseLine(tt.line)
			require.NoError(t, err)
			require.Equal(t, tt.line, r.Line)
			require.Equal(t, tt.node, r.Node)
			require.Equal(t, tt.typ, r.Type)
			require.Equal(t, tt.time, r.Time)
			require.Equal(t, tt.serial, r.Serial)
			for k, want := range tt.fields {
				got, ok := r.Get(k)
				require.True(t, ok, "no field %q in %+v", k, r.Fields)
				require.Equal(t, want, got, "field %q", k)
			}
			var enc []string
			for _, f := range r.Fields {
				if f.Encoded {
					enc = append(enc, f.Key)
				}
			}
			require.Equal(t, tt.enc, enc)
			for k, want := range tt.interp {
				got, ok := r.interp(k)
				require.True(t, ok, "no interpreted %q in %+v", k, r.Interp)
				require.Equal(t, want, got)
			}
			if tt.interp == nil {
				require.Empty(t, r.Interp)
			}
		})
	}
}

func TestParseLineErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{"", "does not start with type="},
		{"hello world", "does not start with type="},
		{"node=gw01", "node= but no type="},
		{"type=SYSCALL", "no msg=audit(...)"},
		{"type= msg=audit(1.000:1): a=b", "empty type="},
		{"type=SYSCALL foo=bar", "no msg=audit( after type=SYSCALL"},
		{"type=SYSCALL msg=audit(1.000:1 a=b", "msg=audit( not closed"},
		{"type=SYSCALL msg=audit(1.000:1) a=b", "no ':' after msg=audit(...)"},
		{"type=SYSCALL msg=audit(1700000000:1): a=b", "not SECONDS.MILLIS:SERIAL"},
		{"type=SYSCALL msg=audit(x.000:1): a=b", "seconds are not a number"},
		{"type=SYSCALL msg=audit(99999999999.000:1): a=b", "seconds are not a number"},
		{"type=SYSCALL msg=audit(1.:1): a=b", "not 1 to 9 digits"},
		{"type=SYSCALL msg=audit(1.0x0:1): a=b", "fraction of a second is not a number"},
		{"type=SYSCALL msg=audit(1.000:): a=b", "serial is not a number"},
		{`type=SYSCALL msg=audit(1.000:1): comm="cat exe=/bin/cat`, `value of comm: no closing "`},
		{`type=USER_LOGIN msg=audit(1.000:1): msg='op=login acct="root`, "no closing '"},
		{"type=SYSCALL msg=audit(1.000:1): a=b\x1dUID=\"root", "enriched part: value of UID"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			r, err := ParseLine(tt.line)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, tt.line, r.Line, "the line is kept for the raw record")
		})
	}
}

// TestParseTestdata: every line of the captured and documented logs
// parses, and each has the fields every record of its type has.
func TestParseTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.log")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			lines := readLines(t, name)
			require.NotEmpty(t, lines)
			for i, l := range lines {
				r, err := ParseLine(l)
				require.NoError(t, err, "%s:%d", name, i+1)
				require.NotZero(t, r.Time, "%s:%d", name, i+1)
				switch r.Type {
				case "SYSCALL":
					for _, k := range []string{"arch", "syscall", "success", "exit", "pid", "uid", "auid", "exe", "key"} {
						_, ok := r.Get(k)
						require.True(t, ok, "%s:%d: no %s", name, i+1, k)
					}
				case "PROCTITLE":
					v, _ := r.Get("proctitle")
					require.NotEmpty(t, v, "%s:%d", name, i+1)
				}
				if strings.HasPrefix(filepath.Base(name), "auditd-") && r.Type == "SYSCALL" {
					require.NotEmpty(t, r.Interp, "%s:%d: enriched format", name, i+1)
				}
			}
		})
	}
}

func readLines(t testing.TB, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	require.NoError(t, err)
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NoError(t, sc.Err())
	return lines
}
