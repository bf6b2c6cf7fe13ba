package audit

import (
	"testing"
	"time"
)

// BenchmarkParseGroup parses, groups and builds the records of the
// captured log (25 events in 82 lines, execve, path and PAM events),
// reporting events/s and lines/s; allocs/op are per pass over the log.
func BenchmarkParseGroup(b *testing.B) {
	lines := readLines(b, "testdata/auditd-3.0.9-enriched.log")
	g := NewGrouper(time.Second)
	bl := newBuilder("audit", true)
	bl.path = "/var/log/audit/audit.log"
	bytes := 0
	for _, l := range lines {
		bytes += len(l) + 1
	}
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	events := 0
	now := time.Now()
	for b.Loop() {
		for i, l := range lines {
			r, err := ParseLine(l)
			if err != nil {
				b.Fatal(err)
			}
			r.Offset = int64(i)
			g.Add(r, now)
			for _, grp := range g.Take() {
				ev := bl.event(grp)
				_ = ev
				events++
			}
		}
		g.Flush()
		events += len(g.Take())
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(lines)*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkParseLine is one SYSCALL line of the enriched format.
func BenchmarkParseLine(b *testing.B) {
	lines := readLines(b, "testdata/auditd-3.0.9-enriched.log")
	line := lines[len(lines)-1]
	for _, l := range lines {
		if len(l) > 400 && l[:12] == "type=SYSCALL" {
			line = l
			break
		}
	}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseLine(line); err != nil {
			b.Fatal(err)
		}
	}
}
