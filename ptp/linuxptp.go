package ptp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/facebook/time/ptp/protocol"
	"github.com/weirgw/weir/event"
)

// LinuxPTPConfig points at ptp4l's management socket.
type LinuxPTPConfig struct {
	// Socket is ptp4l's uds_address.
	Socket string `mapstructure:"socket" yaml:"socket"`
	// Domain is ptp4l's domainNumber.
	Domain uint8 `mapstructure:"domain" yaml:"domain"`
	// PollInterval is how often ptp4l is asked; also the answer timeout.
	PollInterval time.Duration `mapstructure:"poll_interval" yaml:"poll_interval"`
	// PHC is the PTP hardware clock ptp4l disciplines (/dev/ptp0), read
	// directly for time; empty: CLOCK_REALTIME (ptp4l on software time
	// stamps, or phc2sys copying the PHC to it).
	PHC string `mapstructure:"phc" yaml:"phc"`
}

// DefaultLinuxPTP is ptp4l's default socket, domain 0, polled each second.
func DefaultLinuxPTP() LinuxPTPConfig {
	return LinuxPTPConfig{Socket: "/var/run/ptp4l", PollInterval: time.Second}
}

// Validate checks the settings; errors name the key.
func (l LinuxPTPConfig) Validate() error {
	var errs []error
	if l.Socket == "" {
		errs = append(errs, errors.New("socket: required"))
	}
	if l.PollInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("poll_interval: %s is below 10ms", l.PollInterval))
	}
	if l.PHC != "" && !filepath.IsAbs(l.PHC) {
		errs = append(errs, fmt.Errorf("phc: %q is not an absolute path (want a device such as /dev/ptp0, or empty for CLOCK_REALTIME)", l.PHC))
	}
	return errors.Join(errs...)
}

// LinuxPTP is time from CLOCK_REALTIME, disciplined by ptp4l (software
// time stamping) or phc2sys, or read from the PTP hardware clock ptp4l
// disciplines, with its quality learnt by polling ptp4l's management
// socket.
type LinuxPTP struct {
	*published
	cfg LinuxPTPConfig
	phc atomic.Pointer[phcView] // nil unless cfg.PHC is set

	// Only Run's goroutine uses these.
	props *TimePropertiesTLV // the last time properties learnt
	dev   *phcDevice         // open once, kept open
}

func newLinuxPTP(c Config) *LinuxPTP {
	return &LinuxPTP{published: newPublished(ModeLinuxPTP, event.TimePTP, c.Holdover), cfg: c.LinuxPTP}
}

// Now reads CLOCK_REALTIME, or the PHC converted to UTC when one is
// configured.
func (l *LinuxPTP) Now() (time.Time, event.Quality) {
	if l.cfg.PHC == "" {
		return l.published.Now()
	}
	return l.phcNow()
}

// Status returns the latest snapshot evaluated now; with a PHC whose
// time cannot be used (not open, unreadable, its UTC offset not learnt),
// Now falls back to CLOCK_REALTIME and Status says so.
func (l *LinuxPTP) Status() Status {
	st := l.published.Status()
	if l.cfg.PHC == "" {
		return st
	}
	if v := l.phc.Load(); v == nil || v.dev == nil || !v.known || !readable(v.dev) {
		st.Source, st.State, st.ErrorBoundNS = phcUnknown.Source.String(), phcUnknown.State.String(), phcUnknown.ErrorBound
	}
	return st
}

func readable(d *phcDevice) bool {
	_, err := d.read()
	return err == nil
}

