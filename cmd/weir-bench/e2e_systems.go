package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// system is one sender and its receiver, started and stopped as processes.
type system interface {
	name() string
	sink() string // glob of the receiver's output
	startReceiver(ctx context.Context) error
	stopReceiver() error
	startSender(ctx context.Context) error
	senderPID() int
	receiverPID() int
	port() int // the receiver's
	stop()
}

// procs holds the two processes and how to start each.
type procs struct {
	sysName        string
	dir            string
	sendArgv       []string
	recvArgv       []string
	env            []string
	send, recv     *exec.Cmd
	sendPID        int
	recvPID        int
	recvReady      func() error
	recvStopSignal syscall.Signal
	recvPort       int
	// recvProfile, when set, is the path prefix of the receiver's CPU
	// profiles, one per start: <prefix>.<start>.cpu.pprof.
	recvProfile string
	recvStarts  int
}

func (p *procs) name() string     { return p.sysName }
func (p *procs) senderPID() int   { return p.sendPID }
func (p *procs) receiverPID() int { return p.recvPID }
func (p *procs) port() int        { return p.recvPort }

func (p *procs) startProc(argv []string, log string) (*exec.Cmd, error) {
	f, err := os.OpenFile(filepath.Join(p.dir, log), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), p.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	return cmd, nil
}

func (p *procs) startReceiver(ctx context.Context) error {
	argv := p.recvArgv
	if p.recvProfile != "" {
		p.recvStarts++
		argv = append(slices.Clip(argv), "--cpuprofile", fmt.Sprintf("%s.%d.cpu.pprof", p.recvProfile, p.recvStarts))
	}
	cmd, err := p.startProc(argv, "receiver.log")
	if err != nil {
		return err
	}
	p.recv, p.recvPID = cmd, cmd.Process.Pid
	if err := waitPort(p.recvReady, 30*time.Second); err != nil {
		return fmt.Errorf("%s receiver: %w\n%s", p.sysName, err, tailFile(filepath.Join(p.dir, "receiver.log"), 2000))
	}
	return nil
}

func (p *procs) stopReceiver() error {
	if p.recv == nil {
		return nil
	}
	_ = p.recv.Process.Signal(p.recvStopSignal)
	done := make(chan error, 1)
	go func() { done <- p.recv.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.recv.Process.Kill()
		<-done
	}
	p.recv = nil
	return nil
}

func (p *procs) startSender(ctx context.Context) error {
	cmd, err := p.startProc(p.sendArgv, "sender.log")
	if err != nil {
		return err
	}
	p.send, p.sendPID = cmd, cmd.Process.Pid
	return nil
}

