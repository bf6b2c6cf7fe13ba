package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// board is one power-on of the emulated board: QEMU, its console, and
// the Modbus device on its second serial port.
type board struct {
	n       int
	qemu    *exec.Cmd
	exited  chan error
	console *console
	sim     *exec.Cmd
	on      time.Time // when the CPUs started
	logs    []*os.File
}

// redirected is QEMU's line naming the pty of a chardev.
var redirected = regexp.MustCompile(`char device redirected to (\S+) \(label (\w+)\)`)

// powerOn starts QEMU stopped, opens the console's pty and starts weir-sim
// on the Modbus line's, then lets the CPUs run: nothing the board prints or
// asks of its serial ports is lost to a terminal not yet open.
func (s *smoke) powerOn(ctx context.Context, n int) (*board, error) {
	b := &board{n: n, exited: make(chan error, 1)}
	monitor := filepath.Join(s.opt.work, "qemu-monitor.sock")
	_ = os.Remove(monitor)
	b.qemu = exec.Command("qemu-system-aarch64",
		"-M", "virt", "-cpu", "cortex-a53", "-smp", strconv.Itoa(s.opt.smp), "-m", "512",
		"-nodefaults", "-display", "none", "-no-reboot", "-S",
		"-kernel", s.opt.kernel, "-initrd", s.initrd,
		// panic=-1: a kernel panic reboots at once, which -no-reboot turns
		// into QEMU's exit.
		"-append", "console=ttyAMA0 quiet panic=-1",
		// The technician's port (ttyAMA0) and the Modbus line (a PCI 16550,
		// ttyS0 in the board), each on a pty of the host.
		"-chardev", "pty,id=console", "-serial", "chardev:console",
		"-chardev", "pty,id=modbus", "-device", "pci-serial,chardev=modbus",
		// The data disk: the board's persistent partition. QEMU writes
		// what the board writes to the file and flushes it when the board
		// flushes; a kill loses only what the board had not written.
		"-drive", "file="+s.disk+",if=none,format=raw,id=data,cache=writeback",
		"-device", "virtio-blk-pci,drive=data",
		// User-mode networking: the host is 10.0.2.2 from the board.
		"-netdev", "user,id=net", "-device", "virtio-net-pci,netdev=net,romfile=",
		"-device", "virtio-rng-pci",
		"-monitor", "unix:"+monitor+",server=on,wait=off",
	)
	qlog, err := s.logFile(fmt.Sprintf("qemu-%02d.log", n))
	if err != nil {
		return nil, err
	}
	b.logs = append(b.logs, qlog)
	// QEMU names the ptys on its standard output, errors on its standard
	// error: both read here, and logged.
	out, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	b.qemu.Stdout, b.qemu.Stderr = w, w
	err = b.qemu.Start()
	w.Close()
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("qemu-system-aarch64: %w (scripts/deps.sh image installs it)", err)
	}
	ptys := make(chan [2]string, 4)
	go func() {
		defer out.Close()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(qlog, line)
			if m := redirected.FindStringSubmatch(line); m != nil {
				ptys <- [2]string{m[2], m[1]}
			}
		}
		close(ptys)
	}()
	go func() { b.exited <- b.qemu.Wait() }()
	paths := map[string]string{}
	for len(paths) < 2 {
		select {
		case p, ok := <-ptys:
			if !ok {
				b.kill()
				return nil, fmt.Errorf("qemu exited before naming its ptys (%s)", qlog.Name())
			}
			paths[p[0]] = p[1]
		case <-time.After(30 * time.Second):
			b.kill()
			return nil, fmt.Errorf("qemu named no ptys within 30s (%s)", qlog.Name())
		}
	}
	clog, err := s.logFile(fmt.Sprintf("console-%02d.log", n))
	if err != nil {
		b.kill()
		return nil, err
	}
	b.logs = append(b.logs, clog)
	if b.console, err = openConsole(paths["console"], clog); err != nil {
		b.kill()
		return nil, err
	}
	slog, err := s.logFile(fmt.Sprintf("weir-sim-%02d.log", n))
	if err != nil {
		b.kill()
		return nil, err
	}
	b.logs = append(b.logs, slog)
	b.sim = exec.Command(s.opt.sim, "--device", paths["modbus"], "--unit", "7", "--baud", "19200")
	b.sim.Stdout, b.sim.Stderr = slog, slog
	if err := b.sim.Start(); err != nil {
		b.kill()
		return nil, fmt.Errorf("weir-sim: %w", err)
	}
	if err := qemuMonitor(monitor, "cont"); err != nil {
		b.kill()
		return nil, err
	}
	b.on = time.Now()
	return b, nil
}

// qemuMonitor sends one command to QEMU's human monitor.
func qemuMonitor(path, command string) error {
	var conn net.Conn
	var err error
	for range 50 {
		if conn, err = net.Dial("unix", path); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("qemu monitor %s: %w", path, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadString(')'); err != nil { // the banner, up to "(qemu"
		return fmt.Errorf("qemu monitor: %w", err)
	}
	if _, err := fmt.Fprintf(conn, "%s\n", command); err != nil {
		return fmt.Errorf("qemu monitor: %s: %w", command, err)
	}
	if _, err := r.ReadString(')'); err != nil { // the next prompt: done
		return fmt.Errorf("qemu monitor: %s: %w", command, err)
	}
	return nil
}

// stopSim stops the Modbus device: no new readings.
func (b *board) stopSim() {
	if b.sim == nil || b.sim.Process == nil {
		return
	}
	_ = b.sim.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.sim.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = b.sim.Process.Kill()
		<-done
	}
	b.sim = nil
}

// kill is the power cut: SIGKILL to QEMU, whatever the board was doing.
// The Modbus device stops with it (its line is gone).
func (b *board) kill() {
	if b.qemu != nil && b.qemu.Process != nil {
		_ = b.qemu.Process.Signal(syscall.SIGKILL)
		select {
		case <-b.exited:
		case <-time.After(10 * time.Second):
		}
	}
	b.stopSim()
	if b.console != nil {
		b.console.close()
	}
	for _, f := range b.logs {
		f.Close()
	}
}

// running says whether QEMU is still up; an exit it was not asked for
// (a kernel panic, a crash) is an error.
func (b *board) running() error {
	select {
	case err := <-b.exited:
		b.exited <- err
		return fmt.Errorf("the board stopped by itself (qemu: %v); see qemu-%02d.log and console-%02d.log", err, b.n, b.n)
	default:
		return nil
	}
}
