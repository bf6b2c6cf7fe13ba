package syslogtls

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/siem"
)

// rsyslogReceiverConf is a private rsyslogd receiving over TLS and
// requiring a client certificate signed by the CA (x509/certvalid),
// writing each message's bytes as received (rawmsg) to out.log, each
// followed by a separator line. Control characters and trailing line
// ends are kept, and messages up to 512 KiB taken whole (a 64 KiB message is 150 KiB as CEF: escapes and its base64).
const rsyslogReceiverConf = `
global(
  workDirectory="{{dir}}/work"
  maxMessageSize="512k"
  parser.escapeControlCharactersOnReceive="off"
  parser.dropTrailingLFOnReception="off"
  defaultNetstreamDriver="{{driver}}"
  defaultNetstreamDriverCAFile="{{ca}}"
  defaultNetstreamDriverCertFile="{{cert}}"
  defaultNetstreamDriverKeyFile="{{key}}"
)
module(load="imtcp" StreamDriver.Name="{{driver}}" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
input(type="imtcp" port="{{port}}" address="127.0.0.1")
template(name="raw" type="string" string="%rawmsg%\n` + separator + `\n")
action(type="omfile" file="{{dir}}/out.log" template="raw")
`

const separator = "--weir-end-7f3a--"

type testPKI struct {
	dir                       string
	ca, serverCert, serverKey string
	client                    uplink.TLSConfig
	stranger                  uplink.TLSConfig // a client certificate of another CA
}

func writePEM(t *testing.T, path, typ string, der []byte) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

func newCA(t *testing.T, dir, name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return ca, key, writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
}

func issue(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage, serial int64) (string, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der),
		writePEM(t, filepath.Join(dir, name+"-key.pem"), "PRIVATE KEY", kder)
}

func newTestPKI(t *testing.T) *testPKI {
	dir := t.TempDir()
	p := &testPKI{dir: dir}
	ca, caKey, caPath := newCA(t, dir, "ca")
	p.ca = caPath
	p.serverCert, p.serverKey = issue(t, dir, "localhost", ca, caKey, x509.ExtKeyUsageServerAuth, 2)
	cert, key := issue(t, dir, "gw-1", ca, caKey, x509.ExtKeyUsageClientAuth, 3)
	p.client = uplink.TLSConfig{CA: caPath, Cert: cert, Key: key}
	other, otherKey, _ := newCA(t, dir, "other-ca")
	scert, skey := issue(t, dir, "stranger", other, otherKey, x509.ExtKeyUsageClientAuth, 4)
	p.stranger = uplink.TLSConfig{CA: caPath, Cert: scert, Key: skey}
	return p
}

type receiver struct {
	addr   string
	dir    string
	driver string
	pki    *testPKI
	cmd    *exec.Cmd
	out    string
	log    *bytes.Buffer
	mu     *sync.Mutex
}

// startReceiver runs rsyslogd with driver (gtls or ossl) until the test
// ends.
func startReceiver(t *testing.T, driver string, p *testPKI) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "work"), 0o700))
	r := &receiver{addr: addr, dir: dir, driver: driver, pki: p, out: filepath.Join(dir, "out.log"), log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	r.start(t)
	return r
}

// start runs rsyslogd on the receiver's address, directory and out.log
// (appended to) until the test ends or kill.
func (r *receiver) start(t *testing.T) {
	t.Helper()
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Skip("rsyslogd not installed (Debian rsyslog; scripts/deps.sh installs it)")
	}
	if matches, _ := filepath.Glob(filepath.Join("/usr/lib/*/rsyslog", "lmnsd_"+r.driver+".so")); len(matches) == 0 {
		t.Skipf("rsyslog's %s driver not installed (Debian rsyslog-gnutls / rsyslog-openssl)", r.driver)
	}
	p, dir, addr := r.pki, r.dir, r.addr
	conf := strings.NewReplacer("{{dir}}", dir, "{{ca}}", p.ca, "{{cert}}", p.serverCert, "{{key}}", p.serverKey,
		"{{port}}", addr[strings.LastIndexByte(addr, ':')+1:], "{{driver}}", r.driver).Replace(rsyslogReceiverConf)
	confPath := filepath.Join(dir, "rsyslog.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))
	cmd := exec.Command(rsyslogd, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = lockedWriter{r}, lockedWriter{r}
	require.NoError(t, cmd.Start())
	r.cmd = cmd
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
			r.mu.Lock()
			t.Logf("rsyslogd output:\n%s", r.log.String())
			r.mu.Unlock()
		}
	})
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "rsyslogd does not listen on %s", addr)
}

