package ptp4ltest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weirgw/weir/uplink/linklab"
)

// Options shape a ptp4l instance; start from DefaultOptions, since zero
// is a meaningful value of most of them.
type Options struct {
	// LogSyncInterval is the grandmaster's Sync interval as a power of two
	// seconds; the slave prints one offset line per Sync.
	LogSyncInterval int8
	// LogAnnounceInterval is the Announce interval, likewise. Three
	// missed announces (announceReceiptTimeout) are a lost master.
	LogAnnounceInterval int8
	// Priority1 is the grandmaster's priority1: lower wins.
	Priority1 uint8
	// Domain is the PTP domainNumber.
	Domain uint8
	// UTCOffset is the TAI − UTC offset the grandmaster announces; zero
	// leaves ptp4l's default (37).
	UTCOffset int
	// Config holds more "key value" lines for the [global] section; a key
	// given here overrides the harness's own.
	Config []string
	// HostClockHeld: the test has already called HoldHostClock (it steers
	// the clock itself too), so StartSlave must not wait for it again.
	HostClockHeld bool
}

// DefaultOptions: Sync 4 per second (logSyncInterval -2) gives a test 40
// offset samples in 10 s, so a median and a tail mean something, and a
// slave locked about 3 s after it starts; 2 announces per second (-1)
// make a stopped grandmaster noticed in 1.5 s. Both are within what PTP
// profiles use (the default profile allows Sync from 2/s to 1 per 2 s,
// IEC 61850-9-3 uses 1/s, telecom profiles 16/s), at the quick end.
// priority1 1 makes the grandmaster win over anything at the default 128.
func DefaultOptions() Options {
	return Options{LogSyncInterval: -2, LogAnnounceInterval: -1, Priority1: 1}
}

// PTP4L is a running ptp4l.
type PTP4L struct {
	// Socket is its management socket (uds_address), for pmc and for
	// Weir's linuxptp mode.
	Socket string
	// ConfigFile is the configuration it was started with.
	ConfigFile string
	// Identity is its clock identity as pmc prints it ("001122.fffe.334455").
	Identity string

	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, set before done closes

	mu      sync.Mutex
	samples []Sample
	port    string   // the port state last logged
	log     []string // the last lines of output, for a failing test
	stopped bool
}

// Sample is one "master offset" line of a slave.
type Sample struct {
	At     time.Time     // when the line was read
	Offset time.Duration // from the master, as ptp4l measured it
	// State is the servo's: s0 unlocked, s1 clock stepped, s2 locked.
	State string
	Delay time.Duration // the mean path delay
}

// requirements skips t where ptp4l cannot run: not root or no netns
// tools (linklab), or linuxptp missing.
func requirements(t testing.TB) {
	t.Helper()
	if err := linklab.Available(); err != nil {
		t.Skipf("ptp4ltest: %v", err)
	}
	for _, c := range []struct{ cmd, pkg string }{{"ptp4l", "linuxptp"}, {"pmc", "linuxptp"}, {"stdbuf", "coreutils"}} {
		if _, err := exec.LookPath(c.cmd); err != nil {
			t.Skipf("ptp4ltest: %s not found: Debian package %s (scripts/deps.sh installs it)", c.cmd, c.pkg)
		}
	}
}

// NewLab makes a linklab lab for t and closes it when t ends; it skips t
// where labs or ptp4l cannot run.
func NewLab(ctx context.Context, t testing.TB) *linklab.Lab {
	t.Helper()
	requirements(t)
	lab, err := linklab.New(ctx, linklab.Options{Label: "ptp"})
	if err != nil {
		t.Fatalf("ptp4ltest: %v", err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("ptp4ltest: %v", err)
		}
	})
	return lab
}

// StartGrandmaster runs `ptp4l -i weir0 -S` in ns with priority1 low
// enough to win, and returns once its management socket answers with its
// clock identity. It stops when t ends.
func StartGrandmaster(ctx context.Context, t testing.TB, ns linklab.Namespace, o Options) *PTP4L {
	t.Helper()
	requirements(t)
	lines := []string{fmt.Sprintf("priority1 %d", o.Priority1)}
	if o.UTCOffset != 0 {
		lines = append(lines, fmt.Sprintf("utc_offset %d", o.UTCOffset))
	}
	return start(ctx, t, ns, o, lines, false)
}

