package main

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/sensors/modbus/poll"
	"github.com/weirgw/weir/uplink/sender"
)

// hostile is what a file name, a syslog peer's host name, a sensor's
// string register or an error quoting them may hold: an OSC that retitles
// the window, a screen clear, an 8-bit CSI, a right-to-left override,
// DEL, a byte that is not UTF-8, a tab and a newline that would forge a
// line of output.
const hostile = "\x1b]0;pwned\x07\x1b[2J\u009b31m\u202eevil\x7f\xff\ttab\nsource   forged: line"

func TestTermSafe(t *testing.T) {
	for _, c := range []struct {
		in, want, layout string
	}{
		{"plain /var/log/app.log ü", "plain /var/log/app.log ü", "plain /var/log/app.log ü"},
		{"\x1b[2J", `\x1b[2J`, `\x1b[2J`},
		{"a\tb\nc\r", `a\tb\nc\r`, "a\tb\nc\\r"},
		{"\u009b\x7f\x00", `\x9b\x7f\x00`, `\x9b\x7f\x00`},
		{"\xffok\xc3", `\xffok\xc3`, `\xffok\xc3`},
		{"\u202eevil\u2066\u200f\ufeff\u2028", `\u202eevil\u2066\u200f\ufeff\u2028`, `\u202eevil\u2066\u200f\ufeff\u2028`},
		{`back\slash`, `back\slash`, `back\slash`},
	} {
		require.Equal(t, c.want, termSafe(c.in, false), "%q", c.in)
		require.Equal(t, c.layout, termSafe(c.in, true), "%q keeping layout", c.in)
	}
}

func TestPrintfEscapesEveryArgument(t *testing.T) {
	var b bytes.Buffer
	type state string
	printf(&b, "%s|%-8s|%q|%v|%d|%t|%v|%s\n", hostile[:4], state("\x1bx"), "\x1b", errors.New("e\x1b"), 42, true,
		time.Second, []string{"\x07"})
	require.Equal(t, `\x1b]0;|\x1bx   |"\x1b"|e\x1b|42|true|1s|[\x07]`+"\n", b.String())
}

// poison sets every string reachable in v (fields, elements of slices it
// grows to one, map keys and values, what pointers point at) to hostile.
func poison(v reflect.Value, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(hostile)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		poison(v.Elem(), depth+1)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				poison(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		}
		for i := range v.Len() {
			poison(v.Index(i), depth+1)
		}
	case reflect.Map:
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		poison(k, depth+1)
		poison(e, depth+1)
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		v.SetMapIndex(k, e)
	}
}

func poisoned[T any]() *T {
	v := new(T)
	poison(reflect.ValueOf(v), 0)
	return v
}

// requireTerminalSafe fails on anything in out a terminal would act on
// beyond newlines, and on a line hostile forged.
func requireTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	require.NotEmpty(t, out)
	require.True(t, utf8.ValidString(out), "%s: invalid UTF-8 in its output:\n%s", what, out)
	for i, r := range out {
		if r != '\n' && !unicode.IsPrint(r) && r != ' ' {
			t.Fatalf("%s: %U at byte %d of its output:\n%s", what, r, i, out)
		}
	}
	require.NotContains(t, out, "\nsource   forged", "%s: a newline in a value starts a line of its own", what)
	require.Contains(t, out, `\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\x7f\xff\ttab\nsource   forged: line`, what)
}

// Every printer of the diagnostics, given a view whose every string is
// hostile, prints nothing a terminal acts on.
func TestPrintersEscape(t *testing.T) {
	now := time.Now()
	probe := poisoned[sender.ProbeResult]()
	probe.Chain = []*x509.Certificate{{Subject: pkix.Name{CommonName: hostile}, Issuer: pkix.Name{Organization: []string{hostile}}}}
	probe.Err = errors.New(hostile)
	probeOK := *probe
	probeOK.Err = nil
	probeOK.RTTs = []time.Duration{time.Millisecond}
	ptpSt := poisoned[ptp.Status]()
	ptpSt.Mode = ptp.ModeBuiltin
	status := poisoned[gateway.Status]()
	status.Uplink.State = "connected"

	for name, print := range map[string]func(io.Writer){
		"status":       func(w io.Writer) { printStatus(w, status, now) },
		"link":         func(w io.Writer) { printLink(w, poisoned[gateway.Link]()) },
		"sensors":      func(w io.Writer) { printSensors(w, poisoned[gateway.Sensors]()) },
		"sensors read": func(w io.Writer) { printRead(w, poisoned[poll.ReadResult]()) },
		"spool":        func(w io.Writer) { printSpool(w, poisoned[gateway.Status]().Spool, now) },
		"top": func(w io.Writer) {
			renderTop(w, &topView{at: now, status: status, link: poisoned[gateway.Link](), clock: ptpSt,
				sensors: poisoned[gateway.Sensors]()}, nil, []string{hostile}, hostile)
		},
		"ptp":         func(w io.Writer) { printPTP(w, ptpSt, now) },
		"test output": func(w io.Writer) { printProbe(w, probe, now) },
		"test output ok": func(w io.Writer) {
			printProbe(w, &probeOK, now)
		},
	} {
		var b bytes.Buffer
		print(&b)
		requireTerminalSafe(t, name, b.String())
	}
}

// --json and `weir spool inspect` print JSON: what encoding/json leaves
// raw (DEL, C1 controls, direction overrides) is escaped too, and the
// JSON still decodes to the same values.
func TestWriteJSONEscapes(t *testing.T) {
	raw := "\u009b31m\u202eevil\x7f"
	rec := gateway.SpoolRecord{Seq: 7, Class: raw, Event: json.RawMessage(`{"message":"` + raw + `"}`)}
	for _, indent := range []bool{false, true} {
		var b bytes.Buffer
		require.NoError(t, writeJSON(&b, rec, indent))
		out := b.String()
		for _, r := range out {
			require.True(t, r == '\n' || unicode.IsPrint(r), "%U in %s", r, out)
		}
		var back struct {
			Class string `json:"class"`
			Event struct {
				Message string `json:"message"`
			} `json:"event"`
		}
		require.NoError(t, json.Unmarshal(b.Bytes(), &back))
		require.Equal(t, raw, back.Class)
		require.Equal(t, raw, back.Event.Message)
	}
	var b bytes.Buffer
	require.NoError(t, writeJSON(&b, poisoned[gateway.Status](), true))
	for _, r := range b.String() {
		require.True(t, r == '\n' || unicode.IsPrint(r), "%U", r)
	}
}

// Nothing in the command prints but through termsafe.go: no fmt.Print*,
// fmt.Fprint*, json.NewEncoder or Write of its own.
func TestPrintersUseTermSafe(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "termsafe.go" {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		file, err := parser.ParseFile(fset, f, src, 0)
		require.NoError(t, err)
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			name := sel.Sel.Name
			pkg := ""
			if id, ok := sel.X.(*ast.Ident); ok {
				pkg = id.Name
			}
			bad := pkg == "fmt" && (strings.HasPrefix(name, "Print") || strings.HasPrefix(name, "Fprint")) ||
				pkg == "json" && name == "NewEncoder" ||
				pkg == "io" && name == "WriteString" ||
				name == "Write" || name == "WriteString"
			if bad {
				t.Errorf("%s: %s.%s prints around termSafe; use printf, writeText or writeJSON", fset.Position(call.Pos()), pkg, name)
			}
			return true
		})
	}
}
