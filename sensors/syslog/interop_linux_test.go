//go:build linux

package syslog

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

// Integration with real senders (Debian packages bsdutils/util-linux for
// logger; rsyslog with rsyslog-gnutls and rsyslog-openssl). Tests skip
// with a message when a sender is not installed.

func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s): %v", tool, pkg, err)
	}
	return p
}

// TestLoggerSends: util-linux logger over UDP and TCP, RFC 3164 and RFC
// 5424, newline framing and octet counting, arrives parsed.
func TestLoggerSends(t *testing.T) {
	logger := need(t, "logger", "bsdutils")
	s, sink := startServer(t, loopbackConfig(t, nil))
	host, err := os.Hostname()
	require.NoError(t, err)

	cases := []struct {
		name      string
		args      []string
		transport string
		format    string
	}{
		{"udp rfc3164", []string{"--udp", "--rfc3164"}, "udp", "rfc3164"},
		{"udp rfc5424", []string{"--udp", "--rfc5424", "--msgid", "ID47", "--sd-id", "weir@32473", "--sd-param", `tank="T2"`}, "udp", "rfc5424"},
		{"tcp rfc3164", []string{"--tcp", "--rfc3164"}, "tcp", "rfc3164"},
		{"tcp rfc5424", []string{"--tcp", "--rfc5424", "--msgid", "ID47"}, "tcp", "rfc5424"},
		{"tcp rfc5424 octet-count", []string{"--tcp", "--rfc5424", "--octet-count"}, "tcp", "rfc5424"},
		{"tcp rfc3164 octet-count", []string{"--tcp", "--rfc3164", "--octet-count"}, "tcp", "rfc3164"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := s.Addr(c.transport).String()
			port := addr[strings.LastIndexByte(addr, ':')+1:]
			msg := "hello from logger " + c.name
			before := time.Now()
			args := append([]string{"--server", "127.0.0.1", "--port", port, "-t", "weirtest", "-p", "local3.warning", "-i"}, c.args...)
			out, err := exec.Command(logger, append(args, msg)...).CombinedOutput()
			require.NoError(t, err, "logger: %s", out)

			evs := sink.waitFor(t, msg, func(e []event.Event) bool { return findMessage(e, msg) != nil })
			e := findMessage(evs, msg)
			f := fieldMap(e.Fields)
			assert.Equal(t, c.format, f[keyFormat].Str, "format; parse error: %s", f[keyParseError].Str)
			assert.Equal(t, c.transport, f[keyTransport].Str)
			assert.Equal(t, event.SevWarning, e.Severity)
			assert.Equal(t, uint64(19), f[keyFacility].Num)
			assert.Equal(t, "weirtest", f[keyAppName].Str)
			assert.NotEmpty(t, f[keyProcID].Str)
			assert.Equal(t, host, e.Host)
			// logger's RFC 3164 timestamp has whole seconds.
			assert.InDelta(t, before.UnixNano(), e.Observed, float64(2*time.Second))
			given := strings.Join(c.args, " ")
			if strings.Contains(given, "ID47") {
				assert.Equal(t, "ID47", f[keyMsgID].Str)
			}
			if strings.Contains(given, "sd-id") {
				assert.Equal(t, "T2", f["sd.weir@32473.tank"].Str)
			}
			if c.format == "rfc5424" {
				assert.Equal(t, "1", f["sd.timeQuality.tzKnown"].Str)
			}
		})
	}
}

const rsyslogConf = `
global(
  workDirectory="{{dir}}/work"
  maxMessageSize="64k"
  defaultNetstreamDriverCAFile="{{ca}}"
  defaultNetstreamDriverCertFile="{{cert}}"
  defaultNetstreamDriverKeyFile="{{key}}"
)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{{dir}}/log.sock" CreatePath="on")
action(type="omfwd" target="127.0.0.1" port="{{port}}" protocol="tcp"
  StreamDriver="{{driver}}" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
  StreamDriverPermittedPeers="localhost"
  template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted")
action(type="omfwd" target="127.0.0.1" port="{{port}}" protocol="tcp"
  StreamDriver="{{driver}}" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
  StreamDriverPermittedPeers="localhost"
  template="RSYSLOG_ForwardFormat")
`

