package audit

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

var update = flag.Bool("update", false, "rewrite testdata/*.events.json")

// eventsOf builds the records of a log file's lines as the reader would
// (the offset of each line its byte offset).
func eventsOf(t testing.TB, lines []string, keepRaw bool) []event.Event {
	t.Helper()
	g := NewGrouper(time.Second)
	b := newBuilder("audit", keepRaw)
	b.path = "/var/log/audit/audit.log"
	var evs []event.Event
	var off int64
	for _, l := range lines {
		r, err := ParseLine(l)
		if err != nil {
			r.Err = err
		}
		r.Offset = off
		off += int64(len(l)) + 1
		g.Add(r, time.Time{})
		for _, grp := range g.Take() {
			evs = append(evs, b.event(grp))
		}
	}
	g.Flush()
	for _, grp := range g.Take() {
		evs = append(evs, b.event(grp))
	}
	return evs
}

func fieldMap(ev event.Event) map[string]any {
	m := map[string]any{}
	for _, f := range ev.Fields {
		switch f.Value.Type {
		case event.TypeString:
			m[f.Key] = f.Value.Str
		case event.TypeUint:
			m[f.Key] = f.Value.Num
		case event.TypeInt:
			m[f.Key] = f.Value.Int()
		case event.TypeBool:
			m[f.Key] = f.Value.Bool()
		}
	}
	return m
}

func findEvent(t *testing.T, evs []event.Event, serial uint64) event.Event {
	t.Helper()
	for _, ev := range evs {
		if v, ok := fieldMap(ev)["serial"]; ok && v == serial {
			return ev
		}
	}
	t.Fatalf("no event with serial %d", serial)
	return event.Event{}
}

func TestEventFields(t *testing.T) {
	live := eventsOf(t, readLines(t, "testdata/auditd-3.0.9-enriched.log"), true)
	docs := eventsOf(t, readLines(t, "testdata/docs-raw.log"), true)
	tests := []struct {
		name   string
		ev     event.Event
		sev    event.Severity
		prio   event.Priority
		msg    string
		fields map[string]any
		absent []string
	}{
		{
			name: "execve with hex arguments and cwd (live)",
			ev:   findEvent(t, live, 13),
			sev:  event.SevInfo, prio: event.PriorityNormal,
			msg: `SYSCALL execve exe=/usr/bin/env uid=0 auid=4294967295 key=exec-env success=yes`,
			fields: map[string]any{
				"types": "SYSCALL,BPRM_FCAPS,EXECVE,CWD,PATH,PATH,PROCTITLE",
				"arch":  "x86_64", "syscall": uint64(59), "syscall_name": "execve", "success": true, "exit": int64(0),
				"exe": "/usr/bin/env", "comm": "env", "uid": uint64(0), "auid": uint64(4294967295), "key": "exec-env",
				"cwd": "/tmp/aud dir", "execve.argc": uint64(8), "execve.a0": "env", "execve.a4": "arg with space",
				"execve.a5": `quote"d`, "execve.a6": "tab\there", "execve.a7": "plain",
				"path.0.name": "/usr/bin/env", "path.0.inode": uint64(247149), "path.0.mode": "0100755", "path.0.nametype": "NORMAL",
				"path.1.name": "/lib64/ld-linux-x86-64.so.2",
				"proctitle":   "env -i A=1 /bin/true arg with space quote\"d tab\there plain",
				"auid_name":   "unset", "uid_name": "root", "tty": "(none)",
				"path": "/var/log/audit/audit.log",
			},
		},
		{
			name: "failed open (live)",
			ev:   findEvent(t, live, 14),
			sev:  event.SevNotice, prio: event.PriorityNormal,
			msg: `SYSCALL openat exe=/usr/bin/cat uid=65534 auid=4294967295 key=access-denied success=no exit=-13`,
			fields: map[string]any{
				"syscall_name": "openat", "success": false, "exit": int64(-13), "uid": uint64(65534),
				"path.0.name": "/etc/shadow", "cwd": "/tmp/aud dir", "proctitle": "cat /etc/shadow",
			},
		},
		{
			name: "rename with a hex path (live)",
			ev:   findEvent(t, live, 11),
			sev:  event.SevInfo, prio: event.PriorityNormal,
			fields: map[string]any{
				"syscall_name": "renameat2", "path.3.name": "/tmp/audwatch/file 2", "path.3.nametype": "CREATE",
				"path.2.nametype": "DELETE", "key": "watch-tmp",
			},
		},
		{
			name: "authentication failure (live)",
			ev:   findEvent(t, live, 20),
			sev:  event.SevWarning, prio: event.PriorityCritical,
			msg: `USER_AUTH op=PAM:authentication acct=root exe=/usr/bin/su terminal=/dev/pts/0 res=failed`,
			fields: map[string]any{
				"success": false, "acct": "root", "uid": uint64(65534), "uid_name": "nobody", "terminal": "/dev/pts/0",
			},
			absent: []string{"hostname", "addr"}, // "?"
		},
		{
			name: "configuration change (live)",
			ev:   findEvent(t, live, 6),
			sev:  event.SevInfo, prio: event.PriorityNormal,
			msg: `CONFIG_CHANGE op=add_rule exe=/usr/sbin/auditctl comm=auditctl key=watch-tmp res=1`,
			fields: map[string]any{
				"op": "add_rule", "key": "watch-tmp", "syscall_name": "sendto", "success": true,
				"proctitle": "auditctl -w /tmp/audwatch -p wa -k watch-tmp",
			},
		},
		{
			name: "AVC denial, i386 (Red Hat guide)",
			ev:   findEvent(t, docs, 238),
			sev:  event.SevWarning, prio: event.PriorityCritical,
			msg: `AVC denied { write } exe=/usr/bin/certwatch comm=certwatch name=cache scontext=system_u:system_r:certwatch_t:s0 tcontext=system_u:object_r:var_t:s0 tclass=dir success=no exit=-13`,
			fields: map[string]any{
				"avc": "denied { write }", "arch": "i386", "syscall": uint64(39), "syscall_name": "mkdir",
				"success": false, "comm": "certwatch", "tclass": "dir", "scontext": "system_u:system_r:certwatch_t:s0",
			},
			absent: []string{"key"},
		},
		{
			name: "sshd login failure (docs)",
			ev:   findEvent(t, docs, 1125),
			sev:  event.SevWarning, prio: event.PriorityCritical,
			msg:    `USER_LOGIN op=login acct=root exe=/usr/sbin/sshd addr=192.168.1.10 terminal=ssh res=failed`,
			fields: map[string]any{"addr": "192.168.1.10", "success": false},
		},
		{
			name: "sudo command (docs)",
			ev:   findEvent(t, docs, 1130),
			sev:  event.SevInfo, prio: event.PriorityNormal,
			fields: map[string]any{"cmd": "cat /etc/shadow", "cwd": "/home/alice", "success": true, "auid": uint64(1000)},
		},
		{
			name: "aarch64 execve with node and EOE (docs)",
			ev:   findEvent(t, docs, 4567),
			sev:  event.SevInfo, prio: event.PriorityNormal,
			msg: `SYSCALL execve exe=/bin/busybox uid=0 auid=1000 key=exec success=yes`,
			fields: map[string]any{
				"node": "gw01", "arch": "aarch64", "syscall_name": "execve", "execve.a2": "echo \"a b\"\n",
				"path.0.name": "/bin/sh", "path.1.inode": uint64(4011), "proctitle": "sh -c echo \"a b\"\n",
				"types": "SYSCALL,EXECVE,CWD,PATH,PATH,PROCTITLE,EOE",
			},
			absent: []string{"path.1.name"},
		},
		{
			name: "arm openat, two keys (docs)",
			ev:   findEvent(t, docs, 4568),
			sev:  event.SevInfo, prio: event.PriorityNormal,
			fields: map[string]any{
				"arch": "arm", "syscall": uint64(322), "syscall_name": "openat", "key": "watch-etc,integrity",
			},
		},
		{
			name: "long execve argument in pieces (docs)",
			ev:   findEvent(t, docs, 4569),
			sev:  event.SevInfo, prio: event.PriorityNormal,
			fields: map[string]any{"execve.a1": "0123456789ABCDEFGHJK", "execve.argc": uint64(2)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.ev
			require.Equal(t, event.KindAudit, ev.Kind)
			require.Equal(t, "audit", ev.Source)
			require.Equal(t, tt.sev, ev.Severity)
			require.Equal(t, tt.prio, ev.Priority)
			require.NotZero(t, ev.Observed)
			if tt.msg != "" {
				require.Equal(t, tt.msg, ev.Message)
			}
			m := fieldMap(ev)
			for k, want := range tt.fields {
				require.Contains(t, m, k)
				require.Equal(t, want, m[k], "field %s", k)
			}
			for _, k := range tt.absent {
				require.NotContains(t, m, k)
			}
			require.Contains(t, m["raw"], "msg=audit(")
			seen := map[string]bool{}
			for _, f := range ev.Fields {
				require.False(t, seen[f.Key], "field %s twice", f.Key)
				seen[f.Key] = true
			}
			_, err := ev.AppendBinary(nil)
			require.NoError(t, err)
		})
	}
}

