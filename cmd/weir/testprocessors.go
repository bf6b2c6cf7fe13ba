package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
	"github.com/weirgw/weir/process"
)

// maxSampleLine bounds one line of a sample file.
const maxSampleLine = 1 << 20

func newTestProcessorsCmd(g *globals) *cobra.Command {
	var input, chain string
	cmd := &cobra.Command{
		Use:   "processors",
		Short: "Run a file of sample records through the configured processors and print what comes out",
		Long: `Run sample records through the processors of the configuration: the chain of
--chain (an input's name: files.<name>, modbus.<bus>, lines.<name>, syslog, audit,
integrity), then the global chain, as the gateway runs them, one record at a time
and in order (sample and deadband keep their counts across the file).

Each line of --input is a record: a JSON object
  {"source": "syslog", "kind": "log", "severity": "info", "priority": "normal",
   "host": "plc-7", "message": "...", "time": "2026-12-07T10:00:00Z", "fields": {"k": "v", "n": 1.5}}
(every key optional) or, when it does not start with '{', a log line: a record of
kind log, severity info, from the chain's input. "-" reads standard input.

Each record is printed as kept (its JSON as the gateway would spool it) or dropped,
then each step's counts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.load(cmd)
			if err != nil {
				return err
			}
			var steps []process.Step
			if chain != "" {
				s, ok := l.Processors.Inputs[chain]
				if !ok {
					return fmt.Errorf("test processors: no chain for input %q in %s (processors.inputs has: %s)",
						chain, l.Source(), strings.Join(sortedChainNames(l.Processors.Inputs), ", "))
				}
				steps = s
			}
			in, err := process.Compile(steps)
			if err != nil {
				return fmt.Errorf("test processors: processors.inputs.%s%w", chain, err)
			}
			global, err := process.Compile(l.Processors.Global)
			if err != nil {
				return fmt.Errorf("test processors: processors.global%w", err)
			}
			r := cmd.InOrStdin()
			if input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return fmt.Errorf("test processors: %w", err)
				}
				defer f.Close()
				r = f
			}
			return runSample(cmd.OutOrStdout(), r, input, chain, in, global)
		},
	}
	cmd.Flags().StringVar(&input, "input", "-", "file of sample records, one a line (JSON objects or log lines); - for standard input")
	cmd.Flags().StringVar(&chain, "chain", "", "the input whose chain runs before the global one (default: the global chain only)")
	return cmd
}

func sortedChainNames(m map[string][]process.Step) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func runSample(w io.Writer, r io.Reader, name, chain string, in, global *process.Chain) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxSampleLine)
	source := chain
	if i := strings.IndexByte(source, '.'); i >= 0 {
		source = source[i+1:]
	}
	if source == "" {
		source = "sample"
	}
	n, kept := 0, 0
	now := time.Now()
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		ev, err := sampleRecord(line, source, now.Add(time.Duration(n)*time.Millisecond))
		if err != nil {
			return fmt.Errorf("test processors: %s:%d: %w", name, n, err)
		}
		out := global.Apply(in.Apply([]event.Event{ev}, nil), nil)
		if len(out) == 0 {
			printf(w, "%d dropped\n", n)
			continue
		}
		kept++
		j, err := json.Marshal(&out[0])
		if err != nil {
			return fmt.Errorf("test processors: %s:%d: %w", name, n, err)
		}
		printf(w, "%d kept %s\n", n, string(j))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("test processors: %s: %w", name, err)
	}
	printf(w, "\n%d records in, %d kept\n", n, kept)
	for _, c := range []struct {
		name string
		ch   *process.Chain
	}{{"processors.inputs." + chain, in}, {"processors.global", global}} {
		for _, s := range c.ch.Stats() {
			printf(w, "%s[%d] %-11s in %d  out %d  dropped %d  changed %d\n", c.name, s.Index, s.Type, s.In, s.Out, s.Dropped, s.Changed)
		}
	}
	return nil
}

// sampleRecord makes a record of a sample line.
func sampleRecord(line, source string, at time.Time) (event.Event, error) {
	ev := event.Event{Source: source, Kind: event.KindLog, Severity: event.SevInfo, Time: at.UnixNano()}
	if !strings.HasPrefix(strings.TrimSpace(line), "{") {
		ev.Message = line
		return ev, nil
	}
	var s struct {
		Source, Kind, Severity, Priority, Host, Message, Time string
		Fields                                                map[string]any
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return ev, fmt.Errorf("not a sample record: %w", err)
	}
	if s.Source != "" {
		ev.Source = s.Source
	}
	ev.Host, ev.Message = s.Host, s.Message
	if s.Kind != "" {
		k, ok := match.ParseKind(s.Kind)
		if !ok {
			return ev, fmt.Errorf("kind %q is not a record kind", s.Kind)
		}
		ev.Kind = k
	}
	if s.Severity != "" {
		v, ok := match.ParseSeverity(s.Severity)
		if !ok {
			return ev, fmt.Errorf("severity %q is not a severity", s.Severity)
		}
		ev.Severity = v
	}
	if s.Priority != "" {
		p, err := event.ParsePriority(s.Priority)
		if err != nil {
			return ev, err
		}
		ev.Priority = p
	}
	if s.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, s.Time)
		if err != nil {
			return ev, fmt.Errorf("time: %w", err)
		}
		ev.Time = t.UnixNano()
	}
	keys := make([]string, 0, len(s.Fields))
	for k := range s.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch v := s.Fields[k].(type) {
		case string:
			ev.Fields = append(ev.Fields, event.Str(k, v))
		case bool:
			ev.Fields = append(ev.Fields, event.Bool(k, v))
		case json.Number:
			if i, err := v.Int64(); err == nil {
				ev.Fields = append(ev.Fields, event.Int(k, i))
			} else if f, err := v.Float64(); err == nil && !math.IsInf(f, 0) {
				ev.Fields = append(ev.Fields, event.Float(k, f))
			} else {
				return ev, fmt.Errorf("fields.%s: %s is not a number a field holds", k, v)
			}
		default:
			return ev, fmt.Errorf("fields.%s: a field holds text, a number or a boolean", k)
		}
	}
	return ev, nil
}
