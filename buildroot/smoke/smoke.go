package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// smoke is one run: the host's side (PKI, collector, data disk) and the
// boards powered on one after another.
type smoke struct {
	opt       options
	steps     *steps
	rng       *rand.Rand
	initrd    string // base initramfs + the site's archive
	disk      string // the board's data partition
	sink      string
	collector *exec.Cmd
	board     *board        // the one powered on
	tech      *session      // a session open on its console, for the drain
	promptAt  time.Duration // power on to login prompt, first boot
	cuts      []cut
}

// cut is one power cut and what the next boot said of it.
type cut struct {
	n          int
	phase      string        // what the board was doing: starting, started, running
	after      time.Duration // from power on
	heldLines  int           // the gateway's records at the collector after the cut
	heldMax    uint64        // the highest sequence among them
	opened     *opened       // the spool at the next boot, from the gateway's log
	bootPrompt time.Duration // the next boot's login prompt
}

func (s *smoke) logFile(name string) (*os.File, error) {
	return os.Create(filepath.Join(s.opt.work, name))
}

func (s *smoke) cleanup() {
	if s.board != nil {
		s.board.kill()
	}
	if s.collector != nil && s.collector.Process != nil {
		_ = s.collector.Process.Signal(syscall.SIGTERM)
		_ = s.collector.Wait()
	}
}

// prepare makes the site's PKI and configuration, starts the collector
// and makes the board's data disk.
func (s *smoke) prepare(ctx context.Context) error {
	for _, tool := range []string{"qemu-system-aarch64", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (scripts/deps.sh image installs it)", tool)
		}
	}
	pki := filepath.Join(s.opt.work, "pki")
	for _, args := range [][]string{
		{"pki", "init", "--dir", pki},
		{"pki", "issue-collector", "localhost", "--dir", pki},
		{"pki", "issue-gateway", gatewayID, "--dir", pki},
	} {
		if out, err := exec.CommandContext(ctx, s.opt.collector, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("weir-collector %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	cmd := exec.CommandContext(ctx, s.opt.weir, "passwd", "--stdin")
	cmd.Stdin = strings.NewReader(password + "\n")
	hash, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("weir passwd --stdin: %w", err)
	}
	s.steps.say("site: CA, collector and gateway certificates (weir-collector pki), console password hash (weir passwd --stdin: %s...)", string(hash[:min(len(hash), 16)]))

	port, err := freePort()
	if err != nil {
		return err
	}
	s.sink = filepath.Join(s.opt.work, "sink.jsonl")
	clog, err := s.logFile("collector.log")
	if err != nil {
		return err
	}
	s.collector = exec.Command(s.opt.collector, "run", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--ca", filepath.Join(pki, "ca.pem"),
		"--cert", filepath.Join(pki, "collector-localhost.pem"), "--key", filepath.Join(pki, "collector-localhost-key.pem"),
		"--sink", s.sink)
	s.collector.Stdout, s.collector.Stderr = clog, clog
	if err := s.collector.Start(); err != nil {
		return fmt.Errorf("weir-collector run: %w", err)
	}
	if err := waitListening(fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second); err != nil {
		return fmt.Errorf("weir-collector: %w (collector.log)", err)
	}
	s.steps.say("collector: weir-collector on 127.0.0.1:%d (the board's 10.0.2.2:%d), sink %s", port, port, s.sink)

	files, err := readPKI(pki)
	if err != nil {
		return err
	}
	site, err := siteArchive(siteConfig(port, strings.TrimSpace(string(hash))), files)
	if err != nil {
		return err
	}
	base, err := os.ReadFile(s.opt.initrd)
	if err != nil {
		return err
	}
	s.initrd = filepath.Join(s.opt.work, "initrd.gz")
	if err := os.WriteFile(s.initrd, append(base, site...), 0o644); err != nil {
		return err
	}
	s.disk = filepath.Join(s.opt.work, "data.img")
	if err := os.WriteFile(s.disk, nil, 0o644); err != nil {
		return err
	}
	if err := os.Truncate(s.disk, 256<<20); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "weir-data", s.disk).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4: %w\n%s", err, out)
	}
	s.steps.say("board: initramfs %s + site archive (%d bytes: /etc/weir/weir.yaml, pki), data disk %s (256 MiB ext4, label weir-data)",
		filepath.Base(s.opt.initrd), len(site), s.disk)
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s: %w", addr, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bootToPrompt powers a board on and waits for the console's login prompt.
func (s *smoke) bootToPrompt(ctx context.Context, n int) (time.Duration, error) {
	b, err := s.powerOn(ctx, n)
	if err != nil {
		return 0, err
	}
	s.board = b
	if _, err := b.console.expect(ctx, loginPrompt, s.opt.bootTimeout); err != nil {
		if rerr := b.running(); rerr != nil {
			return 0, fmt.Errorf("boot %d: %w", n, rerr)
		}
		return 0, fmt.Errorf("boot %d: %w", n, err)
	}
	return time.Since(b.on), nil
}

