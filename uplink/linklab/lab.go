package linklab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fixed addresses on the link. Every lab is two namespaces of its own, so
// every lab can use the same ones. They are in 198.18.0.0/15, the range set
// aside for benchmarking network devices (RFC 2544), which no real network
// routes.
const (
	gatewayIP   = "198.18.0.1"
	collectorIP = "198.18.0.2"
	prefixLen   = 24
	// Iface is the name of the lab interface in both namespaces.
	Iface = "weir0"
	// namePrefix starts every namespace a lab creates; the creator's pid
	// follows, so a later run knows which ones a crashed run left.
	namePrefix = "weirlab-"
	netnsDir   = "/run/netns"
	cmdTimeout = 30 * time.Second
)

// Namespace is one end of the link.
type Namespace struct {
	Name string     // as `ip netns` knows it
	Addr netip.Addr // its address on Iface
}

// Direction is one way across the link.
type Direction int

const (
	// Uplink is from the gateway to the collector.
	Uplink Direction = iota
	// Downlink is from the collector to the gateway.
	Downlink
)

func (d Direction) String() string {
	switch d {
	case Uplink:
		return "uplink"
	case Downlink:
		return "downlink"
	}
	return fmt.Sprintf("direction(%d)", int(d))
}

// Options shape a lab.
type Options struct {
	// Label (letters, digits, '-') goes into the namespace names to tell
	// labs apart in `ip netns`; it may be empty.
	Label string
	// Delay is the one-way latency of the link. Zero: a veth pair, as
	// fast as the machine. Above zero: a pair of TUN devices joined by
	// this process, which holds each packet that long (this kernel has no
	// netem); loss, outages and the rest work the same.
	Delay time.Duration
	// TCPCongestion is the TCP congestion control in both namespaces
	// (net.ipv4.tcp_congestion_control, per namespace): "cubic" as Linux
	// and our board image default to, "bbr", "reno". Empty: as the
	// kernel starts new namespaces, which on some hosts is bbr.
	TCPCongestion string
	// Rate, if above zero, is the link's bandwidth each way in bytes/s,
	// with a drop-tail queue of Queue bytes in front (default: 64 KiB):
	// a bottleneck for flows to share. It needs the wire (Delay > 0).
	Rate  int64
	Queue int
}

// Lab is two namespaces joined by a link. Its methods are safe for
// concurrent use.
type Lab struct {
	Gateway   Namespace
	Collector Namespace

	delay time.Duration
	rate  int64
	queue int
	tcpCC string
	wire  io.Closer // the TUN wire when delay > 0

	mu      sync.Mutex
	loss    [2]int // percent, by Direction
	blocked bool
	relays  []*Relay
	closed  bool
}