func (p *procs) stop() {
	for _, c := range []*exec.Cmd{p.send, p.recv} {
		if c == nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
	p.send, p.recv = nil, nil
}

func freePort(udp bool) (int, error) {
	if udp {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func dialCheck(port int) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// pkiFiles makes (once per directory) a CA, the collector's certificate
// for localhost and 127.0.0.1, and one gateway certificate, with
// weir-collector pki; rsyslog and syslog-ng use the same files.
type pkiFiles struct{ ca, srvCert, srvKey, cliCert, cliKey string }

func makePKI(bin, dir string) (pkiFiles, error) {
	p := pkiFiles{
		ca:      filepath.Join(dir, "ca.pem"),
		srvCert: filepath.Join(dir, "collector-localhost.pem"),
		srvKey:  filepath.Join(dir, "collector-localhost-key.pem"),
		cliCert: filepath.Join(dir, "gateway-bench-gw.pem"),
		cliKey:  filepath.Join(dir, "gateway-bench-gw-key.pem"),
	}
	if _, err := os.Stat(p.cliKey); err == nil {
		return p, nil
	}
	col := filepath.Join(bin, "weir-collector")
	for _, args := range [][]string{
		{"pki", "init", "--dir", dir, "--name", "bench"},
		{"pki", "issue-collector", "localhost", "--also", "127.0.0.1", "--dir", dir},
		{"pki", "issue-gateway", "bench-gw", "--dir", dir},
	} {
		if out, err := exec.Command(col, args...).CombinedOutput(); err != nil {
			return p, fmt.Errorf("weir-collector %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return p, nil
}

func newSystem(name string, o e2eOptions) (system, error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.dir, name)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	pk, err := makePKI(bin, filepath.Join(o.dir, "pki"))
	if err != nil {
		return nil, err
	}
	switch name {
	case "weir", "weir-nozstd", "weir-dtls", "weir-large":
		return newWeir(name, bin, dir, pk, o.profile)
	case "rsyslog", "rsyslog-sync":
		return newRsyslog(name, dir, pk)
	case "syslog-ng":
		return newSyslogNG(dir, o.syslogNG, pk)
	}
	return nil, fmt.Errorf("e2e: unknown system %q (weir, weir-nozstd, weir-dtls, weir-large, rsyslog, rsyslog-sync, syslog-ng)", name)
}

func newWeir(name, bin, dir string, pk pkiFiles, profile string) (system, error) {
	dtls := name == "weir-dtls"
	port, err := freePort(dtls)
	if err != nil {
		return nil, err
	}
	transport, compression := "tls", "zstd"
	if dtls {
		transport = "dtls"
	}
	if name == "weir-nozstd" {
		compression = "none"
	}
	spoolProfile := "small"
	if name == "weir-large" {
		spoolProfile = "large"
	}
	conf := fmt.Sprintf(`gateway: {id: bench-gw}
data_dir: %[1]s/data
telemetry_interval: 1h
metrics: {listen: ""}
spool: {profile: %[8]s}
inputs:
  files:
    - {name: app, paths: ["%[1]s/logs/*.log"], start_at: beginning}
uplink:
  endpoints: [{address: "127.0.0.1:%[2]d", server_name: localhost, transport: %[3]s}]
  tls: {ca: %[4]s, cert: %[5]s, key: %[6]s}
  compression: %[7]s
  reconnect_min: 200ms
  reconnect_max: 1s
`, dir, port, transport, pk.ca, pk.cliCert, pk.cliKey, compression, spoolProfile)
	cf := filepath.Join(dir, "weir.yaml")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	recv := []string{filepath.Join(bin, "weir-collector"), "run", "--ca", pk.ca, "--cert", pk.srvCert, "--key", pk.srvKey,
		"--sink", filepath.Join(dir, "sink.jsonl"), "--no-quarantine"}
	ready := dialCheck(port)
	if dtls {
		recv = append(recv, "--listen", "", "--listen-dtls", fmt.Sprintf("127.0.0.1:%d", port))
		sinkFile := filepath.Join(dir, "receiver.log")
		// The DTLS listener has no TCP port to dial: ready when it says so.
		ready = func() error {
			if strings.Contains(tailFile(sinkFile, 1<<16), "dtls") {
				return nil
			}
			return fmt.Errorf("collector has not said it listens on dtls")
		}
	} else {
		recv = append(recv, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	}
	send := []string{filepath.Join(bin, "weir"), "run", "--config", cf}
	var recvProfile string
	if profile != "" {
		abs, err := filepath.Abs(profile)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, err
		}
		send = append(send, "--cpuprofile", filepath.Join(abs, name+".cpu.pprof"), "--blockprofile", filepath.Join(abs, name+".block.pprof"))
		recvProfile = filepath.Join(abs, name+".collector")
	}
	return &weirSystem{procs{
		sysName:        name,
		dir:            dir,
		sendArgv:       send,
		recvArgv:       recv,
		recvProfile:    recvProfile,
		recvReady:      ready,
		recvStopSignal: syscall.SIGTERM,
		recvPort:       port,
	}}, nil
}

type weirSystem struct{ procs }

func (w *weirSystem) sink() string { return filepath.Join(w.dir, "sink.jsonl") }

// rsyslog: imfile → an action queue → omfwd over gtls with a client
// certificate → a second rsyslogd → omfile, fsynced per batch. The queue
// is disk-assisted (rsyslog: in memory until 100,000 messages wait, then
// on disk; syncs nothing while it fits in memory) or a disk queue
// (rsyslog-sync: every message written to the queue file and the file
// synced before it is forwarded, the durability Weir's spool gives).
const (
	rsyslogQueueDA = `queue.type="LinkedList" queue.filename="fwd" queue.size="100000" queue.dequeueBatchSize="1024"
  queue.saveOnShutdown="on" queue.maxDiskSpace="4g" queue.syncqueuefiles="on" queue.checkpointInterval="1000"`
	rsyslogQueueDisk = `queue.type="Disk" queue.filename="fwd" queue.dequeueBatchSize="1024"
  queue.maxDiskSpace="4g" queue.syncqueuefiles="on" queue.checkpointInterval="1"`
)

const rsyslogSenderConf = `global(workDirectory="{{dir}}/send-work"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="{{ca}}"
  defaultNetstreamDriverCertFile="{{cert}}"
  defaultNetstreamDriverKeyFile="{{key}}")
module(load="imfile" mode="inotify")
input(type="imfile" file="{{dir}}/logs/*.log" tag="app" persistStateAfterSubmission="on" freshStartTail="off")
action(type="omfwd" target="127.0.0.1" port="{{port}}" protocol="tcp"
  StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"
  {{queue}}
  action.resumeRetryCount="-1" action.resumeInterval="1")
`

const rsyslogReceiverConfE2E = `global(workDirectory="{{dir}}/recv-work"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="{{ca}}"
  defaultNetstreamDriverCertFile="{{srvcert}}"
  defaultNetstreamDriverKeyFile="{{srvkey}}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
input(type="imtcp" port="{{port}}" address="127.0.0.1")
template(name="msgonly" type="string" string="%msg%\n")
action(type="omfile" file="{{dir}}/out.log" template="msgonly" sync="on" flushOnTXEnd="on" ioBufferSize="256k")
`

func newRsyslog(name, dir string, pk pkiFiles) (system, error) {
	rs, err := exec.LookPath("rsyslogd")
	if err != nil {
		return nil, fmt.Errorf("rsyslog: rsyslogd not installed (scripts/deps.sh installs rsyslog and rsyslog-gnutls)")
	}
	port, err := freePort(false)
	if err != nil {
		return nil, err
	}
	queue := rsyslogQueueDA
	if name == "rsyslog-sync" {
		queue = rsyslogQueueDisk
	}
	r := strings.NewReplacer("{{dir}}", dir, "{{ca}}", pk.ca, "{{cert}}", pk.cliCert, "{{key}}", pk.cliKey,
		"{{srvcert}}", pk.srvCert, "{{srvkey}}", pk.srvKey, "{{port}}", fmt.Sprint(port), "{{queue}}", queue)
	for _, d := range []string{"send-work", "recv-work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	sc, rc := filepath.Join(dir, "sender.conf"), filepath.Join(dir, "receiver.conf")
	if err := os.WriteFile(sc, []byte(r.Replace(rsyslogSenderConf)), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(rc, []byte(r.Replace(rsyslogReceiverConfE2E)), 0o600); err != nil {
		return nil, err
	}
	return &fileSystem{procs: procs{
		sysName:        name,
		dir:            dir,
		sendArgv:       []string{rs, "-n", "-f", sc, "-i", filepath.Join(dir, "sender.pid")},
		recvArgv:       []string{rs, "-n", "-f", rc, "-i", filepath.Join(dir, "receiver.pid")},
		recvReady:      dialCheck(port),
		recvStopSignal: syscall.SIGTERM,
		recvPort:       port,
	}, out: filepath.Join(dir, "out.log")}, nil
}

type fileSystem struct {
	procs
	out string
}

func (f *fileSystem) sink() string { return f.out }

// syslog-ng: wildcard-file → network(tls) with a reliable disk-buffer →
// a second syslog-ng → file() with fsync(yes).
const syslogNGSenderConf = `@version: 3.38
options { stats-freq(0); time-reopen(1); log-fifo-size(100000); keep-hostname(yes); };
source s_files { wildcard-file(base-dir("{{dir}}/logs") filename-pattern("*.log") flags(no-parse)
  log-iw-size(100000) log-fetch-limit(1000) max-files(64) follow-freq(0.1)); };
destination d_net { network("localhost" port({{port}}) transport("tls")
  tls(ca-file("{{ca}}") cert-file("{{cert}}") key-file("{{key}}") peer-verify(required-trusted))
  disk-buffer(reliable(yes) dir("{{dir}}/send-buf") disk-buf-size(4294967296) mem-buf-size(163840000))); };
log { source(s_files); destination(d_net); flags(flow-control); };
`

const syslogNGReceiverConf = `@version: 3.38
options { stats-freq(0); keep-hostname(yes); log-fifo-size(100000); };
source s_net { network(ip("127.0.0.1") port({{port}}) transport("tls") flags(no-parse) log-iw-size(100000) log-fetch-limit(1000)
  tls(ca-file("{{ca}}") cert-file("{{srvcert}}") key-file("{{srvkey}}") peer-verify(required-trusted))); };
destination d_file { file("{{dir}}/out.log" template("$MSG\n") fsync(yes)); };
log { source(s_net); destination(d_file); flags(flow-control); };
`

func newSyslogNG(dir, root string, pk pkiFiles) (system, error) {
	bin := "syslog-ng"
	var env, extra []string
	if root != "" {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, err
		}
		bin = filepath.Join(abs, "usr/sbin/syslog-ng")
		env = []string{"LD_LIBRARY_PATH=" + filepath.Join(abs, "usr/lib/syslog-ng")}
		extra = []string{"--module-path", filepath.Join(abs, "usr/lib/syslog-ng/3.38")}
	}
	if _, err := exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("syslog-ng: %s not found (scripts/deps.sh extracts Debian's syslog-ng-core into bin/tools/syslog-ng)", bin)
	}
	port, err := freePort(false)
	if err != nil {
		return nil, err
	}
	r := strings.NewReplacer("{{dir}}", dir, "{{ca}}", pk.ca, "{{cert}}", pk.cliCert, "{{key}}", pk.cliKey,
		"{{srvcert}}", pk.srvCert, "{{srvkey}}", pk.srvKey, "{{port}}", fmt.Sprint(port))
	if err := os.MkdirAll(filepath.Join(dir, "send-buf"), 0o755); err != nil {
		return nil, err
	}
	sc, rc := filepath.Join(dir, "sender.conf"), filepath.Join(dir, "receiver.conf")
	if err := os.WriteFile(sc, []byte(r.Replace(syslogNGSenderConf)), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(rc, []byte(r.Replace(syslogNGReceiverConf)), 0o600); err != nil {
		return nil, err
	}
	argv := func(conf, who string) []string {
		a := []string{bin, "-F", "--no-caps", "-f", conf, "-R", filepath.Join(dir, who+".persist"),
			"-p", filepath.Join(dir, who+".pid"), "-c", filepath.Join(dir, who+".ctl")}
		return append(a, extra...)
	}
	return &fileSystem{procs: procs{
		sysName:        "syslog-ng",
		dir:            dir,
		sendArgv:       argv(sc, "sender"),
		recvArgv:       argv(rc, "receiver"),
		env:            env,
		recvReady:      dialCheck(port),
		recvStopSignal: syscall.SIGTERM,
		recvPort:       port,
	}, out: filepath.Join(dir, "out.log")}, nil
}
