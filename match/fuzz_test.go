package match

import (
	"testing"

	"github.com/weirgw/weir/event"
)

// FuzzMatch runs records of any bytes (a syslog line, an audit field, a
// register's text) through matchers of every condition: no input panics,
// and the answer is the same twice.
func FuzzMatch(f *testing.F) {
	f.Add("sshd[411]: Failed password for root", "crc_error", "0.25", int64(-13))
	f.Add("\xff\xfe\x00", "", "NaN", int64(0))
	f.Add("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "1e309", "-0", int64(-9223372036854775808))
	ms := []*Matcher{}
	for _, s := range []Spec{
		{Message: &Text{Regex: `^(a+)+$`, Contains: []string{"a"}}},
		{Fields: []Field{{Key: "v", Regex: `_error$`, In: []string{"crc_error", "5"}, Prefix: "c"}}},
		{Fields: []Field{{Key: "n", Above: ptr(0.2), AtMost: ptr(1e6)}, {Key: "s", AtLeast: ptr(-1)}}},
		{Any: []Spec{{Fields: []Field{{Key: "i", Equals: "-13", Regex: `^-1`}}}, {Not: &Spec{Host: &Text{Prefix: "h"}}}}},
	} {
		m, err := Compile(s)
		if err != nil {
			f.Fatal(err)
		}
		ms = append(ms, m)
	}
	f.Fuzz(func(t *testing.T, msg, v, s string, i int64) {
		ev := event.Event{Message: msg, Host: v, Fields: []event.Field{
			event.Str("v", v), event.Str("s", s), event.Int("i", i), event.Bytes("b", []byte(msg)),
			event.Float("n", float64(i)/7), event.Uint("u", uint64(i))}}
		for _, m := range ms {
			first := m.Match(&ev)
			if again := m.Match(&ev); again != first {
				t.Fatal("an answer that changes")
			}
		}
	})
}

func ptr(v float64) *float64 { return &v }