// Available reports why a lab cannot be made here, or nil: it needs Linux,
// root, and the ip, nft and ethtool commands.
func Available() error {
	if err := platformAvailable(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("linklab: network namespaces need root (euid 0)")
	}
	var missing []string
	for _, c := range []struct{ cmd, pkg string }{{"ip", "iproute2"}, {"nft", "nftables"}, {"ethtool", "ethtool"}} {
		if _, err := exec.LookPath(c.cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", c.cmd, c.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("linklab: missing %s; scripts/deps.sh installs them", strings.Join(missing, ", "))
	}
	return nil
}

// New creates the two namespaces and the link between them, lossless.
// Close removes everything.
func New(ctx context.Context, o Options) (*Lab, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	label := o.Label
	for _, r := range label {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return nil, fmt.Errorf("linklab: label %q: only letters, digits and '-'", label)
		}
	}
	if o.Delay < 0 || o.Delay > 10*time.Second {
		return nil, fmt.Errorf("linklab: delay %s is outside 0..10s", o.Delay)
	}
	if o.Rate < 0 || o.Queue < 0 || o.Rate > 0 && o.Delay == 0 {
		return nil, fmt.Errorf("linklab: rate %d B/s, queue %d B: both must be positive, and a rate needs a delay (the wire)", o.Rate, o.Queue)
	}
	if o.Rate > 0 && o.Queue == 0 {
		o.Queue = 64 << 10
	}
	if err := RemoveStale(ctx); err != nil {
		return nil, err
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("linklab: random name: %w", err)
	}
	base := fmt.Sprintf("%s%d-%s", namePrefix, os.Getpid(), hex.EncodeToString(rnd[:]))
	if label != "" {
		base += "-" + label
	}
	l := &Lab{
		Gateway:   Namespace{Name: base + "-gw", Addr: netip.MustParseAddr(gatewayIP)},
		Collector: Namespace{Name: base + "-co", Addr: netip.MustParseAddr(collectorIP)},
		delay:     o.Delay,
		rate:      o.Rate,
		queue:     o.Queue,
		tcpCC:     o.TCPCongestion,
	}
	if err := l.setup(ctx); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (l *Lab) setup(ctx context.Context) error {
	for _, ns := range []Namespace{l.Gateway, l.Collector} {
		if err := run(ctx, nil, "ip", "netns", "add", ns.Name); err != nil {
			return err
		}
	}
	if l.delay > 0 {
		if err := l.makeWire(); err != nil {
			return err
		}
	} else if err := run(ctx, nil, "ip", "link", "add", Iface, "netns", l.Gateway.Name,
		"type", "veth", "peer", "name", Iface, "netns", l.Collector.Name); err != nil {
		// Both ends are created straight in their namespaces, so the
		// interface name never appears in (nor clashes in) the root
		// namespace.
		return err
	}
	for _, ns := range []Namespace{l.Gateway, l.Collector} {
		steps := [][]string{
			{"ip", "-n", ns.Name, "link", "set", "lo", "up"},
			{"ip", "-n", ns.Name, "addr", "add", fmt.Sprintf("%s/%d", ns.Addr, prefixLen), "dev", Iface},
			{"ip", "-n", ns.Name, "link", "set", Iface, "up"},
		}
		if l.delay == 0 {
			// One drop must lose one packet, not a 64 KiB super-packet.
			// (A TUN device without a virtio header never aggregates.)
			steps = append(steps, []string{"ip", "netns", "exec", ns.Name, "ethtool", "-K", Iface, "gso", "off", "tso", "off", "gro", "off"})
		} else {
			steps = append(steps, []string{"ip", "-n", ns.Name, "link", "set", Iface, "txqueuelen", strconv.Itoa(wireQueue)})
		}
		for _, s := range steps {
			if err := run(ctx, nil, s[0], s[1:]...); err != nil {
				return err
			}
		}
		if err := nft(ctx, ns, tableScript); err != nil {
			return err
		}
		if l.tcpCC != "" {
			// /proc/sys/net is the opening thread's namespace's.
			const cc = "/proc/sys/net/ipv4/tcp_congestion_control"
			if err := ns.Do(func() error { return os.WriteFile(cc, []byte(l.tcpCC), 0o644) }); err != nil {
				hint := ""
				if errors.Is(err, os.ErrPermission) {
					hint = " (a namespace may only pick one in net.ipv4.tcp_allowed_congestion_control)"
				}
				return fmt.Errorf("linklab: tcp congestion control %q in %s: %w%s", l.tcpCC, ns.Name, err, hint)
			}
		}
	}
	return l.apply(ctx)
}

// Close stops the lab's relays, kills any process still running in its
// namespaces and removes them (and with them the link). It may be called
// more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	relays := l.relays
	l.relays = nil
	l.mu.Unlock()
	var errs []error
	for _, r := range relays {
		errs = append(errs, r.Close())
	}
	if l.wire != nil {
		errs = append(errs, l.wire.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	for _, ns := range []Namespace{l.Gateway, l.Collector} {
		errs = append(errs, removeNamespace(ctx, ns.Name))
	}
	return errors.Join(errs...)
}

// RemoveStale removes the namespaces of labs whose creating process is
// gone: the leftovers of a crashed or killed earlier run. New calls it.
func RemoveStale(ctx context.Context) error {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("linklab: list namespaces: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, namePrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || processAlive(pid) {
			continue
		}
		errs = append(errs, removeNamespace(ctx, name))
	}
	return errors.Join(errs...)
}

// removeNamespace kills what runs in namespace name and deletes it; a
// namespace already gone is no error.
func removeNamespace(ctx context.Context, name string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	out, err := output(ctx, "ip", "netns", "pids", name)
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil {
			killProcess(pid)
		}
	}
	return run(ctx, nil, "ip", "netns", "delete", name)
}

// Command returns a command that runs name with args inside the namespace
// (`ip netns exec`). `ip` execs name in place, so the process's pid and
// signals are name's own.
func (n Namespace) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// CommandContext is Command, killed when ctx is done.
func (n Namespace) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// AddrPort is the namespace's link address with port.
func (n Namespace) AddrPort(port uint16) netip.AddrPort { return netip.AddrPortFrom(n.Addr, port) }

// AddAddress puts one more address on the namespace's lab interface (for a
// relay to move to, say). It stays until the lab is closed.
func (n Namespace) AddAddress(ctx context.Context, a netip.Addr) error {
	return run(ctx, nil, "ip", "-n", n.Name, "addr", "add", fmt.Sprintf("%s/%d", a, prefixLen), "dev", Iface)
}

// run runs a command, with stdin if given; its error names the command and
// carries its stderr.
func run(ctx context.Context, stdin []byte, name string, args ...string) error {
	_, err := runOutput(ctx, stdin, name, args...)
	return err
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	return runOutput(ctx, nil, name, args...)
}

func runOutput(ctx context.Context, stdin []byte, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("linklab: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Delay is the link's one-way latency (Options.Delay).
func (l *Lab) Delay() time.Duration { return l.delay }