// Run polls ptp4l until ctx is done. A failed poll is a sample without a
// master: the clock goes to holdover, not down.
func (l *LinuxPTP) Run(ctx context.Context) error {
	// ptp4l answers to the client's bound address: a private one per Run.
	dir, err := os.MkdirTemp("", "weir-pmc")
	if err != nil {
		return fmt.Errorf("ptp: linuxptp client socket: %w", err)
	}
	defer os.RemoveAll(dir)
	local := filepath.Join(dir, "pmc")
	dial := func() (*net.UnixConn, error) {
		_ = os.Remove(local) // a failed connect leaves the bound name behind
		return net.DialUnix("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"}, &net.UnixAddr{Name: l.cfg.Socket, Net: "unixgram"})
	}
	conn, err := dial()
	for err != nil {
		// ptp4l may start after Weir: keep trying, as a lost master.
		l.learn(Sample{At: time.Now()}, Status{Error: fmt.Sprintf("ptp4l socket %s: %v", l.cfg.Socket, err)})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.cfg.PollInterval):
		}
		conn, err = dial()
	}
	defer conn.Close()
	mc := &protocol.MgmtClient{DomainNumber: l.cfg.Domain}
	mc.Connection = answers{conn: conn, mc: mc}
	buf := make([]byte, 1500)
	t := time.NewTicker(l.cfg.PollInterval)
	defer t.Stop()
	for {
		_ = conn.SetDeadline(time.Now().Add(l.cfg.PollInterval))
		s, st := l.poll(mc, buf)
		l.learn(s, st)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// answers is the management socket as the client reads it: only the
// answer to its latest request. An answer that came after its poll timed
// out would otherwise be read as the answer to the next request, and
// every later one shifted by one.
type answers struct {
	conn *net.UnixConn
	mc   *protocol.MgmtClient
}

func (a answers) Write(b []byte) (int, error) { return a.conn.Write(b) }

func (a answers) Read(b []byte) (int, error) {
	const seqAt = 30 // sequenceId in the common PTP header
	for {
		n, err := a.conn.Read(b)
		if err != nil || n < seqAt+2 || binary.BigEndian.Uint16(b[seqAt:]) == a.mc.Sequence {
			return n, err // a short answer is the decoder's to reject
		}
	}
}

// get sends req and returns the answer's bytes, in buf.
func get(mc *protocol.MgmtClient, req *protocol.Management, buf []byte) ([]byte, error) {
	if err := mc.SendPacket(req); err != nil {
		return nil, err
	}
	n, err := mc.Connection.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// poll asks ptp4l for its data sets and turns the answers into a sample.
func (l *LinuxPTP) poll(mc *protocol.MgmtClient, buf []byte) (Sample, Status) {
	fail := func(what string, err error) (Sample, Status) {
		return Sample{At: time.Now()}, Status{Error: fmt.Sprintf("ptp4l %s %s: %v", l.cfg.Socket, what, err)}
	}
	ts, err := mc.TimeStatusNP()
	if err != nil {
		return fail("TIME_STATUS_NP", err)
	}
	cur, err := mc.CurrentDataSet()
	if err != nil {
		return fail("CURRENT_DATA_SET", err)
	}
	parent, err := mc.ParentDataSet()
	if err != nil {
		return fail("PARENT_DATA_SET", err)
	}
	b, err := get(mc, PortDataSetRequest(), buf)
	if err != nil {
		return fail("PORT_DATA_SET", err)
	}
	port, err := DecodePortDataSet(b)
	if err != nil {
		return fail("PORT_DATA_SET", err)
	}
	if b, err = get(mc, TimePropertiesRequest(), buf); err != nil {
		return fail("TIME_PROPERTIES_DATA_SET", err)
	}
	tp, err := DecodeTimeProperties(b)
	if err != nil {
		return fail("TIME_PROPERTIES_DATA_SET", err)
	}
	l.props = tp
	offset := time.Duration(cur.OffsetFromMaster.Nanoseconds())
	delay := time.Duration(cur.MeanPathDelay.Nanoseconds())
	st := Status{
		// A slave-only ptp4l (3.1.1) that lost its master goes LISTENING
		// but keeps reporting the old grandmaster as present.
		GrandmasterPresent: ts.GMPresent != 0 && followsMaster(port.PortState),
		PortState:          protocol.PortStateToString[port.PortState],
		OffsetNS:           int64(offset),
		PathDelayNS:        int64(delay),
	}
	if st.GrandmasterPresent {
		st.Grandmaster = parent.GrandmasterIdentity.String()
	}
	return Sample{
		At:     time.Now(),
		Synced: st.GrandmasterPresent && port.PortState == protocol.PortStateSlave,
		Offset: offset,
		// The offset is what is left after correction; path asymmetry can
		// add at most the mean path delay.
		Bound: int64(offset.Abs() + delay.Abs()),
	}, st
}

// followsMaster: the port has a master (or is a backup for one).
func followsMaster(s protocol.PortState) bool {
	return s == protocol.PortStateSlave || s == protocol.PortStateUncalibrated || s == protocol.PortStatePassive
}

// learn publishes a poll's sample with the time properties last learnt
// and, with a PHC, what Now needs to read it: the device, opened on
// first use and retried each poll until it opens, and the offset from
// UTC. A PHC that cannot be read or converted spoils the sample: the
// clock goes to holdover as on loss of the master.
func (l *LinuxPTP) learn(s Sample, st Status) {
	if tp := l.props; tp != nil {
		st.UTCOffsetKnown = true
		st.UTCOffset = int(tp.CurrentUTCOffset)
		st.UTCOffsetValid = tp.UTCOffsetValid()
		st.Leap61, st.Leap59 = tp.Leap61(), tp.Leap59()
		st.PTPTimescale = tp.PTPTimescale()
		st.TimeTraceable, st.FrequencyTraceable = tp.TimeTraceable(), tp.FrequencyTraceable()
		st.TimeSource = tp.TimeSourceName()
	}
	if l.cfg.PHC != "" {
		st.PHC = l.cfg.PHC
		if err := l.preparePHC(); err != nil {
			s.Synced = false
			if st.Error != "" {
				st.Error += "; "
			}
			st.Error += err.Error()
		}
	}
	l.observe(s, st)
}

// preparePHC opens the PHC if it is not yet open, checks that it reads,
// and publishes it with the UTC offset learnt.
func (l *LinuxPTP) preparePHC() error {
	if l.dev == nil {
		dev, err := openPHC(l.cfg.PHC)
		if err != nil {
			return err
		}
		l.dev = dev
	}
	v := &phcView{dev: l.dev}
	if l.props != nil {
		v.toUTC, v.known = phcToUTC(l.props), true
	}
	l.phc.Store(v)
	if _, err := l.dev.read(); err != nil {
		return fmt.Errorf("phc %s: %w", l.cfg.PHC, err)
	}
	if !v.known {
		return fmt.Errorf("phc %s: UTC offset not known yet (no TIME_PROPERTIES_DATA_SET from ptp4l)", l.cfg.PHC)
	}
	return nil
}
