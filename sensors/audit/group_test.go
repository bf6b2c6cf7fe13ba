package audit

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// groupLines runs lines through a Grouper (each line one record, its
// offset its index) and returns each event as "serial:TYPE,TYPE".
func groupLines(t *testing.T, lines []string, flush bool) []string {
	t.Helper()
	g := NewGrouper(time.Second)
	var got []string
	take := func() {
		for _, grp := range g.Take() {
			got = append(got, describe(grp))
		}
	}
	t0 := time.Unix(0, 0)
	for i, l := range lines {
		r, err := ParseLine(l)
		if err != nil {
			r.Err = err
		}
		r.Offset = int64(i)
		g.Add(r, t0)
		take()
	}
	if flush {
		g.Flush()
		take()
	}
	return got
}

func describe(g Group) string {
	types := make([]string, len(g.Records))
	for i, r := range g.Records {
		types[i] = r.Type
		if r.Err != nil {
			types[i] = "ERR"
		}
	}
	s := fmt.Sprintf("%d:%s", g.Records[0].Serial, strings.Join(types, ","))
	if g.Split {
		s += "+split"
	}
	return s
}

func rec(serial int, typ string, fields string) string {
	return fmt.Sprintf("type=%s msg=audit(1700000000.%03d:%d): %s", typ, serial%1000, serial, fields)
}

func TestGroupCapturedLog(t *testing.T) {
	got := groupLines(t, readLines(t, "testdata/auditd-3.0.9-enriched.log"), true)
	// auditd 3 logs no EOE: each event ends when the next one starts.
	require.Equal(t, []string{
		"5153:DAEMON_START",
		"4:SYSCALL,PROCTITLE",
		"5:CONFIG_CHANGE,SYSCALL,PROCTITLE",
		"6:CONFIG_CHANGE,SYSCALL,PROCTITLE",
		"7:CONFIG_CHANGE,SYSCALL,SOCKADDR,CWD,PATH,PROCTITLE",
		"8:CONFIG_CHANGE,SYSCALL,SOCKADDR,PROCTITLE",
		"9:CONFIG_CHANGE,SYSCALL,SOCKADDR,CWD,PATH,PROCTITLE",
		"10:SYSCALL,CWD,PATH,PATH,PROCTITLE",
		"11:SYSCALL,CWD,PATH,PATH,PATH,PATH,PROCTITLE",
		"12:SYSCALL,CWD,PATH,PATH,PROCTITLE",
		"13:SYSCALL,BPRM_FCAPS,EXECVE,CWD,PATH,PATH,PROCTITLE",
		"14:SYSCALL,CWD,PATH,PROCTITLE",
		"15:USER",
		"16:CONFIG_CHANGE,SYSCALL,SOCKADDR,PROCTITLE",
		"17:CONFIG_CHANGE,SYSCALL,SOCKADDR,CWD,PATH,PROCTITLE",
		"18:CONFIG_CHANGE,SYSCALL,SOCKADDR,PROCTITLE",
		"19:CONFIG_CHANGE,SYSCALL,SOCKADDR,CWD,PATH,PROCTITLE",
		"20:USER_AUTH",
		"21:USER_AUTH",
		"22:USER_ACCT",
		"23:CRED_ACQ",
		"24:USER_START",
		"25:USER_END",
		"26:CRED_DISP",
		"5154:DAEMON_END",
	}, got)
}

