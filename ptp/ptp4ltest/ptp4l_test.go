package ptp4ltest

import (
	"strings"
	"testing"
	"time"
)

// Lines as linuxptp 3.1.1 prints them with -m.
const output = `ptp4l[365.522]: port 1: LISTENING to UNCALIBRATED on RS_SLAVE
ptp4l[367.536]: master offset      -1493 s0 freq     +90 path delay      2901
ptp4l[369.540]: master offset      -1866 s2 freq     -96 path delay      2567
ptp4l[369.540]: port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED
ptp4l[369.665]: master offset        306 s2 freq     -63 path delay      2567
ptp4l[370.000]: port 0: INITIALIZING to LISTENING on INIT_COMPLETE
ptp4l[370.916]: rms  729 max 1052 freq     +0 +/-   0 delay  1961 +/-   0
`

func TestRead(t *testing.T) {
	p := &PTP4L{}
	p.read(strings.NewReader(output))
	got := p.Offsets()
	want := []Sample{{Offset: -1493, State: "s0", Delay: 2901}, {Offset: -1866, State: "s2", Delay: 2567}, {Offset: 306, State: "s2", Delay: 2567}}
	if len(got) != len(want) {
		t.Fatalf("got %d samples, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Offset != want[i].Offset || got[i].State != want[i].State || got[i].Delay != want[i].Delay || got[i].At.IsZero() {
			t.Errorf("sample %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if s := p.PortState(); s != "SLAVE" {
		t.Errorf("port state %q, want SLAVE (port 0 is the management port)", s)
	}
	if n := len(p.Log()); n != 7 {
		t.Errorf("log has %d lines, want 7", n)
	}
	if w := Locked(got, time.Time{}); len(w) != 2 {
		t.Errorf("locked window has %d samples, want 2", len(w))
	}
}

func TestAbsQuantile(t *testing.T) {
	var s []Sample
	for _, o := range []time.Duration{-5, 1, -2, 4, 3} {
		s = append(s, Sample{Offset: o})
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.5, 3}, {0.99, 5}, {1, 5}} {
		if got := AbsQuantile(s, tc.q); got != tc.want {
			t.Errorf("quantile %v: got %s, want %s", tc.q, got, tc.want)
		}
	}
	if got := AbsQuantile(nil, 0.5); got != 0 {
		t.Errorf("no samples: got %s", got)
	}
}

func TestField(t *testing.T) {
	out := "sending: GET PARENT_DATA_SET\n\tce3f2e.fffe.9f9338-0 seq 0 RESPONSE MANAGEMENT PARENT_DATA_SET \n\t\tgrandmasterPriority1                  1\n\t\tgrandmasterIdentity                   cadee6.fffe.5d975e\n"
	if v, ok := Field(out, "grandmasterIdentity"); !ok || v != "cadee6.fffe.5d975e" {
		t.Errorf("got %q %v", v, ok)
	}
	if _, ok := Field(out, "clockIdentity"); ok {
		t.Error("found a field that is not there")
	}
}