// StartSlave runs `ptp4l -i weir0 -S -s` in ns. It never steps the clock
// (first_step_threshold and step_threshold 0: ns shares CLOCK_REALTIME
// with the grandmaster's namespace and with the host); its PI servo's
// frequency changes are undone when t ends. The servo's constants are
// set (kp 0.1, ki 0.008) so that it estimates the frequency over 2 s
// before locking rather than the 16 s to 40 s ptp4l's software time
// stamping defaults take; on a shared clock there is no real frequency
// error to find. One line per Sync (summary_interval = the Sync
// interval) feeds Offsets.
func StartSlave(ctx context.Context, t testing.TB, ns linklab.Namespace, o Options) *PTP4L {
	t.Helper()
	requirements(t)
	if !o.HostClockHeld {
		HoldHostClock(ctx, t)
	}
	lines := []string{
		"slaveOnly 1",
		"first_step_threshold 0.0",
		"step_threshold 0.0",
		fmt.Sprintf("summary_interval %d", o.LogSyncInterval),
		"pi_proportional_const 0.1",
		"pi_integral_const 0.008",
	}
	return start(ctx, t, ns, o, lines, true)
}

func start(ctx context.Context, t testing.TB, ns linklab.Namespace, o Options, own []string, slave bool) *PTP4L {
	t.Helper()
	// Unix socket paths are limited to 108 bytes; t.TempDir's can be
	// longer than that with a long test name.
	dir, err := os.MkdirTemp("", "ptp4l")
	if err != nil {
		t.Fatalf("ptp4ltest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &PTP4L{Socket: filepath.Join(dir, "ptp4l"), ConfigFile: filepath.Join(dir, "ptp4l.conf"), dir: dir, done: make(chan struct{})}
	conf := []string{
		"[global]",
		"network_transport UDPv4",
		"delay_mechanism E2E",
		"time_stamping software",
		"uds_address " + p.Socket,
		fmt.Sprintf("domainNumber %d", o.Domain),
		fmt.Sprintf("logSyncInterval %d", o.LogSyncInterval),
		fmt.Sprintf("logAnnounceInterval %d", o.LogAnnounceInterval),
	}
	conf = append(append(conf, own...), o.Config...)
	if err := os.WriteFile(p.ConfigFile, []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		t.Fatalf("ptp4ltest: %v", err)
	}
	args := []string{"-f", p.ConfigFile, "-i", linklab.Iface, "-S", "-m", "-q"}
	if slave {
		args = append(args, "-s")
	}
	// ptp4l's stdout is a pipe here, which stdio would buffer in 4 KiB
	// blocks: lines, and so samples, would come late and in bursts.
	p.cmd = ns.Command("stdbuf", append([]string{"-oL", "ptp4l"}, args...)...)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("ptp4ltest: %v", err)
	}
	p.cmd.Stderr = p.cmd.Stdout // one stream, in order
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("ptp4ltest: ptp4l in %s: %v", ns.Name, err)
	}
	go func() {
		p.read(out)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("ptp4ltest: %v", err)
		}
		if t.Failed() {
			t.Logf("ptp4l in %s (%s), last lines:\n%s", ns.Name, p.ConfigFile, strings.Join(p.Log(), "\n"))
		}
	})
	id, err := p.waitIdentity(ctx)
	if err != nil {
		t.Fatalf("ptp4ltest: ptp4l in %s: %v\n%s", ns.Name, err, strings.Join(p.Log(), "\n"))
	}
	p.Identity = id
	return p
}