func TestGroup(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		flush bool
		want  []string
	}{
		{
			name: "EOE ends an event at once",
			lines: []string{
				rec(1, "SYSCALL", "syscall=59"), rec(1, "EXECVE", "argc=1 a0=\"ls\""), rec(1, "PROCTITLE", "proctitle=6C73"), rec(1, "EOE", ""),
			},
			want: []string{"1:SYSCALL,EXECVE,PROCTITLE,EOE"},
		},
		{
			name:  "the last event waits for Flush",
			lines: []string{rec(1, "USER_LOGIN", "res=failed"), rec(2, "USER_LOGIN", "res=success")},
			want:  []string{"1:USER_LOGIN"},
		},
		{
			name:  "flushed",
			lines: []string{rec(1, "USER_LOGIN", "res=failed"), rec(2, "USER_LOGIN", "res=success")},
			flush: true,
			want:  []string{"1:USER_LOGIN", "2:USER_LOGIN"},
		},
		{
			name: "records of another CPU's event come between",
			lines: []string{
				rec(1, "SYSCALL", "syscall=2"), rec(2, "SYSCALL", "syscall=59"), rec(1, "CWD", `cwd="/"`),
				rec(2, "EXECVE", "argc=0"), rec(1, "PATH", "item=0"), rec(1, "PROCTITLE", "proctitle=6C73"),
				rec(2, "PROCTITLE", "proctitle=6C73"), rec(3, "USER_END", "res=success"),
			},
			want: []string{"1:SYSCALL,CWD,PATH,PROCTITLE", "2:SYSCALL,EXECVE,PROCTITLE"},
		},
		{
			name: "AVC before its SYSCALL",
			lines: []string{
				rec(238, "AVC", "avc: denied { write } for pid=1"), rec(238, "SYSCALL", "syscall=39"),
				rec(238, "PROCTITLE", "proctitle=6C73"), rec(239, "USER_END", ""),
			},
			want: []string{"238:AVC,SYSCALL,PROCTITLE"},
		},
		{
			name: "a malformed line is an event of its own and ends no kernel event",
			lines: []string{
				rec(1, "SYSCALL", "syscall=2"), "garbage", rec(1, "PROCTITLE", "proctitle=6C73"), rec(1, "EOE", ""),
			},
			want: []string{"0:ERR", "1:SYSCALL,PROCTITLE,EOE"},
		},
		{
			name:  "an EOE alone is kept",
			lines: []string{rec(5, "EOE", "")},
			want:  []string{"5:EOE"},
		},
		{
			name: "same serial, other time: two events",
			lines: []string{
				"type=USER_END msg=audit(1.000:7): res=success", "type=USER_END msg=audit(2.000:7): res=success",
			},
			flush: true,
			want:  []string{"7:USER_END", "7:USER_END"},
		},
		{
			name: "same serial, other node: two events",
			lines: []string{
				"node=a type=USER_END msg=audit(1.000:7): res=success", "node=b type=USER_END msg=audit(1.000:7): res=success",
			},
			flush: true,
			want:  []string{"7:USER_END", "7:USER_END"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, groupLines(t, tt.lines, tt.flush))
		})
	}
}

func TestGroupWaitingEventEndsAfterGap(t *testing.T) {
	// A SYSCALL whose PROCTITLE never comes (an old kernel, a lost
	// record) ends once maxGapRecords records of others followed it.
	lines := []string{rec(1, "SYSCALL", "syscall=2")}
	for i := range maxGapRecords + 1 {
		lines = append(lines, rec(100+i, "USER_END", ""))
	}
	got := groupLines(t, lines, false)
	require.Contains(t, got, "1:SYSCALL")
	require.Len(t, got, maxGapRecords+1, "every record but the last is in an ended event")
}

func TestGroupTooManyOpen(t *testing.T) {
	var lines []string
	for i := range maxPending + 1 {
		lines = append(lines, rec(i+1, "SYSCALL", "syscall=2"))
	}
	got := groupLines(t, lines, false)
	require.Equal(t, []string{"1:SYSCALL"}, got, "the oldest of too many open events is ended")
}

func TestGroupSplitsHugeEvents(t *testing.T) {
	lines := []string{rec(1, "SYSCALL", "syscall=59")}
	for range maxEventRecords + 10 {
		lines = append(lines, rec(1, "EXECVE", "argc=1 a0=\"x\""))
	}
	lines = append(lines, rec(1, "PROCTITLE", "proctitle=6C73"), rec(1, "EOE", ""))
	g := NewGrouper(time.Second)
	var groups []Group
	for i, l := range lines {
		r, err := ParseLine(l)
		require.NoError(t, err)
		r.Offset = int64(i)
		g.Add(r, time.Time{})
		for _, grp := range g.Take() {
			grp.Records = append([]Record(nil), grp.Records...)
			groups = append(groups, grp)
		}
	}
	require.Len(t, groups, 2)
	require.Len(t, groups[0].Records, maxEventRecords)
	require.True(t, groups[0].Split)
	require.True(t, groups[1].Split)
	require.Len(t, groups[1].Records, len(lines)-maxEventRecords)
	require.Equal(t, int64(maxEventRecords), groups[1].Records[0].Offset, "in order, nothing lost")
}

func TestGroupExpire(t *testing.T) {
	g := NewGrouper(500 * time.Millisecond)
	r, err := ParseLine(rec(1, "SYSCALL", "syscall=2"))
	require.NoError(t, err)
	r.Offset = 40
	t0 := time.Unix(100, 0)
	g.Add(r, t0)
	off, ok := g.OldestOffset()
	require.True(t, ok)
	require.Equal(t, int64(40), off)
	g.Expire(t0.Add(499 * time.Millisecond))
	require.Empty(t, g.Take())
	require.Equal(t, 1, g.Pending())
	g.Expire(t0.Add(500 * time.Millisecond))
	require.Len(t, g.Take(), 1)
	_, ok = g.OldestOffset()
	require.False(t, ok)
}