// TestRsyslogForwardsOverMutualTLS: a private rsyslogd forwards over TLS
// with its own client certificate (gtls and ossl drivers), RFC 5424
// octet-counted and RFC 3164 high-precision LF-framed; the listener
// requires the client certificate; both arrive parsed.
func TestRsyslogForwardsOverMutualTLS(t *testing.T) {
	rsyslogd := need(t, "rsyslogd", "rsyslog")
	logger := need(t, "logger", "bsdutils")
	host, err := os.Hostname()
	require.NoError(t, err)
	for _, c := range rsyslogDrivers {
		t.Run(c.driver, func(t *testing.T) {
			c.need(t)
			pki := newTestPKI(t)
			cfg := loopbackConfig(t, pki)
			cfg.UDP.Listen, cfg.TCP.Listen = "", ""
			s, sink := startServer(t, cfg)
			sock := startRsyslog(t, rsyslogd, rsyslogConf, c.driver, pki, s.Addr(TransportTLS))

			msg := "pump 3 pressure high via rsyslog " + c.driver
			o, err := exec.Command(logger, "-u", sock, "-t", "weirtest", "-p", "local4.notice", "-i", msg).CombinedOutput()
			require.NoError(t, err, "logger: %s", o)

			evs := sink.waitFor(t, "both forwards", func(e []event.Event) bool {
				n := 0
				for _, ev := range e {
					if ev.Message == msg || ev.Message == " "+msg {
						n++
					}
				}
				return n == 2
			})
			formats := map[string]bool{}
			for _, e := range evs {
				if strings.TrimPrefix(e.Message, " ") != msg {
					continue
				}
				f := fieldMap(e.Fields)
				formats[f[keyFormat].Str] = true
				assert.Equal(t, TransportTLS, f[keyTransport].Str)
				assert.Equal(t, "CN=plc7", f[keyTLSPeer].Str, "the client certificate")
				assert.Equal(t, event.SevNotice, e.Severity)
				assert.Equal(t, uint64(20), f[keyFacility].Num)
				assert.Equal(t, "weirtest", f[keyAppName].Str)
				assert.NotEmpty(t, f[keyProcID].Str)
				assert.Equal(t, host, e.Host)
				assert.InDelta(t, time.Now().UnixNano(), e.Observed, float64(time.Minute))
			}
			assert.Equal(t, map[string]bool{"rfc5424": true, "rfc3164": true}, formats, fmt.Sprint(evs))
		})
	}
}

// rsyslogBurstConf forwards what arrives on the socket over TLS, RFC 5424
// octet-counted. imuxsock's own rate limit is off so that rsyslogd passes
// on every message of the burst.
const rsyslogBurstConf = `
global(
  workDirectory="{{dir}}/work"
  defaultNetstreamDriverCAFile="{{ca}}"
  defaultNetstreamDriverCertFile="{{cert}}"
  defaultNetstreamDriverKeyFile="{{key}}"
)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{{dir}}/log.sock" CreatePath="on" RateLimit.Interval="0")
action(type="omfwd" target="127.0.0.1" port="{{port}}" protocol="tcp"
  StreamDriver="{{driver}}" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
  StreamDriverPermittedPeers="localhost"
  template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted")
`

// burstMessages is the burst a sender's buffer releases after an outage,
// five times the default rate limit's burst.
const burstMessages = 10_000

