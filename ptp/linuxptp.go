package ptp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/facebook/time/ptp/protocol"
	"github.com/weirgw/weir/gateway/event"
)

// LinuxPTPConfig points at ptp4l's management socket.
type LinuxPTPConfig struct {
	// Socket is ptp4l's uds_address.
	Socket string `mapstructure:"socket" yaml:"socket"`
	// Domain is ptp4l's domainNumber.
	Domain uint8 `mapstructure:"domain" yaml:"domain"`
	// PollInterval is how often ptp4l is asked; also the answer timeout.
	PollInterval time.Duration `mapstructure:"poll_interval" yaml:"poll_interval"`
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
	return errors.Join(errs...)
}

// LinuxPTP is time from CLOCK_REALTIME, disciplined by ptp4l (software
// time stamping) or phc2sys, with its quality learnt by polling ptp4l's
// management socket.
type LinuxPTP struct {
	*published
	cfg LinuxPTPConfig
}

func newLinuxPTP(c Config) *LinuxPTP {
	return &LinuxPTP{published: newPublished(ModeLinuxPTP, event.TimePTP, c.Holdover), cfg: c.LinuxPTP}
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
		l.observe(Sample{At: time.Now()}, Status{Error: fmt.Sprintf("ptp4l socket %s: %v", l.cfg.Socket, err)})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.cfg.PollInterval):
		}
		conn, err = dial()
	}
	defer conn.Close()
	mc := &protocol.MgmtClient{Connection: conn, DomainNumber: l.cfg.Domain}
	t := time.NewTicker(l.cfg.PollInterval)
	defer t.Stop()
	for {
		_ = conn.SetDeadline(time.Now().Add(l.cfg.PollInterval))
		s, st := l.poll(mc)
		l.observe(s, st)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// poll asks ptp4l for its data sets and turns the answers into a sample.
func (l *LinuxPTP) poll(mc *protocol.MgmtClient) (Sample, Status) {
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
	if err := mc.SendPacket(PortDataSetRequest()); err != nil {
		return fail("PORT_DATA_SET", err)
	}
	buf := make([]byte, 1024)
	n, err := mc.Connection.Read(buf)
	if err != nil {
		return fail("PORT_DATA_SET", err)
	}
	port, err := DecodePortDataSet(buf[:n])
	if err != nil {
		return fail("PORT_DATA_SET", err)
	}
	offset := time.Duration(cur.OffsetFromMaster.Nanoseconds())
	delay := time.Duration(cur.MeanPathDelay.Nanoseconds())
	st := Status{
		GrandmasterPresent: ts.GMPresent != 0,
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
