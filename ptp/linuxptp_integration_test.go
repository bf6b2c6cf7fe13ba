package ptp

import (
	"flag"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/facebook/time/ptp/protocol"
	"github.com/stretchr/testify/require"
	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/ptp/ptp4ltest"
)

var capture = flag.Bool("ptp4l.capture", false, "write real ptp4l's management answers to testdata/ptp4l (TestCapturePTP4L)")

// TestLinuxPTPWithPTP4L: a ptp4l grandmaster in the collector's
// namespace, a ptp4l slave in the gateway's, and Weir's linuxptp clock
// polling the slave: locked to the grandmaster ptp4l reports, with its
// time properties; then the grandmaster stops, and the clock goes to
// holdover with a growing bound, and to freerun after the holdover limit.
func TestLinuxPTPWithPTP4L(t *testing.T) {
	if testing.Short() {
		t.Skip("a namespace test against ptp4l; make test runs it")
	}
	ctx := t.Context()
	lab := ptp4ltest.NewLab(ctx, t)
	o := ptp4ltest.DefaultOptions()
	o.UTCOffset = 36 // not ptp4l's default, so that it must have come from the grandmaster
	gmPTP4L := ptp4ltest.StartGrandmaster(ctx, t, lab.Collector, o)
	slave := ptp4ltest.StartSlave(ctx, t, lab.Gateway, o)

	c := DefaultConfig()
	c.Mode = ModeLinuxPTP
	c.LinuxPTP.Socket = slave.Socket
	// A poll whose answers take longer than the interval (a loaded CI
	// machine) is a lost sample: the clock leaves locked until the next.
	c.LinuxPTP.PollInterval = 250 * time.Millisecond
	c.Holdover.Limit = 6 * time.Second
	clk := runClock(t, c)

	waitFor := func(state, port string, within time.Duration) Status {
		t.Helper()
		require.Eventually(t, func() bool { st := clk.Status(); return st.State == state && st.PortState == port },
			within, 20*time.Millisecond, "want %s with port %s: %+v", state, port, clk.Status())
		return clk.Status()
	}
	st := waitFor("locked", "SLAVE", 30*time.Second)
	lockedAt := time.Now()
	require.Empty(t, st.Error)
	require.True(t, st.GrandmasterPresent)
	require.Equal(t, gmPTP4L.Identity, st.Grandmaster)
	parent, err := slave.PMCField(ctx, "GET PARENT_DATA_SET", "grandmasterIdentity")
	require.NoError(t, err)
	require.Equal(t, parent, st.Grandmaster)

	out, err := slave.PMC(ctx, "GET TIME_PROPERTIES_DATA_SET")
	require.NoError(t, err)
	offset, ok := ptp4ltest.Field(out, "currentUtcOffset")
	require.True(t, ok, out)
	require.True(t, st.UTCOffsetKnown)
	require.Equal(t, offset, strconv.Itoa(st.UTCOffset))
	require.Equal(t, 36, st.UTCOffset)
	require.False(t, st.PTPTimescale, "a grandmaster on software time stamps is ARB")
	require.Equal(t, "INTERNAL_OSCILLATOR", st.TimeSource)

	var now time.Time
	var q event.Quality
	require.Eventually(t, func() bool { now, q = clk.Now(); return q.State == event.ClockLocked }, 5*time.Second, 20*time.Millisecond)
	require.WithinDuration(t, time.Now(), now, time.Second)
	require.Equal(t, event.TimePTP, q.Source)
	require.Positive(t, q.ErrorBound)
	// Locked: |offset| within the 1 ms threshold, plus a path delay of µs.
	require.Less(t, q.ErrorBound, int64(2*time.Millisecond))

	// ptp4l's own view of the link, for the bound a slave can claim here.
	time.Sleep(8 * time.Second)
	window := ptp4ltest.Locked(slave.Offsets(), lockedAt)
	require.NotEmpty(t, window)
	median, p99 := ptp4ltest.AbsQuantile(window, 0.5), ptp4ltest.AbsQuantile(window, 0.99)
	t.Logf("ptp4l slave on the veth, Sync 2^%d s: %d locked samples, median |offset| %s, p99 %s, max %s",
		o.LogSyncInterval, len(window), median, p99, ptp4ltest.AbsQuantile(window, 1))
	// Software time stamps on one host's veth stay within a few µs; 100 µs
	// would be a broken link or servo, not noise.
	require.Less(t, median, 100*time.Microsecond)
	waitFor("locked", "SLAVE", 5*time.Second)

	require.NoError(t, gmPTP4L.Stop())
	// A slave-only ptp4l goes LISTENING after 3 missed announces.
	st = waitFor("holdover", "LISTENING", 10*time.Second)
	require.False(t, st.GrandmasterPresent, "%+v", st)
	require.Empty(t, st.Grandmaster)
	_, q1 := clk.Now()
	require.Equal(t, event.ClockHoldover, q1.State)
	time.Sleep(200 * time.Millisecond)
	_, q2 := clk.Now()
	require.Equal(t, event.ClockHoldover, q2.State)
	require.Greater(t, q2.ErrorBound, q1.ErrorBound, "the holdover bound grows with time")
	require.Equal(t, 36, clk.Status().UTCOffset, "time properties stay as last learnt")

	waitFor("freerun", "LISTENING", c.Holdover.Limit+5*time.Second)
	_, q = clk.Now()
	require.Equal(t, event.Quality{Source: event.TimePTP, State: event.ClockFreerun, ErrorBound: -1}, q)
}

