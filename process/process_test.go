package process

import (
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

func chain(t *testing.T, steps ...Step) *Chain {
	t.Helper()
	c, err := Compile(steps)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
}

func logRec(msg string, f ...event.Field) event.Event {
	return event.Event{Source: "syslog", Kind: event.KindLog, Severity: event.SevInfo, Message: msg, Fields: f}
}

func field(e event.Event, k string) (event.Value, bool) {
	for _, f := range e.Fields {
		if f.Key == k {
			return f.Value, true
		}
	}
	return event.Value{}, false
}

func TestDropKeepNeverCritical(t *testing.T) {
	noisy := match.Spec{Message: &match.Text{Contains: []string{"noise"}}}
	crit := logRec("noise but critical")
	crit.Priority = event.PriorityCritical
	alert := logRec("noise alert")
	alert.Kind = event.KindAlert
	tests := []struct {
		name string
		step Step
		in   []event.Event
		want []string
	}{
		{"drop", Step{Drop: &FilterConfig{Match: noisy}}, []event.Event{logRec("noise 1"), logRec("keep me"), logRec("noise 2")}, []string{"keep me"}},
		{"drop spares critical", Step{Drop: &FilterConfig{Match: noisy}}, []event.Event{logRec("noise"), crit, alert}, []string{"noise but critical", "noise alert"}},
		{"drop allow_critical", Step{Drop: &FilterConfig{Match: noisy, AllowCritical: true}}, []event.Event{crit, alert, logRec("x")}, []string{"x"}},
		{"keep", Step{Keep: &FilterConfig{Match: noisy}}, []event.Event{logRec("noise 1"), logRec("other"), crit}, []string{"noise 1", "noise but critical"}},
		{"invalid utf-8", Step{Drop: &FilterConfig{Match: noisy}}, []event.Event{logRec("\xff\xfenoise\xc3"), logRec("\xff")}, []string{"\xff"}},
		{"pcre backtracking", Step{Drop: &FilterConfig{Match: match.Spec{Message: &match.Text{Regex: `^(a+)+$`}}}},
			[]event.Event{logRec(strings.Repeat("a", 100000) + "!"), logRec("aaa")}, []string{strings.Repeat("a", 100000) + "!"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := chain(t, tc.step)
			orig := make([]int32, len(tc.in))
			out := c.Apply(tc.in, orig)
			var got []string
			for _, e := range out {
				got = append(got, e.Message)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("kept %q, want %q", got, tc.want)
			}
			st := c.Stats()[0]
			if st.In != uint64(len(tc.in)) || st.Out != uint64(len(out)) || st.Dropped != st.In-st.Out {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestApplyTracksOrigin(t *testing.T) {
	c := chain(t, Step{Drop: &FilterConfig{Match: match.Spec{Message: &match.Text{Equals: "x"}}}})
	in := []event.Event{logRec("x"), logRec("a"), logRec("x"), logRec("b")}
	orig := []int32{0, 1, 2, 3}
	out := c.Apply(in, orig)
	if len(out) != 2 || orig[0] != 1 || orig[1] != 3 {
		t.Fatalf("kept %d, origins %v", len(out), orig[:2])
	}
}

func TestSample(t *testing.T) {
	at := func(sec int, src string) event.Event {
		e := logRec("m")
		e.Source, e.Time = src, int64(sec)*int64(time.Second)
		return e
	}
	tests := []struct {
		name string
		cfg  SampleConfig
		in   []event.Event
		want int
	}{
		{"1 in 3", SampleConfig{Every: 3}, []event.Event{at(0, "a"), at(0, "a"), at(0, "a"), at(0, "a"), at(0, "a"), at(0, "a"), at(0, "a")}, 3},
		{"per source", SampleConfig{Every: 10}, []event.Event{at(0, "a"), at(0, "b"), at(0, "a"), at(0, "c")}, 3},
		{"2 per minute", SampleConfig{Per: 2, Interval: time.Minute}, []event.Event{at(0, "a"), at(1, "a"), at(2, "a"), at(59, "a"), at(60, "a"), at(61, "a"), at(62, "a")}, 4},
		{"max keys share one count", SampleConfig{Every: 100, MaxKeys: 1}, []event.Event{at(0, "a"), at(0, "b"), at(0, "c")}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			c := chain(t, Step{Sample: &cfg})
			if got := len(c.Apply(tc.in, nil)); got != tc.want {
				t.Fatalf("kept %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("never critical", func(t *testing.T) {
		c := chain(t, Step{Sample: &SampleConfig{Every: 1000}})
		in := make([]event.Event, 50)
		for i := range in {
			in[i] = at(0, "a")
			in[i].Severity = event.SevCritical
		}
		if got := len(c.Apply(in, nil)); got != 50 {
			t.Fatalf("kept %d critical records of 50", got)
		}
	})
	t.Run("by field", func(t *testing.T) {
		c := chain(t, Step{Sample: &SampleConfig{Every: 5, Key: "user"}})
		var in []event.Event
		for i := 0; i < 10; i++ {
			in = append(in, logRec("m", event.Str("user", []string{"ann", "bob"}[i%2])), logRec("m", event.Int("user", 7)))
		}
		if got := len(c.Apply(in, nil)); got != 1+1+2 {
			t.Fatalf("kept %d, want 4 (1 in 5 of ann, of bob, of 7)", got)
		}
	})
}

const testKey = "0123456789abcdef0123"

func TestRedact(t *testing.T) {
	tests := []struct {
		name    string
		cfg     RedactConfig
		in      event.Event
		msg     string
		field   string
		want    string
		changed bool
	}{
		{"field mask", RedactConfig{Fields: []string{"user"}}, logRec("login", event.Str("user", "alice")), "login", "user", "***", true},
		{"numeric field", RedactConfig{Fields: []string{"card"}, Mask: "X"}, logRec("pay", event.Int("card", 4111)), "pay", "card", "X", true},
		{"regex in message", RedactConfig{Regex: `\d{3}-\d{4}`}, logRec("call 555-1234 or 555-9876"), "call *** or ***", "", "", true},
		{"group only", RedactConfig{Regex: `password=(\S+)`}, logRec("user=bob password=hunter2 ok"), "user=bob password=*** ok", "", "", true},
		{"regex in field too", RedactConfig{Regex: `secret\w*`, Fields: []string{"f"}}, logRec("a secret1", event.Str("f", "b secret2")), "a ***", "f", "b ***", true},
		{"no match", RedactConfig{Regex: `zzz`}, logRec("nothing"), "nothing", "", "", false},
		{"invalid utf-8", RedactConfig{Regex: `pw=(\S+)`}, logRec("\xff pw=\xfe\xfd end"), "\xff pw=*** end", "", "", true},
		{"hmac", RedactConfig{Fields: []string{"user"}, With: "hmac", HMACKey: testKey}, logRec("x", event.Str("user", "alice")), "x", "user", "hmac:", true},
		{"pcre backtracking", RedactConfig{Regex: `(a|aa)+b`}, logRec(strings.Repeat("a", 200000) + "c"), strings.Repeat("a", 200000) + "c", "", "", false},
		{"huge field", RedactConfig{Regex: `k=(\d+)`, Fields: []string{"big"}}, logRec("m", event.Str("big", strings.Repeat("k=1 ", 100000))), "m", "big", "k=*** k=***", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			c := chain(t, Step{Redact: &cfg})
			out := c.Apply([]event.Event{tc.in}, nil)
			if out[0].Message != tc.msg {
				t.Fatalf("message %q, want %q", out[0].Message, tc.msg)
			}
			if tc.field != "" {
				v, _ := field(out[0], tc.field)
				if !strings.HasPrefix(v.Str, tc.want) || strings.Contains(v.String(), "alice") {
					t.Fatalf("field %s = %q, want %q", tc.field, v.Str, tc.want)
				}
			}
			if got := c.Stats()[0].Changed == 1; got != tc.changed {
				t.Fatalf("changed %v, want %v", got, tc.changed)
			}
		})
	}
}

func TestRedactHMACJoins(t *testing.T) {
	c := chain(t, Step{Redact: &RedactConfig{Regex: `user=(\w+)`, With: "hmac", HMACKey: testKey}})
	other := chain(t, Step{Redact: &RedactConfig{Regex: `user=(\w+)`, With: "hmac", HMACKey: testKey + "x"}})
	out := c.Apply([]event.Event{logRec("user=alice a"), logRec("user=alice b"), logRec("user=bob c")}, nil)
	o := other.Apply([]event.Event{logRec("user=alice a")}, nil)
	tok := func(s string) string { return strings.Fields(strings.TrimPrefix(s, "user="))[0] }
	if tok(out[0].Message) != tok(out[1].Message) || tok(out[0].Message) == tok(out[2].Message) || tok(o[0].Message) == tok(out[0].Message) {
		t.Fatalf("tokens: %q", []string{out[0].Message, out[1].Message, out[2].Message, o[0].Message})
	}
	if strings.Contains(out[0].Message, "alice") || len(tok(out[0].Message)) != len(tokenPrefix)+24 {
		t.Fatalf("token %q", out[0].Message)
	}
}

func TestRedactSharedFieldsNotTouched(t *testing.T) {
	shared := []event.Field{event.Str("user", "alice")}
	a, b := logRec("a"), logRec("b")
	a.Fields, b.Fields = shared, shared
	c := chain(t, Step{Redact: &RedactConfig{Fields: []string{"user"}}}, Step{Drop: &FilterConfig{Match: match.Spec{Message: &match.Text{Equals: "b"}}}})
	c.Apply([]event.Event{a, b}, nil)
	if shared[0].Value.Str != "alice" {
		t.Fatal("redact wrote into a slice the input may share")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		cfg  ParseConfig
		msg  string
		want map[string]string // "" value: absent
	}{
		{"dissect", ParseConfig{Format: "dissect", Pattern: "%{ts} [%{level}] %{?skip}: %{msg}"}, "10:00 [WARN] app: disk 91% full",
			map[string]string{"ts": "10:00", "level": "WARN", "msg": "disk 91% full", "skip": ""}},
		{"dissect padding", ParseConfig{Format: "dissect", Pattern: "%{a->} %{b}"}, "x    y", map[string]string{"a": "x", "b": "y"}},
		{"dissect no fit", ParseConfig{Format: "dissect", Pattern: "%{a}|%{b}"}, "no bar", map[string]string{"a": "", "b": ""}},
		{"kv", ParseConfig{Format: "kv", Prefix: "kv."}, `src=10.0.0.1 msg="a \"b\" c" junk x= =y dst=h`,
			map[string]string{"kv.src": "10.0.0.1", "kv.msg": `a "b" c`, "kv.dst": "h"}},
		{"json", ParseConfig{Format: "json"}, ` {"user":"ann","n":3,"f":1.5,"ok":true,"nil":null,"arr":[1, 2],"o":{"p":{"q":"deep"}}}`,
			map[string]string{"user": "ann", "n": "3", "f": "1.5", "ok": "true", "arr": "[1,2]", "o.p.q": "deep", "nil": ""}},
		{"json invalid", ParseConfig{Format: "json"}, `{"user":"ann"`, map[string]string{"user": ""}},
		{"json not an object", ParseConfig{Format: "json"}, `[1]`, map[string]string{}},
		{"sd", ParseConfig{Format: "sd"}, `x [origin ip="10.1.2.3" sw="a\]b"][meta seq="9"] tail`,
			map[string]string{"sd.origin.ip": "10.1.2.3", "sd.origin.sw": "a]b", "sd.meta.seq": "9"}},
		{"max fields", ParseConfig{Format: "kv", MaxFields: 2}, "a=1 b=2 c=3", map[string]string{"a": "1", "b": "2", "c": ""}},
		{"invalid utf-8", ParseConfig{Format: "kv"}, "k=\xff\xfe v=\xc3", map[string]string{"k": "\xff\xfe", "v": "\xc3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			c := chain(t, Step{Parse: &cfg})
			out := c.Apply([]event.Event{logRec(tc.msg)}, nil)
			for k, want := range tc.want {
				v, ok := field(out[0], k)
				if want == "" {
					if ok {
						t.Errorf("field %s = %q, want none", k, v.String())
					}
					continue
				}
				if !ok || v.String() != want {
					t.Errorf("field %s = %q (%v), want %q", k, v.String(), ok, want)
				}
			}
		})
	}
	t.Run("from a field", func(t *testing.T) {
		c := chain(t, Step{Parse: &ParseConfig{Format: "kv", From: "raw"}})
		out := c.Apply([]event.Event{logRec("m", event.Str("raw", "a=1"))}, nil)
		if v, ok := field(out[0], "a"); !ok || v.Str != "1" {
			t.Fatalf("fields %v", out[0].Fields)
		}
	})
	t.Run("deep json", func(t *testing.T) {
		c := chain(t, Step{Parse: &ParseConfig{Format: "json"}})
		deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
		out := c.Apply([]event.Event{logRec(deep)}, nil)
		if len(out[0].Fields) != 1 || out[0].Fields[0].Key != strings.TrimSuffix(strings.Repeat("a.", maxJSONDepth+1), ".") {
			t.Fatalf("fields %d, first %q", len(out[0].Fields), out[0].Fields[0].Key)
		}
	})
	t.Run("huge dissect", func(t *testing.T) {
		c := chain(t, Step{Parse: &ParseConfig{Format: "dissect", Pattern: "%{a} %{b}|%{c}"}})
		big := strings.Repeat("x", 1<<20)
		out := c.Apply([]event.Event{logRec(big + " " + big)}, nil)
		if len(out[0].Fields) != 0 {
			t.Fatal("a line without the pattern's | made fields")
		}
	})
	t.Run("huge line", func(t *testing.T) {
		c := chain(t, Step{Parse: &ParseConfig{Format: "kv"}})
		big := strings.Repeat("k=v ", 1<<18)
		out := c.Apply([]event.Event{logRec(big)}, nil)
		if len(out[0].Fields) != defaultMaxFields {
			t.Fatalf("%d fields from a huge line, want the bound %d", len(out[0].Fields), defaultMaxFields)
		}
	})
}

func TestFieldSteps(t *testing.T) {
	in := func() event.Event {
		return logRec("héllo wörld", event.Str("a", "1"), event.Str("b", "2"), event.Str("long", strings.Repeat("é", 10)))
	}
	tests := []struct {
		name  string
		step  Step
		check func(event.Event) string
	}{
		{"rename", Step{Rename: &RenameConfig{Fields: []RenamePair{{From: "a", To: "alpha"}}}}, func(e event.Event) string {
			if _, ok := field(e, "alpha"); !ok {
				return "no alpha"
			}
			if _, ok := field(e, "a"); ok {
				return "a still there"
			}
			return ""
		}},
		{"add_fields", Step{AddFields: &AddFieldsConfig{Fields: map[string]string{"site": "plant-3", "a": "over"}}}, func(e event.Event) string {
			if v, _ := field(e, "site"); v.Str != "plant-3" {
				return "no site"
			}
			if v, _ := field(e, "a"); v.Str != "over" || len(e.Fields) != 4 {
				return "a not replaced once"
			}
			return ""
		}},
		{"drop_fields", Step{DropFields: &DropFieldsConfig{Fields: []string{"b", "long"}}}, func(e event.Event) string {
			if len(e.Fields) != 1 || e.Fields[0].Key != "a" {
				return "fields left: " + e.Fields[len(e.Fields)-1].Key
			}
			return ""
		}},
		{"truncate message at a rune", Step{Truncate: &TruncateConfig{Field: "message", MaxBytes: 2}}, func(e event.Event) string {
			if e.Message != "h" {
				return "message " + e.Message
			}
			if v, ok := field(e, "truncated.message"); !ok || v.Num != uint64(len("héllo wörld")) {
				return "no flag"
			}
			return ""
		}},
		{"truncate field", Step{Truncate: &TruncateConfig{Field: "long", MaxBytes: 5}}, func(e event.Event) string {
			if v, _ := field(e, "long"); v.Str != "éé" {
				return "long " + v.Str
			}
			if _, ok := field(e, "truncated.long"); !ok {
				return "no flag"
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := chain(t, tc.step)
			out := c.Apply([]event.Event{in()}, nil)
			if msg := tc.check(out[0]); msg != "" {
				t.Fatal(msg)
			}
			if c.Stats()[0].Changed != 1 {
				t.Fatal("not counted as changed")
			}
		})
	}
}

func reading(sec int, v float64, extra ...event.Field) event.Event {
	f := append([]event.Field{event.Str("device", "pt1"), event.Uint("unit", 7), event.Float("round_trip_us", float64(sec)), event.Float("level", v)}, extra...)
	return event.Event{Source: "modbus:pt1", Kind: event.KindReading, Severity: event.SevInfo, Time: int64(sec) * int64(time.Second), Fields: f}
}

func TestDeadband(t *testing.T) {
	cfg := DeadbandConfig{Percent: 1, Heartbeat: 60 * time.Second}
	c := chain(t, Step{Deadband: &cfg})
	var kept []int
	run := func(evs ...event.Event) {
		for _, e := range evs {
			sec := int(e.Time / int64(time.Second))
			if out := c.Apply([]event.Event{e}, nil); len(out) == 1 {
				kept = append(kept, sec)
			}
		}
	}
	// A slow drift: 0.1 % a second from 100, polled every second.
	for s := 0; s < 30; s++ {
		run(reading(s, 100*(1+0.001*float64(s))))
	}
	// The value left its 1 % band of 100 after 10 s (100.1 at 1 s ...
	// 101.1 at 11 s), then of 101.1 after 11 s more.
	want := []int{0, 11, 22}
	if !equal(kept, want) {
		t.Fatalf("drift kept %v, want %v", kept, want)
	}
	kept = nil
	// Flat: only the heartbeat.
	for s := 30; s < 150; s++ {
		run(reading(s, 102.3))
	}
	// 102.3 is within 1 % of 102.2, reported at 22: only heartbeats.
	if !equal(kept, []int{82, 142}) {
		t.Fatalf("flat kept %v, want [82 142] (the heartbeats)", kept)
	}
	kept = nil
	run(reading(151, 102.3), reading(152, 150), reading(153, 150),
		reading(154, 150, event.Str("quality", "exception")),
		reading(155, 150), reading(156, 150))
	if !equal(kept, []int{152, 154, 155}) {
		t.Fatalf("step and exception kept %v, want [152 154 155]", kept)
	}
	kept = nil
	crit := reading(157, 150)
	crit.Priority = event.PriorityCritical
	run(crit)
	if !equal(kept, []int{157}) {
		t.Fatal("a critical reading was suppressed")
	}
}

func TestDeadbandAbsoluteFieldsAndSources(t *testing.T) {
	c := chain(t, Step{Deadband: &DeadbandConfig{Absolute: 0.5, Fields: []string{"level"}, Heartbeat: time.Hour}})
	a := reading(0, 10)
	b := reading(0, 10)
	b.Source = "modbus:pt2"
	if n := len(c.Apply([]event.Event{a, b, reading(1, 10.4), reading(2, 10.6), reading(3, 10.6, event.Float("other", 99))}, nil)); n != 3 {
		t.Fatalf("kept %d, want 3 (each source's first, then 10.6)", n)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCompileErrorsNameStepAndKey(t *testing.T) {
	tests := []struct {
		steps []Step
		want  []string
	}{
		{[]Step{{}}, []string{"[0]: no processor"}},
		{[]Step{{Drop: &FilterConfig{}, Keep: &FilterConfig{}}}, []string{"[0]: both drop and keep"}},
		{[]Step{{Drop: &FilterConfig{}}, {Redact: &RedactConfig{Regex: `(a`}}}, []string{"[1].redact.regex: "}},
		{[]Step{{Redact: &RedactConfig{Fields: []string{"u"}, With: "hmac", HMACKey: "short"}}}, []string{"[0].redact.hmac_key: 5 bytes"}},
		{[]Step{{Drop: &FilterConfig{Match: match.Spec{Kind: []string{"bogus"}}}}}, []string{"[0].drop.match.kind[0]: "}},
		{[]Step{{Sample: &SampleConfig{Per: 3}}}, []string{"[0].sample.interval: "}},
		{[]Step{{Parse: &ParseConfig{Format: "xml"}}}, []string{"[0].parse.format: \"xml\""}},
		{[]Step{{Parse: &ParseConfig{Format: "dissect", Pattern: "%{a}%{b}"}}}, []string{"[0].parse.pattern: "}},
		{[]Step{{Deadband: &DeadbandConfig{Percent: 1}}}, []string{"[0].deadband.heartbeat: missing"}},
		{[]Step{{Truncate: &TruncateConfig{Field: "message"}}}, []string{"[0].truncate.max_bytes: "}},
	}
	for _, tc := range tests {
		_, err := Compile(tc.steps)
		if err == nil {
			t.Fatalf("%+v compiled", tc.steps)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
	}
}

func TestWarningsNameAllowCritical(t *testing.T) {
	w := Warnings([]Step{{Drop: &FilterConfig{}}, {Sample: &SampleConfig{Every: 2, AllowCritical: true}}})
	if len(w) != 1 || !strings.HasPrefix(w[0], "[1].sample.allow_critical") {
		t.Fatalf("warnings %q", w)
	}
}