// waitIdentity asks for DEFAULT_DATA_SET until ptp4l answers.
func (p *PTP4L) waitIdentity(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		id, err := p.PMCField(ctx, "GET DEFAULT_DATA_SET", "clockIdentity")
		if err == nil {
			return id, nil
		}
		select {
		case <-p.done:
			return "", fmt.Errorf("exited: %v", p.err)
		case <-ctx.Done():
			return "", fmt.Errorf("management socket %s: %w", p.Socket, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits for ptp4l to exit (SIGKILL after 5 s). It
// may be called more than once.
func (p *PTP4L) Stop() error {
	p.mu.Lock()
	stopped := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if !stopped {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("ptp4l %s: did not stop on SIGTERM; killed", p.ConfigFile)
	}
	if stopped {
		return nil
	}
	var exit *exec.ExitError
	if p.err != nil && !(errors.As(p.err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled()) {
		return fmt.Errorf("ptp4l %s: %w", p.ConfigFile, p.err)
	}
	return nil
}

// Done is closed when ptp4l has exited.
func (p *PTP4L) Done() <-chan struct{} { return p.done }

// PMC runs pmc against the management socket with the given commands
// ("GET PARENT_DATA_SET") and returns its output.
func (p *PTP4L) PMC(ctx context.Context, cmds ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// pmc binds its own end of the socket pair at -i; keep it in the
	// temporary directory rather than /var/run.
	f, err := os.CreateTemp(p.dir, "pmc")
	if err != nil {
		return "", err
	}
	client := f.Name()
	f.Close()
	os.Remove(client)
	defer os.Remove(client)
	args := append([]string{"-u", "-b", "0", "-s", p.Socket, "-i", client}, cmds...)
	out, err := exec.CommandContext(ctx, "pmc", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("pmc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// PMCField runs one pmc command and returns the value of field in its
// answer; an answer without it (ptp4l not answering yet: pmc prints only
// what it sent) is an error.
func (p *PTP4L) PMCField(ctx context.Context, cmd, field string) (string, error) {
	out, err := p.PMC(ctx, cmd)
	if err != nil {
		return "", err
	}
	if v, ok := Field(out, field); ok {
		return v, nil
	}
	return "", fmt.Errorf("pmc %q on %s: no %s in %q", cmd, p.Socket, field, out)
}

// Field finds "name value" in pmc's output.
func Field(pmcOutput, name string) (string, bool) {
	for _, line := range strings.Split(pmcOutput, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == name {
			return f[1], true
		}
	}
	return "", false
}

// offsetLine is ptp4l's per-Sync line:
// "ptp4l[369.540]: master offset -1866 s2 freq -96 path delay 2567".
var offsetLine = regexp.MustCompile(`master offset\s+(-?\d+)\s+(s\d)\s+freq\s+[-+]?\d+\s+path delay\s+(-?\d+)`)

// portLine is a port state change: "port 1: UNCALIBRATED to SLAVE on ...".
var portLine = regexp.MustCompile(`port \d+: \S+ to (\S+) on`)

func (p *PTP4L) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		now := time.Now()
		p.mu.Lock()
		if len(p.log) == 200 {
			p.log = append(p.log[:0], p.log[100:]...)
		}
		p.log = append(p.log, line)
		if m := offsetLine.FindStringSubmatch(line); m != nil {
			off, err1 := strconv.ParseInt(m[1], 10, 64)
			delay, err2 := strconv.ParseInt(m[3], 10, 64)
			if err1 == nil && err2 == nil {
				p.samples = append(p.samples, Sample{At: now, Offset: time.Duration(off), State: m[2], Delay: time.Duration(delay)})
			}
		} else if m := portLine.FindStringSubmatch(line); m != nil && !strings.Contains(line, "port 0:") {
			p.port = m[1]
		}
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

// Offsets is a copy of the slave's samples so far, oldest first.
func (p *PTP4L) Offsets() []Sample {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Sample(nil), p.samples...)
}

// PortState is the state of port 1 as ptp4l last logged it ("SLAVE").
func (p *PTP4L) PortState() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.port
}

// WaitPortState waits until port 1 is in state (as logged), ptp4l
// exits, or ctx is done.
func (p *PTP4L) WaitPortState(ctx context.Context, state string) error {
	for p.PortState() != state {
		select {
		case <-p.done:
			return fmt.Errorf("ptp4l %s exited (%v) before port state %s", p.ConfigFile, p.err, state)
		case <-ctx.Done():
			return fmt.Errorf("ptp4l %s: port state %s, not %s: %w", p.ConfigFile, p.PortState(), state, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Log is the last lines ptp4l printed.
func (p *PTP4L) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}