// kill ends rsyslogd with SIGKILL, as a crash or a power cut would.
func (r *receiver) kill(t *testing.T) {
	require.NoError(t, r.cmd.Process.Kill())
	_ = r.cmd.Wait()
	_ = os.Remove(filepath.Join(r.dir, "rsyslogd.pid"))
}

type lockedWriter struct{ r *receiver }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.log.Write(p)
}

// messages are what rsyslogd wrote, each as received.
func (r *receiver) messages() [][]byte {
	b, _ := os.ReadFile(r.out)
	var out [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\n"+separator+"\n"))
		if i < 0 {
			break
		}
		out = append(out, b[:i])
		b = b[i+len(separator)+2:]
	}
	return out
}

// hostile are records with what each format must escape or carry: line
// ends, '|', '=', '\', ']', quotes, non-ASCII, invalid UTF-8, a 64 KiB
// message. (NUL is left to the golden cases: rsyslogd's C strings end
// at it.)
func hostile() []*event.Event {
	base := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC).UnixNano()
	q := event.Quality{Source: event.TimePTP, State: event.ClockLocked, ErrorBound: 150}
	mk := func(i int, kind event.Kind, source, host, msg string, fs ...event.Field) *event.Event {
		return &event.Event{Gateway: "gw-1", Seq: uint64(1000 + i), Time: base + int64(i)*1001, Quality: q, Source: source,
			Kind: kind, Severity: event.Severity(i % 8), Host: host, Message: msg, Fields: fs}
	}
	return []*event.Event{
		mk(0, event.KindLog, "syslog", "plc-7", "line one\nline two\r\npipe | equals = backslash \\ bracket ] quote \" tab\tend",
			event.Uint("facility", 4), event.Str("app_name", "pumpd"), event.Str("procid", "812"), event.Str("peer", "192.0.2.7:514"),
			event.Str("odd key=]\"", "a\"b\\c]d=e|f")),
		mk(1, event.KindReading, "modbus:flow-1", "pump-3", "", event.Float("flow", 12.75), event.Int("delta", -4), event.Bytes("raw", []byte{0, 255})),
		mk(2, event.KindLog, "varlog", "estação-α", "Störung Pumpe 3 — 水位 高 — 🚰", event.Str("path", "/var/log/störung.log")),
		mk(3, event.KindLog, "syslog", "plc-7", "ok \xff\xfe \x1b[1m \xc3( end", event.Uint("facility", 1), event.Str("bad", "x\xffy")),
		mk(4, event.KindLog, "varlog", "h", strings.Repeat("a|b=c\\d]e\"f\tg\nh ", 4096), event.Str("path", "/var/log/big.log")),
		mk(5, event.KindIntegrity, "integrity", "gw-1", "/etc/site config=1.yaml modified", event.Str("path", "/etc/site config=1.yaml")),
		mk(6, event.KindAlert, "weir", "gw-1", "spool recovered: records lost"),
		mk(7, event.KindAudit, "audit", "gw-1", `type=SYSCALL msg=audit(1.000:7): exe="/usr/bin/id"`, event.Uint("serial", 7)),
	}
}