func TestEventObservedIsTheAuditTime(t *testing.T) {
	evs := eventsOf(t, []string{rec(1, "USER_END", "res=success")}, false)
	require.Len(t, evs, 1)
	require.Equal(t, time.Date(2023, 11, 14, 22, 13, 20, 1e6, time.UTC).UnixNano(), evs[0].Observed)
	require.Zero(t, evs[0].Time, "the gateway's Emit stamps the time and its quality")
	require.NotContains(t, fieldMap(evs[0]), "raw", "raw: none")
}

func TestEventOfMalformedLine(t *testing.T) {
	line := `type=SYSCALL msg=audit(1.000:1): comm="cat`
	first := rec(1, "USER_END", "")
	evs := eventsOf(t, []string{first, line}, true)
	require.Len(t, evs, 2)
	ev := evs[0] // complete at once; USER_END waited for the flush
	require.Equal(t, line, ev.Message, "kept as it is")
	require.Equal(t, event.SevNotice, ev.Severity)
	m := fieldMap(ev)
	require.Equal(t, `type=SYSCALL: value of comm: no closing "`, m["parse_error"])
	require.Equal(t, uint64(len(first)+1), m["offset"])
	require.Zero(t, ev.Observed)
}

// TestGolden compares every record of the test logs with
// testdata/<log>.events.json.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.log")
	require.NoError(t, err)
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			var buf bytes.Buffer
			for _, ev := range eventsOf(t, readLines(t, name), true) {
				b, err := json.Marshal(&ev)
				require.NoError(t, err)
				buf.Write(b)
				buf.WriteByte('\n')
			}
			golden := strings.TrimSuffix(name, ".log") + ".events.json"
			if *update {
				require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run with -update to create it")
			require.Equal(t, string(want), buf.String())
		})
	}
}
