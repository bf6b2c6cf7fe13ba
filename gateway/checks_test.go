package gateway

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink/pki"
)

// checkSite is a gateway's files in a temporary directory: a CA, the
// certificates of gw-1 and gw-2 under it, another CA, a tailed log.
type checkSite struct {
	dir, pki, otherPKI, log string
}

func newCheckSite(t *testing.T) checkSite {
	t.Helper()
	dir := t.TempDir()
	s := checkSite{dir: dir, pki: filepath.Join(dir, "pki"), otherPKI: filepath.Join(dir, "other"), log: filepath.Join(dir, "app.log")}
	require.NoError(t, pki.InitCA(s.pki, "Site CA", pki.Options{}))
	require.NoError(t, pki.InitCA(s.otherPKI, "Other CA", pki.Options{}))
	for _, id := range []string{"gw-1", "gw-2"} {
		_, _, err := pki.IssueGateway(s.pki, id, pki.Options{})
		require.NoError(t, err)
	}
	_, _, err := pki.IssueGateway(s.otherPKI, "gw-1", pki.Options{})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.log, []byte("x\n"), 0o600))
	return s
}

// config is a valid configuration of gw-1 with extra appended.
func (s checkSite) config(t *testing.T, extra string) *Loaded {
	t.Helper()
	cert, key := pki.GatewayFiles(s.pki, "gw-1")
	doc := fmt.Sprintf(`gateway: {id: gw-1}
data_dir: %s/data
metrics: {listen: ""}
inputs:
  files: [{name: app, paths: [%s]}]
uplink:
  endpoints: [{address: "127.0.0.1:7443"}]
  tls: {ca: %s, cert: %s, key: %s}
`, s.dir, s.log, filepath.Join(s.pki, "ca.pem"), cert, key)
	l, err := Load(writeConfig(t, mergeYAML(doc, extra)), true)
	require.NoError(t, err)
	return l
}

// mergeYAML appends extra's top-level sections to doc, replacing doc's
// of the same name.
func mergeYAML(doc, extra string) string {
	if extra == "" {
		return doc
	}
	replaced := map[string]bool{}
	for _, l := range strings.Split(extra, "\n") {
		if k, _, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, " ") {
			replaced[k] = true
		}
	}
	var out []string
	skip := false
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(l, " ") {
			k, _, _ := strings.Cut(l, ":")
			skip = replaced[k]
		}
		if !skip {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n") + "\n" + extra + "\n"
}

// findChecks returns the checks of key whose detail contains part.
func findChecks(cs Checks, key, part string) Checks {
	var out Checks
	for _, c := range cs {
		if c.Key == key && strings.Contains(c.Detail, part) {
			out = append(out, c)
		}
	}
	return out
}

func requireCheck(t *testing.T, cs Checks, status CheckStatus, key, part string) {
	t.Helper()
	got := findChecks(cs, key, part)
	require.Len(t, got, 1, "one check of %s mentioning %q in:\n%s", key, part, dumpChecks(cs))
	require.Equal(t, status, got[0].Status, "%s: %s", key, got[0].Detail)
}

func dumpChecks(cs Checks) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s %s: %s\n", c.Status, c.Key, c.Detail)
	}
	return b.String()
}

func TestCheckMachineGood(t *testing.T) {
	s := newCheckSite(t)
	l := s.config(t, "")
	cs, in := CheckMachine(context.Background(), l, time.Now())
	require.Zero(t, cs.Count(CheckError), dumpChecks(cs))
	require.Zero(t, cs.Count(CheckWarning), dumpChecks(cs))
	requireCheck(t, cs, CheckOK, "uplink.tls.ca", `1 CA certificate(s): "Weir CA Site CA"`)
	requireCheck(t, cs, CheckOK, "uplink.tls.cert", "readable")
	requireCheck(t, cs, CheckOK, "uplink.tls.key", "is the key of uplink.tls.cert")
	requireCheck(t, cs, CheckOK, "uplink.tls.cert", "chains to a CA of uplink.tls.ca")
	requireCheck(t, cs, CheckOK, "uplink.tls.cert", `names this gateway, "gw-1" (urn:weir:gateway:gw-1)`)
	requireCheck(t, cs, CheckOK, "uplink.tls.cert", "is valid until")
	requireCheck(t, cs, CheckOK, "data_dir", "does not exist yet; weir run creates it")
	// The default max_bytes is 4GiB, 1GiB on a 32-bit board.
	want := "a full spool (max_bytes 4GiB) takes up to about 8.0GiB on disk"
	if strconv.IntSize == 32 {
		want = "a full spool (max_bytes 1GiB) takes up to about 2.0GiB on disk"
	}
	requireCheck(t, cs, CheckOK, "spool.max_bytes", want)
	requireCheck(t, cs, CheckOK, "inputs.files[0].paths", "matches 1 file(s)")
	require.Equal(t, filepath.Join(s.dir, "data"), in.DataDir)
	require.Equal(t, filepath.Join(s.dir, "data", "weir.sock"), in.AdminSocket)
	_, err := os.Stat(filepath.Join(s.dir, "data"))
	require.ErrorIs(t, err, os.ErrNotExist, "checking creates nothing")
}

