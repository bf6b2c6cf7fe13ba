package console

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

func TestRecordEvent(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	r := NewRecord(now, ActionCommand, "/dev/ttyS0", "technician")
	r.Command, r.Outcome = "config show", "ok"
	require.NoError(t, r.Check())
	ev := r.Event()
	require.Equal(t, Source, ev.Source)
	require.Equal(t, event.KindAudit, ev.Kind)
	require.Equal(t, now.UnixNano(), ev.Observed)
	require.Equal(t, `console /dev/ttyS0: technician ran "config show" (ok)`, ev.Message)
	fields := map[string]string{}
	for _, f := range ev.Fields {
		fields[f.Key] = f.Value.Str
	}
	require.Equal(t, map[string]string{"action": "command", "tty": "/dev/ttyS0", "id": r.ID, "user": "technician",
		"command": "config show", "outcome": "ok"}, fields)

	f := NewRecord(now, ActionLoginFailed, "/dev/ttyS0", Unknown)
	f.Count = 2
	require.NoError(t, f.Check())
	require.Equal(t, event.PriorityCritical, f.Event().Priority, "failed logins are never evicted first")
	require.Equal(t, "console /dev/ttyS0: failed login as UNKNOWN (2 in a row)", f.Event().Message)
}

func TestRecordCheck(t *testing.T) {
	ok := NewRecord(time.Now(), ActionLogin, "/dev/ttyS0", "technician")
	for _, c := range []struct {
		name string
		mod  func(r *Record)
		want string
	}{
		{"id", func(r *Record) { r.ID = "abc" }, "id:"},
		{"id hex", func(r *Record) { r.ID = strings.Repeat("z", 32) }, "id:"},
		{"time", func(r *Record) { r.Time = time.Time{} }, "time:"},
		{"action", func(r *Record) { r.Action = "sudo" }, `action: "sudo"`},
		{"user", func(r *Record) { r.User = "a b" }, "user:"},
		{"tty", func(r *Record) { r.TTY = "" }, "tty: missing"},
		{"tty long", func(r *Record) { r.TTY = strings.Repeat("t", 200) }, "tty: longer"},
		{"command long", func(r *Record) { r.Command = strings.Repeat("c", 600) }, "command: longer"},
		{"command utf8", func(r *Record) { r.Command = "\xff" }, "command: not UTF-8"},
		{"count", func(r *Record) { r.Count = -1 }, "count:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ok
			c.mod(&r)
			require.ErrorContains(t, r.Check(), c.want)
		})
	}
	require.NoError(t, ok.Check())
}

func FuzzRecord(f *testing.F) {
	r := NewRecord(time.Unix(1700000000, 0), ActionCommand, "/dev/ttyS0", "technician")
	r.Command = "status"
	b, _ := json.Marshal(r)
	f.Add(b)
	f.Add([]byte(`{"id":"00000000000000000000000000000000","time":"2026-01-01T00:00:00Z","action":"lost","tty":"x","count":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if json.Unmarshal(b, &r) != nil || r.Check() != nil {
			return
		}
		ev := r.Event()
		if _, err := ev.AppendBinary(nil); err != nil {
			t.Fatalf("a checked record does not encode: %v", err)
		}
	})
}