// TestCapturePTP4L writes what a real ptp4l answers to the GETs Weir
// sends into testdata/ptp4l, for the decoders' tests and fuzz seeds. Run
// it by hand: go test -run TestCapturePTP4L -ptp4l.capture ./ptp
func TestCapturePTP4L(t *testing.T) {
	if !*capture {
		t.Skip("writes testdata; run with -ptp4l.capture")
	}
	ctx := t.Context()
	lab := ptp4ltest.NewLab(ctx, t)
	o := ptp4ltest.DefaultOptions()
	gmPTP4L := ptp4ltest.StartGrandmaster(ctx, t, lab.Collector, o)
	slave := ptp4ltest.StartSlave(ctx, t, lab.Gateway, o)
	require.NoError(t, slave.WaitPortState(ctx, "SLAVE"))

	dir := filepath.Join("testdata", "ptp4l")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	save := func(name, socket string, req *protocol.Management) {
		b := askPTP4L(t, socket, req)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	save("port_data_set_slave.bin", slave.Socket, PortDataSetRequest())
	save("time_properties_arb.bin", slave.Socket, TimePropertiesRequest())
	unknown := TimePropertiesRequest()
	unknown.TLV.(*TimePropertiesTLV).ManagementID = 0x6000 // reserved, unknown to ptp4l
	save("unknown_id.bin", slave.Socket, unknown)
	set := TimePropertiesRequest()
	set.ActionField = protocol.SET // time properties are not settable
	save("error_status.bin", slave.Socket, set)

	// A grandmaster told (as phc2sys or a GNSS receiver's daemon would)
	// that its time is TAI from GNSS with a leap second coming. Asked on
	// the grandmaster itself, with the slave stopped first: a slave on
	// software time stamps would take the PTP timescale for 37 s of
	// offset and slew the host clock at its maximum rate.
	require.NoError(t, slave.Stop())
	_, err := gmPTP4L.PMC(ctx, "SET GRANDMASTER_SETTINGS_NP clockClass 6 clockAccuracy 0x21 offsetScaledLogVariance 0x4e5d "+
		"currentUtcOffset 37 leap61 1 leap59 0 currentUtcOffsetValid 1 ptpTimescale 1 timeTraceable 1 frequencyTraceable 1 timeSource 0x20")
	require.NoError(t, err)
	save("time_properties_gnss.bin", gmPTP4L.Socket, TimePropertiesRequest())
}

// askPTP4L sends req to a management socket and returns the answer.
func askPTP4L(t *testing.T, socket string, req *protocol.Management) []byte {
	t.Helper()
	dir, err := os.MkdirTemp("", "weirpmc")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	conn, err := net.DialUnix("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "c"), Net: "unixgram"}, &net.UnixAddr{Name: socket, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	req.SetSequence(1)
	b, err := req.MarshalBinary()
	require.NoError(t, err)
	_, err = conn.Write(b)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(2*time.Second)))
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	return buf[:n]
}