// TestRsyslogReceivesEveryFormat: records sent by the output over mutual
// TLS to a real rsyslogd (each of its TLS drivers) in RFC 5424, CEF, LEEF
// and ECS arrive intact: each message rsyslogd wrote, as it received it,
// reads back through the strict parsers to the record's fields
// (siem.Verify). A client certificate of another CA gets nothing in.
func TestRsyslogReceivesEveryFormat(t *testing.T) {
	p := newTestPKI(t)
	for _, driver := range []string{"gtls", "ossl"} {
		t.Run(driver, func(t *testing.T) {
			r := startReceiver(t, driver, p)
			cfg := siem.DefaultEncodingConfig()
			evs := hostile()
			var want int
			for _, f := range siem.Formats {
				tg, err := New(Options{Address: r.addr, ServerName: "localhost", Identity: uplink.NewIdentity(p.client),
					Format: f, Encoding: cfg, Timeout: 5 * time.Second})
				require.NoError(t, err)
				require.NoError(t, tg.Deliver(context.Background(), evs[:4]), f)
				require.NoError(t, tg.Deliver(context.Background(), evs[4:]), f)
				require.NoError(t, tg.Close())
				want += len(evs)
			}
			require.Eventually(t, func() bool { return len(r.messages()) >= want }, 10*time.Second, 50*time.Millisecond,
				"rsyslogd wrote %d of %d messages", len(r.messages()), want)
			msgs := r.messages()
			require.Equal(t, want, len(msgs), "messages rsyslogd wrote")
			byID := map[string]*event.Event{}
			for _, e := range evs {
				byID[siem.DedupeID(e)] = e
			}
			// rsyslogd may write the four connections' messages
			// interleaved: each is matched by its format and its id.
			seen := map[string]int{}
			for i, m := range msgs {
				sm, err := siem.ParseRFC5424(m)
				require.NoError(t, err, "message %d is not RFC 5424: %q", i, clip(m))
				f, payload, id := formatOf(t, sm, m)
				e := byID[id]
				require.NotNil(t, e, "message %d names id %q", i, id)
				if f != siem.FormatRFC5424 {
					require.False(t, sm.BOM)
					require.Equal(t, siem.ClassOf(e).String(), sm.MsgID)
				}
				require.NoError(t, siem.Verify(f, cfg, e, payload), "message %d (%s, %s) does not read back", i, f, id)
				seen[string(f)+" "+id]++
			}
			require.Len(t, seen, want)
			for k, n := range seen {
				require.Equal(t, 1, n, k)
			}

			// A certificate of another CA: the receiver takes nothing.
			tg, err := New(Options{Address: r.addr, ServerName: "localhost", Identity: uplink.NewIdentity(p.stranger),
				Format: siem.FormatRFC5424, Encoding: cfg, Timeout: 2 * time.Second})
			require.NoError(t, err)
			stranger := hostile()[:1]
			stranger[0].Seq = 99
			for range 3 {
				if tg.Deliver(context.Background(), stranger) != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			tg.Close()
			time.Sleep(300 * time.Millisecond)
			for _, m := range r.messages() {
				require.NotContains(t, string(m), `id="gw-1:99"`, "a client certificate of another CA got a message in")
			}
		})
	}
}

// formatOf tells which format a received message is in and its id.
func formatOf(t *testing.T, sm *siem.SyslogMessage, raw []byte) (siem.Format, []byte, string) {
	t.Helper()
	p := sm.Msg
	switch {
	case bytes.HasPrefix(p, []byte("CEF:0|")):
		r, err := siem.ParseCEF(string(p))
		require.NoError(t, err)
		return siem.FormatCEF, p, r.Ext["externalId"]
	case bytes.HasPrefix(p, []byte("LEEF:2.0|")):
		r, err := siem.ParseLEEF(string(p))
		require.NoError(t, err)
		return siem.FormatLEEF, p, r.Attrs["weirId"]
	case bytes.HasPrefix(p, []byte("{")) && !sm.BOM:
		m, err := siem.ParseECS(p)
		require.NoError(t, err)
		id, _ := siem.Lookup(m, "event.id")
		s, _ := id.(string)
		return siem.FormatECS, p, s
	}
	id, _ := sm.Param("weir@32473", "id")
	return siem.FormatRFC5424, raw, id
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "...(" + strconv.Itoa(len(b)) + " bytes)"
	}
	return string(b)
}

// TestRsyslogKilledMidRun: rsyslogd is killed (SIGKILL) between two
// batches and started again on its address. The batch after the kill is
// not counted as delivered while the receiver is down (the output gets
// an error and would retry), and once it is back the retry delivers it:
// every record arrives, none twice.
func TestRsyslogKilledMidRun(t *testing.T) {
	p := newTestPKI(t)
	r := startReceiver(t, "gtls", p)
	cfg := siem.DefaultEncodingConfig()
	tg, err := New(Options{Address: r.addr, ServerName: "localhost", Identity: uplink.NewIdentity(p.client),
		Format: siem.FormatRFC5424, Encoding: cfg, Timeout: 2 * time.Second})
	require.NoError(t, err)
	defer tg.Close()
	evs := hostile()
	require.NoError(t, tg.Deliver(context.Background(), evs[:4]))
	require.Eventually(t, func() bool { return len(r.messages()) == 4 }, 10*time.Second, 20*time.Millisecond)

	r.kill(t)
	err = tg.Deliver(context.Background(), evs[4:])
	require.Error(t, err, "a batch sent to a killed receiver must not count as delivered")
	t.Logf("while the receiver is down: %v", err)

	r.start(t)
	require.Eventually(t, func() bool { return tg.Deliver(context.Background(), evs[4:]) == nil }, 10*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool { return len(r.messages()) >= len(evs) }, 10*time.Second, 20*time.Millisecond)
	seen := map[string]int{}
	for _, m := range r.messages() {
		sm, err := siem.ParseRFC5424(m)
		require.NoError(t, err)
		id, _ := sm.Param("weir@32473", "id")
		seen[id]++
	}
	for _, e := range evs {
		require.Equal(t, 1, seen[siem.DedupeID(e)], siem.DedupeID(e))
	}
}