// firstBoot is the session's visit: log in, read the status, the
// sensors and the clock, and see readings reach the collector.
func (s *smoke) firstBoot(ctx context.Context) error {
	prompt, err := s.bootToPrompt(ctx, 0)
	if err != nil {
		return err
	}
	s.promptAt = prompt
	s.steps.say("boot 0: kernel, init scripts, weir console's login prompt on ttyAMA0 after %.1fs", prompt.Seconds())
	t, err := login(ctx, s.board.console, user, password, gatewayID)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	s.steps.say("console: logged in as %s (argon2id checked on the board)", user)

	status, err := t.run(ctx, "status")
	if err != nil {
		return err
	}
	if !strings.Contains(status, "gateway  "+gatewayID+"  (weir ") {
		return fmt.Errorf("status does not name the gateway:\n%s", status)
	}
	s.steps.say("console: status\n%s", indent(status))

	var sensors string
	deadline := time.Now().Add(time.Minute)
	for {
		if sensors, err = t.run(ctx, "sensors"); err != nil {
			return err
		}
		if polled.MatchString(collapse(sensors)) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sensors: flow-1 on rs485-1 not polled within a minute:\n%s", sensors)
		}
		time.Sleep(2 * time.Second)
	}
	s.steps.say("console: sensors: flow-1 polled over the board's second serial port (weir-sim on the host)\n%s", indent(sensors))

	clock, err := t.run(ctx, "ptp")
	if err != nil {
		return err
	}
	if !clockShown.MatchString(collapse(clock)) {
		return fmt.Errorf("ptp: no clock mode and state:\n%s", clock)
	}
	s.steps.say("console: ptp: the clock's state\n%s", indent(clock))

	// Records spooled and acknowledged: the gateway says so, and the
	// collector holds the readings.
	deadline = time.Now().Add(2 * time.Minute)
	for {
		if status, err = t.run(ctx, "status"); err != nil {
			return err
		}
		sp, okSpool := parseStatusSpool(status)
		up := statusUplink.FindStringSubmatch(collapse(status))
		h, err := readSink(s.sink, gatewayID)
		if err != nil {
			return err
		}
		if okSpool && up != nil && up[1] == "connected" && sp.acked > 0 && h.bySource["modbus:flow-1"] >= 20 {
			s.steps.say("records: the gateway's spool acked up to %d, next %d, backlog %d; uplink %s, sent %s, acked %s; the collector holds %d readings of modbus:flow-1 (%d records in all)",
				sp.acked, sp.next, sp.backlog, up[1], up[2], up[3], h.bySource["modbus:flow-1"], h.distinct())
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("records not acknowledged within 2 minutes (collector holds %d readings); status:\n%s", h.bySource["modbus:flow-1"], status)
		}
		time.Sleep(2 * time.Second)
	}
	spool, err := t.run(ctx, "spool")
	if err != nil {
		return err
	}
	s.steps.say("console: spool\n%s", indent(spool))
	if err := t.exit(ctx); err != nil {
		return err
	}
	s.steps.say("console: logged out")
	return nil
}

var (
	// polled is the sensors table's row of a device that has been polled.
	polled = regexp.MustCompile(`bus rs485-1 \(rtu /dev/ttyS0\).* flow-1 7 \S+ \S+ ago`)
	// clockShown is the ptp command's mode and state.
	clockShown = regexp.MustCompile(`mode linuxptp state (locked|holdover|freerun)`)
)

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    | " + l
	}
	return strings.Join(lines, "\n")
}
