package ptp

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/facebook/time/ptp/protocol"
	"github.com/stretchr/testify/require"
	"github.com/weirgw/weir/event"
	"golang.org/x/sys/unix"
)

func TestOpenPHC(t *testing.T) {
	for name, tc := range map[string]struct {
		path string
		want string
	}{
		"missing":     {"/dev/ptp-weir-absent", "phc /dev/ptp-weir-absent: open /dev/ptp-weir-absent: no such file or directory"},
		"not a clock": {"/dev/null", "phc /dev/null: not a PTP hardware clock"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := openPHC(tc.path)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// A real PHC reads as a clock: some time after 2020 (a PHC starts at 0
// until ptp4l or phc_ctl sets it, so only that it reads is certain).
func TestOpenPHCDevice(t *testing.T) {
	devs, _ := filepath.Glob("/dev/ptp[0-9]*")
	if len(devs) == 0 {
		t.Skip("no /dev/ptp* here: a NIC with a hardware clock (or the ptp_kvm module in a VM) provides one")
	}
	d, err := openPHC(devs[0])
	if os.IsPermission(err) {
		t.Skipf("%s: %v", devs[0], err)
	}
	require.NoError(t, err)
	a, err := d.read()
	require.NoError(t, err)
	b, err := d.read()
	require.NoError(t, err)
	require.False(t, b.Before(a), "%s goes backwards: %s then %s", devs[0], a, b)
}

// fakePHC is CLOCK_REALTIME read through the PHC path: the same
// clock_gettime on a clock id, standing in for /dev/ptpN, which this
// machine may not have.
func fakePHC() *phcDevice { return &phcDevice{clockID: unix.CLOCK_REALTIME} }

func runPHCClock(t *testing.T, c Config, dev *phcDevice) *LinuxPTP {
	t.Helper()
	require.NoError(t, c.Validate())
	clk, err := New(c)
	require.NoError(t, err)
	l := clk.(*LinuxPTP)
	l.dev = dev // before Run: only Run's goroutine uses it
	ctx := t.Context()
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() { require.NoError(t, <-done) })
	return l
}

func TestLinuxPTPPHC(t *testing.T) {
	locked := ptp4lState{port: protocol.PortStateSlave, gmPresent: true, gm: gm, offsetNS: 100, delayNS: 2000,
		utcOffset: 37, timeSource: protocol.TimeSourceGNSS}
	for name, tc := range map[string]struct {
		flags uint8
		toUTC time.Duration
	}{
		// The PHC keeps TAI: UTC is 37 s behind it.
		"ptp timescale": {uint8(protocol.FlagPTPTimescale | protocol.FlagCurrentUtcOffsetValid), 37 * time.Second},
		// An arbitrary timescale is the grandmaster's time as it is.
		"arb": {0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			st := locked
			st.tpFlags = tc.flags
			f := startFakePTP4L(t, st)
			c := linuxPTPConfig(f.path)
			c.LinuxPTP.PHC = "/dev/ptp-weir-test"
			clk := runPHCClock(t, c, fakePHC())
			require.Eventually(t, func() bool { return clk.Status().State == "locked" }, 5*time.Second, 5*time.Millisecond)
			s := clk.Status()
			require.Empty(t, s.Error)
			require.Equal(t, "/dev/ptp-weir-test", s.PHC)
			require.Equal(t, "ptp", s.Source)
			require.True(t, s.UTCOffsetKnown)
			require.Equal(t, 37, s.UTCOffset)
			require.Equal(t, "GNSS", s.TimeSource)

			before := time.Now()
			now, q := clk.Now()
			after := time.Now()
			require.Equal(t, event.TimePTP, q.Source)
			require.Equal(t, event.ClockLocked, q.State)
			require.Positive(t, q.ErrorBound)
			require.False(t, now.Before(before.Add(-tc.toUTC).Truncate(time.Microsecond)), "%s before %s", now, before.Add(-tc.toUTC))
			require.False(t, now.After(after.Add(-tc.toUTC)), "%s after %s", now, after.Add(-tc.toUTC))
		})
	}
}

// Until ptp4l has said which timescale the PHC keeps, and while the
// device does not open, time is CLOCK_REALTIME claiming nothing, and
// Status says why.
func TestLinuxPTPPHCUnknown(t *testing.T) {
	t.Run("no time properties yet", func(t *testing.T) {
		c := linuxPTPConfig(filepath.Join(t.TempDir(), "absent-ptp4l"))
		c.LinuxPTP.PHC = "/dev/ptp-weir-test"
		clk := runPHCClock(t, c, fakePHC())
		require.Eventually(t, func() bool { return clk.Status().Error != "" }, 5*time.Second, 5*time.Millisecond)
		s := clk.Status()
		require.Contains(t, s.Error, "absent-ptp4l")
		require.Contains(t, s.Error, "phc /dev/ptp-weir-test: UTC offset not known yet")
		require.False(t, s.UTCOffsetKnown)
		require.Equal(t, "system", s.Source)
		require.Equal(t, "freerun", s.State)
		before := time.Now()
		now, q := clk.Now()
		require.Equal(t, phcUnknown, q)
		require.WithinDuration(t, before, now, time.Second)
	})
	t.Run("device missing", func(t *testing.T) {
		f := startFakePTP4L(t, ptp4lState{port: protocol.PortStateSlave, gmPresent: true, gm: gm, utcOffset: 37,
			tpFlags: uint8(protocol.FlagPTPTimescale)})
		c := linuxPTPConfig(f.path)
		c.LinuxPTP.PHC = "/dev/ptp-weir-absent"
		clk := runPHCClock(t, c, nil)
		require.Eventually(t, func() bool { return clk.Status().Error != "" }, 5*time.Second, 5*time.Millisecond)
		s := clk.Status()
		require.Equal(t, "phc /dev/ptp-weir-absent: open /dev/ptp-weir-absent: no such file or directory", s.Error)
		require.Equal(t, "SLAVE", s.PortState, "ptp4l's view is still shown")
		require.Equal(t, "freerun", s.State, "never locked: the PHC was never read")
		_, q := clk.Now()
		require.Equal(t, phcUnknown, q)
	})
}

// A device that opened but fails to read (a NIC gone under it) spoils
// the samples, and Now does not use it.
func TestLinuxPTPPHCUnreadable(t *testing.T) {
	f := startFakePTP4L(t, ptp4lState{port: protocol.PortStateSlave, gmPresent: true, gm: gm, utcOffset: 37,
		tpFlags: uint8(protocol.FlagPTPTimescale)})
	c := linuxPTPConfig(f.path)
	c.LinuxPTP.PHC = "/dev/ptp-weir-test"
	clk := runPHCClock(t, c, &phcDevice{clockID: 1 << 20}) // no such clock: EINVAL
	require.Eventually(t, func() bool { return clk.Status().Error != "" }, 5*time.Second, 5*time.Millisecond)
	s := clk.Status()
	require.Equal(t, "phc /dev/ptp-weir-test: invalid argument", s.Error)
	require.True(t, s.UTCOffsetKnown)
	require.Equal(t, "system", s.Source)
	require.Equal(t, "freerun", s.State)
	_, q := clk.Now()
	require.Equal(t, phcUnknown, q)
}

func TestLinuxPTPConfigPHC(t *testing.T) {
	c := linuxPTPConfig("/run/ptp4l")
	c.LinuxPTP.PHC = "ptp0"
	require.ErrorContains(t, c.Validate(), `linuxptp.phc: "ptp0" is not an absolute path`)
	c.LinuxPTP.PHC = "/dev/ptp0"
	require.NoError(t, c.Validate())
}

func BenchmarkNowPHC(b *testing.B) {
	c := linuxPTPConfig("/run/ptp4l")
	c.LinuxPTP.PHC = "/dev/ptp-weir-test"
	clk, err := New(c)
	require.NoError(b, err)
	l := clk.(*LinuxPTP)
	l.phc.Store(&phcView{dev: fakePHC(), toUTC: 37 * time.Second, known: true})
	b.ReportAllocs()
	for b.Loop() {
		l.Now()
	}
}