// TestRsyslogBurstOverMutualTLSIsPaced: a burst of 10,000 messages from
// rsyslogd over mutual TLS, at the default rate limit (1000/s, burst
// 2000), is stored whole: the authenticated sender is held back to the
// rate instead of having its excess dropped.
func TestRsyslogBurstOverMutualTLSIsPaced(t *testing.T) {
	rsyslogd := need(t, "rsyslogd", "rsyslog")
	logger := need(t, "logger", "bsdutils")
	if testing.Short() {
		t.Skip("a 10,000-message burst paced at the default 1000/s takes about 8 s; not under -short")
	}
	for _, c := range rsyslogDrivers {
		t.Run(c.driver, func(t *testing.T) {
			c.need(t)
			t.Parallel()
			pki := newTestPKI(t)
			cfg := loopbackConfig(t, pki)
			cfg.UDP.Listen, cfg.TCP.Listen = "", ""
			cfg.RateLimit = DefaultConfig().RateLimit
			s, sink := startServer(t, cfg)
			sock := startRsyslog(t, rsyslogd, rsyslogBurstConf, c.driver, pki, s.Addr(TransportTLS))

			var lines bytes.Buffer
			for i := range burstMessages {
				fmt.Fprintf(&lines, "burst %05d\n", i)
			}
			// With no message given, logger sends each line of its input.
			cmd := exec.Command(logger, "-u", sock, "-t", "weirtest", "-p", "local4.notice")
			cmd.Stdin = &lines
			o, err := cmd.CombinedOutput()
			require.NoError(t, err, "logger: %s", o)

			// Wait until every message is accounted for: stored, or
			// dropped by the rate limit.
			deadline := time.Now().Add(2 * time.Minute)
			var st ListenerStatus
			for {
				st = listenerStatus(t, s, TransportTLS)
				if st.Received+st.RateLimited >= burstMessages && s.Status().Emitted >= st.Received {
					break
				}
				require.True(t, time.Now().Before(deadline), "timed out: %+v", st)
				time.Sleep(50 * time.Millisecond)
			}
			seen := map[string]bool{}
			for _, e := range sink.events() {
				if m := strings.TrimPrefix(e.Message, " "); strings.HasPrefix(m, "burst ") {
					seen[m] = true
				}
			}
			assert.Zero(t, st.RateLimited, "messages dropped by the rate limit")
			assert.Equal(t, burstMessages, len(seen), "distinct messages stored")
			assert.Positive(t, st.Paced, "the sender was held back")
			t.Logf("%s: stored %d of %d, rate-limited %d, paced %d", c.driver, len(seen), burstMessages, st.RateLimited, st.Paced)
		})
	}
}

// listenerStatus is the Status of one transport's listener.
func listenerStatus(t *testing.T, s *Server, transport string) ListenerStatus {
	t.Helper()
	for _, l := range s.Status().Listeners {
		if l.Transport == transport {
			return l
		}
	}
	t.Fatalf("no %s listener", transport)
	return ListenerStatus{}
}

// rsyslogDrivers are rsyslog's TLS stream drivers.
var rsyslogDrivers = []rsyslogDriver{
	{"gtls", "lmnsd_gtls.so", "rsyslog-gnutls"},
	{"ossl", "lmnsd_ossl.so", "rsyslog-openssl"},
}

type rsyslogDriver struct{ driver, module, pkg string }

func (d rsyslogDriver) need(t *testing.T) {
	t.Helper()
	if m, _ := filepath.Glob("/usr/lib/*/rsyslog/" + d.module); len(m) == 0 {
		t.Skipf("rsyslog %s driver not installed (Debian package %s)", d.driver, d.pkg)
	}
}

// startRsyslog runs a private rsyslogd on conf (a template: {{dir}},
// {{ca}}, {{cert}}, {{key}}, {{port}}, {{driver}}) with the client
// certificate of pki, forwarding to addr, until the test ends. It returns
// the path of the Unix socket it reads local messages from.
func startRsyslog(t *testing.T, rsyslogd, conf, driver string, pki *testPKI, addr net.Addr) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "work"), 0o700))
	a := addr.String()
	conf = strings.NewReplacer("{{dir}}", dir, "{{ca}}", pki.caCert, "{{cert}}", pki.clientCert,
		"{{key}}", pki.clientKey, "{{port}}", a[strings.LastIndexByte(a, ':')+1:], "{{driver}}", driver).Replace(conf)
	confPath := filepath.Join(dir, "rsyslog.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))
	out := &lockedBuffer{}
	cmd := exec.Command(rsyslogd, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s", out.String())
		}
	})
	sock := filepath.Join(dir, "log.sock")
	require.Eventually(t, func() bool { _, err := os.Stat(sock); return err == nil }, 10*time.Second, 20*time.Millisecond, "rsyslogd did not create its socket: %s", out)
	return sock
}

// lockedBuffer is a bytes.Buffer a process writes to while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
