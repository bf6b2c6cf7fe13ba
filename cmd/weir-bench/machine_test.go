package main

import (
	"os"
	"strings"
	"testing"
)

// TestMeasureMachine: every figure is measured (none zero or negative),
// the scratch file is gone after, and the ceiling is the synced bandwidth
// in lines.
func TestMeasureMachine(t *testing.T) {
	dir := t.TempDir()
	m, err := measureMachine(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{"fsync": m.FsyncMillis, "synced MB/s": m.SyncedMBps, "sha256": m.SHA256MBps, "syscall": m.SyscallNanos} {
		if v <= 0 {
			t.Errorf("%s: %v", name, v)
		}
	}
	if want := m.SyncedMBps * 1e6 / tailLineSize; m.CeilingRecs != want {
		t.Errorf("ceiling %v, want %v", m.CeilingRecs, want)
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Errorf("left %d files in %s", len(es), dir)
	}
	line := ceilingLine([]result{{System: "weir", FlatOut: []float64{10, 20, 30}}, {System: "rsyslog", FlatOut: []float64{99}}}, machine{CeilingRecs: 400})
	if !strings.Contains(line, "weir flat out: 20 records/s, 5.0 % of the synced-write ceiling") || strings.Contains(line, "rsyslog") {
		t.Errorf("ceiling line: %q", line)
	}
	if _, err := measureMachine(dir + "/missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a directory that is not there: %v", err)
	}
}