func TestCheckMachineFindsWhatRunWouldTrip(t *testing.T) {
	s := newCheckSite(t)
	gw2Cert, gw2Key := pki.GatewayFiles(s.pki, "gw-2")
	otherCert, otherKey := pki.GatewayFiles(s.otherPKI, "gw-1")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	busyUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busyUDP.Close()
	regular := filepath.Join(s.dir, "not-a-tty")
	require.NoError(t, os.WriteFile(regular, nil, 0o600))
	ca := filepath.Join(s.pki, "ca.pem")
	notDir := filepath.Join(s.dir, "a-file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	openDir := filepath.Join(s.dir, "open")
	require.NoError(t, os.Mkdir(openDir, 0o777))
	require.NoError(t, os.Chmod(openDir, 0o777))

	cases := []struct {
		name   string
		extra  string
		env    []string
		after  time.Duration // checked at now + after
		status CheckStatus
		key    string
		detail string
	}{
		{"certificate missing", fmt.Sprintf("uplink:\n  endpoints: [{address: 'a:1'}]\n  tls: {ca: %s, cert: %s/missing.pem, key: %s}", ca, s.dir, gw2Key),
			nil, 0, CheckError, "uplink.tls.cert", "missing.pem: no such file"},
		{"CA missing", fmt.Sprintf("uplink:\n  endpoints: [{address: 'a:1'}]\n  tls: {ca: %s/ca-missing.pem, cert: %s, key: %s}", s.dir, gw2Cert, gw2Key),
			nil, 0, CheckError, "uplink.tls.ca", "ca-missing.pem: no such file"},
		{"key of another certificate", fmt.Sprintf("uplink:\n  endpoints: [{address: 'a:1'}]\n  tls: {ca: %s, cert: %s, key: %s}", ca, gw2Cert, otherKey),
			nil, 0, CheckError, "uplink.tls.key", "is not the key of uplink.tls.cert"},
		{"key file is a certificate", fmt.Sprintf("uplink:\n  endpoints: [{address: 'a:1'}]\n  tls: {ca: %s, cert: %s, key: %s}", ca, gw2Cert, gw2Cert),
			nil, 0, CheckError, "uplink.tls.key", "holds no PEM private key"},
		{"certificate of another gateway", fmt.Sprintf("uplink:\n  endpoints: [{address: 'a:1'}]\n  tls: {ca: %s, cert: %s, key: %s}", ca, gw2Cert, gw2Key),
			nil, 0, CheckError, "uplink.tls.cert", `names gateway "gw-2" (urn:weir:gateway:gw-2), but gateway.id is "gw-1"`},
		{"certificate of another CA", fmt.Sprintf("uplink:\n  endpoints: [{address: 'a:1'}]\n  tls: {ca: %s, cert: %s, key: %s}", ca, otherCert, otherKey),
			nil, 0, CheckError, "uplink.tls.cert", `is issued by "Weir CA Other CA", which is not a CA of uplink.tls.ca`},
		{"certificate expiring", "", nil, 2*365*24*time.Hour - 10*24*time.Hour, CheckWarning, "uplink.tls.cert", "within uplink.cert_expiry_warning (720h)"},
		{"certificate expired", "", nil, 3 * 365 * 24 * time.Hour, CheckError, "uplink.tls.cert", "expired on"},
		{"certificate not yet valid", "", nil, -24 * time.Hour, CheckError, "uplink.tls.cert", "is not valid before"},
		{"key from the environment", "", []string{"WEIR_UPLINK_TLS_KEY_PEM=" + readString(t, gw2Key)}, 0, CheckError, "uplink.tls.key_pem", "is not the key of uplink.tls.cert"},
		{"endpoint name resolves", "uplink: {endpoints: [{address: 'localhost:7443'}], tls: {ca: " + ca + ", cert: " + gw2Cert + ", key: " + gw2Key + "}}", nil, 0,
			CheckOK, "uplink.endpoints[0].address", "localhost resolves to"},
		{"endpoint name does not resolve", "uplink: {endpoints: [{address: 'collector.invalid:7443'}], tls: {ca: " + ca + ", cert: " + gw2Cert + ", key: " + gw2Key + "}}", nil, 0,
			CheckWarning, "uplink.endpoints[0].address", "collector.invalid does not resolve now"},
		{"no endpoint", "uplink: {endpoints: []}", nil, 0, CheckWarning, "uplink.endpoints", "the uplink is off"},
		{"metrics port in use", "metrics: {listen: '" + busy.Addr().String() + "'}", nil, 0, CheckError, "metrics.listen", "is in use by another process"},
		{"syslog port in use", "inputs: {files: [], syslog: {tcp: {listen: ''}, udp: {listen: '" + busyUDP.LocalAddr().String() + "'}}}", nil, 0,
			CheckError, "inputs.syslog.udp.listen", "is in use by another process"},
		{"two listeners on one address", "inputs: {files: [], syslog: {udp: {listen: ''}, tcp: {listen: '127.0.0.1:5514'}, tls: {listen: '127.0.0.1:5514', client_auth: none, cert_file: " + gw2Cert + ", key_file: " + gw2Key + "}}}", nil, 0,
			CheckError, "inputs.syslog.tls.listen", "is also inputs.syslog.tcp.listen"},
		{"no such address", "metrics: {listen: '192.0.2.77:9464'}", nil, 0, CheckError, "metrics.listen", "no interface of this machine has that address"},
		{"serial device missing", "inputs: {modbus: {buses: [{name: b, serial: {device: " + s.dir + "/ttyUSB9}}]}}", nil, 0,
			CheckError, "inputs.modbus.buses[0].serial.device", "ttyUSB9: no such file"},
		{"serial device a file", "inputs: {lines: [{name: gps, port: {device: " + regular + "}}]}", nil, 0,
			CheckError, "inputs.lines[0].port.device", "is not a character device"},
		{"serial device fine", "inputs: {lines: [{name: gps, port: {device: /dev/null}}]}", nil, 0,
			CheckOK, "inputs.lines[0].port.device", "/dev/null exists, a character device"},
		{"data directory a file", "data_dir: " + notDir, nil, 0, CheckError, "data_dir", "is not a directory"},
		{"data directory writable by others", "data_dir: " + openDir, nil, 0, CheckError, "data_dir", "writable by group or others"},
		{"spool larger than the disk", "spool: {max_bytes: 1000TiB}", nil, 0, CheckWarning, "spool.max_bytes", "lower spool.max_bytes or make room"},
		{"glob matching nothing", "inputs: {files: [{name: app, paths: [" + s.dir + "/nothing/*.log]}]}", nil, 0,
			CheckWarning, "inputs.files[0].paths", "matches no file now"},
		{"audit log missing", "inputs: {audit: {path: " + s.dir + "/audit.log}}", nil, 0, CheckWarning, "inputs.audit.path", "no such file (is auditd running?)"},
		{"time zone unknown", "inputs: {syslog: {timezone: Mars/Base, udp: {listen: ''}, tcp: {listen: ''}, tls: {listen: '127.0.0.1:0', client_auth: none, cert_file: " + gw2Cert + ", key_file: " + gw2Key + "}}}", nil, 0,
			CheckError, "inputs.syslog.timezone", `no time zone "Mars/Base" on this machine`},
		{"admin group unknown", "admin: {group: no-such-group-here}", nil, 0, CheckError, "admin.group", `no group "no-such-group-here"`},
		{"PTP interface missing", "clock: {mode: builtin, builtin: {interface: nope0}}", nil, 0, CheckError, "clock.builtin.interface", `no network interface "nope0"`},
		{"ptp4l not running", "clock: {mode: linuxptp, linuxptp: {socket: " + s.dir + "/ptp4l}}", nil, 0, CheckWarning, "clock.linuxptp.socket", "is ptp4l running?"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, kv := range c.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			if c.key == "spool.max_bytes" && strconv.IntSize == 32 {
				t.Skip("a 32-bit board's spool is at most 1GiB, less than this disk has free: no max_bytes above the disk can be configured")
			}
			l := s.config(t, c.extra)
			cs, _ := CheckMachine(context.Background(), l, time.Now().Add(c.after))
			requireCheck(t, cs, c.status, c.key, c.detail)
			require.NotRegexp(t, goInternals, dumpChecks(cs))
		})
	}
	// Checking binds an address only for a moment.
	ln, err := net.Listen("tcp", "127.0.0.1:5514")
	require.NoError(t, err, "127.0.0.1:5514 is released after the check")
	ln.Close()
}

func readString(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

// TestAdminSocketProblems: a CLI that finds no gateway says why in the
// operator's words, without Go's HTTP client in the message.
func TestAdminSocketProblems(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, nil, 0o600))
	for _, c := range []struct{ socket, want string }{
		{filepath.Join(dir, "absent.sock"), "gateway: admin socket " + filepath.Join(dir, "absent.sock") + ": no socket there (is `weir run` running?)"},
		{plain, "gateway: admin socket " + plain + ": nothing listening (is `weir run` running?)"},
	} {
		_, err := FetchStatus(context.Background(), c.socket)
		require.EqualError(t, err, c.want)
	}
}
