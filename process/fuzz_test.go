package process

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/weirgw/weir/event"
)

// The parsers read outside bytes (a log line, a field an input filled):
// no input panics, none makes more fields than the bound, and every key
// made is a valid one.
func fuzzParser(f *testing.F, cfg ParseConfig, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	c, err := Compile([]Step{{Parse: &cfg}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		out := c.Apply([]event.Event{{Message: line, Fields: []event.Field{event.Str("pre", "x")}}}, nil)
		if len(out) != 1 {
			t.Fatal("a parser dropped the record")
		}
		fs := out[0].Fields
		if len(fs) > 1+defaultMaxFields || fs[0].Key != "pre" {
			t.Fatalf("%d fields, or the record's own field lost", len(fs))
		}
		for _, x := range fs[1:] {
			if !validKey(x.Key) && cfg.Format != "dissect" {
				t.Fatalf("key %q", x.Key)
			}
		}
	})
}

func FuzzDissect(f *testing.F) {
	fuzzParser(f, ParseConfig{Format: "dissect", Pattern: "%{ts} [%{level}] %{?skip}: %{a->} %{msg}"},
		"10:00 [WARN] app: x    rest", "", "[]: ", "\xff [\xfe] a: b c")
}

func FuzzKV(f *testing.F) {
	fuzzParser(f, ParseConfig{Format: "kv"}, `a=1 b="two \"2\"" c= =d e`, `x="unterminated`, "k=\xff\\")
}

func FuzzJSON(f *testing.F) {
	fuzzParser(f, ParseConfig{Format: "json"}, `{"a":1,"b":{"c":[1,{"d":null}]},"e":"\u00e9","f":1e400}`,
		strings.Repeat(`{"a":`, 50)+"1"+strings.Repeat("}", 50), `{"":1,"a b":2}`, "{\"\xff\":\"\xfe\"}")
}

func FuzzSD(f *testing.F) {
	fuzzParser(f, ParseConfig{Format: "sd"}, `[origin ip="1.2.3.4"][x@1 a="\]\"\\" b=""] m`, `[`, `[a b="`, `- [a]`)
}

// FuzzRedact: whatever the line, a value the regex matched is not left
// in it, and valid UTF-8 stays valid.
func FuzzRedact(f *testing.F) {
	f.Add("user=alice password=hunter2", "alice")
	f.Add("\xff password=\xfe\xfd", "\xfe")
	f.Add(strings.Repeat("password=", 100), "")
	c, err := Compile([]Step{{Redact: &RedactConfig{Regex: `password=(\S+)`, Fields: []string{"f"}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line, fv string) {
		out := c.Apply([]event.Event{{Message: line, Fields: []event.Field{event.Str("f", fv)}}}, nil)
		m := out[0].Message
		if utf8.ValidString(line) && !utf8.ValidString(m) {
			t.Fatalf("%q made invalid UTF-8 %q", line, m)
		}
		if c.steps[0].p.(*redactor).re.MatchString(m) {
			for _, sm := range c.steps[0].p.(*redactor).re.FindAllStringSubmatch(m, -1) {
				if sm[1] != "***" && !strings.HasPrefix(sm[1], "***") {
					t.Fatalf("%q left %q", line, sm[1])
				}
			}
		}
	})
}
