package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink/pki"
)

// What `weir test config` checks beyond the configuration's own values:
// what `weir run` will need of the machine, looked at without side
// effects. Files are read, never written; a listen address is bound and
// released at once; nothing is created, opened for writing or dialled.

// CheckStatus is the outcome of one check.
type CheckStatus string

// Outcomes.
const (
	CheckOK      CheckStatus = "ok"
	CheckWarning CheckStatus = "warning" // weir run would start, but something is likely wrong
	CheckError   CheckStatus = "error"   // weir run would fail, or run without doing its job
	CheckSkipped CheckStatus = "skipped" // nothing to check (the part is off)
)

// Check is one check made and what it found.
type Check struct {
	Key    string      `json:"key"` // the key checked, e.g. uplink.tls.cert
	Status CheckStatus `json:"status"`
	Detail string      `json:"detail"`
}

// Checks is the list of checks made, in order.
type Checks []Check

// Count is how many checks ended with status s.
func (cs Checks) Count(s CheckStatus) int {
	n := 0
	for _, c := range cs {
		if c.Status == s {
			n++
		}
	}
	return n
}

// InForce is what weir run would resolve at start that the
// configuration leaves to it, as the checks found it.
type InForce struct {
	DataDir     string // "" if none can be used
	AdminSocket string
}

type checker struct {
	ctx     context.Context
	cfg     Config
	usedDir string
	now     time.Time
	out     Checks
	running func() bool // does a gateway answer on this configuration's admin socket
}

func (c *checker) add(key string, s CheckStatus, format string, a ...any) {
	c.out = append(c.out, Check{Key: key, Status: s, Detail: fmt.Sprintf(format, a...)})
}

// CheckMachine makes every check it can of l against this machine at
// now, without side effects, and says what data directory and admin
// socket weir run would use.
func CheckMachine(ctx context.Context, l *Loaded, now time.Time) (Checks, InForce) {
	c := &checker{ctx: ctx, cfg: l.Config, now: now}
	var answered *bool
	c.running = func() bool {
		if answered == nil {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := FetchStatus(ctx, SocketPath(l.Config))
			ok := err == nil
			answered = &ok
		}
		return *answered
	}
	c.uplinkTLS()
	c.syslogTLS()
	c.serialDevices()
	c.listeners()
	c.dataDir()
	c.admin()
	c.inputPaths()
	c.clock()
	in := InForce{DataDir: c.usedDir, AdminSocket: c.cfg.Admin.Socket}
	if in.AdminSocket == "" && in.DataDir != "" {
		in.AdminSocket = filepath.Join(in.DataDir, "weir.sock")
	}
	return c.out, in
}

func (c *checker) uplinkTLS() {
	u := c.cfg.Uplink
	if !u.Enabled() {
		c.add("uplink.endpoints", CheckWarning, "no endpoint: the uplink is off and every record stays in the spool")
		if u.TLS.CA == "" && u.TLS.Cert == "" && u.TLS.Key == "" && u.TLS.KeyPEM == "" {
			c.add("uplink.tls", CheckSkipped, "no endpoint and no identity named")
			return
		}
	} else {
		c.add("uplink.endpoints", CheckOK, "%d endpoint(s), mode %s", len(u.Endpoints), u.Mode)
	}
	for i, e := range u.Endpoints {
		c.resolves(fmt.Sprintf("uplink.endpoints[%d].address", i), e.Address)
	}
	c.identity()
}

// resolves looks a host name up (an address needs nothing): one that
// does not resolve now is a warning, as the site's DNS may be down.
func (c *checker) resolves(key, addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) != nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 3*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		c.add(key, CheckWarning, "%s does not resolve now: %s", host, netProblem(err))
		return
	}
	c.add(key, CheckOK, "%s resolves to %s", host, strings.Join(ips, ", "))
}

// CheckUplinkIdentity checks the uplink's TLS identity alone: its files,
// the key against the certificate, the chain to the CA, the gateway id
// the certificate names and its dates.
func CheckUplinkIdentity(cfg Config, now time.Time) Checks {
	c := &checker{ctx: context.Background(), cfg: cfg, now: now}
	c.identity()
	return c.out
}

func (c *checker) identity() {
	u := c.cfg.Uplink
	cas := c.caBundle("uplink.tls.ca", u.TLS.CA)
	leaf, chain, certPEM := c.certFile("uplink.tls.cert", u.TLS.Cert)
	keyPEM, keyFrom := []byte(u.TLS.KeyPEM), "uplink.tls.key_pem"
	if u.TLS.Key != "" {
		keyPEM, keyFrom = c.readFile("uplink.tls.key", u.TLS.Key, "key"), "uplink.tls.key"
	}
	if keyPEM == nil && u.TLS.Key == "" {
		c.add("uplink.tls.key", CheckError, "neither key nor key_pem is set")
	}
	if leaf == nil || keyPEM == nil {
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		c.add(keyFrom, CheckError, "is not the key of uplink.tls.cert (%s): %s", u.TLS.Cert, pairProblem(err))
		return
	}
	c.add(keyFrom, CheckOK, "is the key of uplink.tls.cert")
	c.chain("uplink.tls.cert", leaf, chain, cas, "uplink.tls.ca", x509.ExtKeyUsageClientAuth)
	id, err := pki.GatewayID(leaf)
	switch {
	case err != nil:
		c.add("uplink.tls.cert", CheckError, "names no gateway: %s", strings.TrimPrefix(err.Error(), "pki: gateway id: "))
	case id != c.cfg.Gateway.ID:
		c.add("uplink.tls.cert", CheckError, "names gateway %q (urn:weir:gateway:%s), but gateway.id is %q: the collector refuses records under another name than the certificate's",
			id, id, c.cfg.Gateway.ID)
	default:
		c.add("uplink.tls.cert", CheckOK, "names this gateway, %q (urn:weir:gateway:%s)", id, id)
	}
	c.validity("uplink.tls.cert", leaf, u.CertExpiryWarning)
	for _, ca := range cas {
		c.validity("uplink.tls.ca", ca, u.CertExpiryWarning)
	}
}

// pairProblem words crypto/tls's refusal of a certificate and key.
func pairProblem(err error) string {
	msg := strings.TrimPrefix(err.Error(), "tls: ")
	if strings.Contains(msg, "does not match") {
		return "the key does not match the certificate's public key"
	}
	return msg
}

func (c *checker) syslogTLS() {
	sc := c.cfg.Inputs.Syslog
	if sc == nil {
		return
	}
	// The time zone database is read when the input starts.
	if _, err := time.LoadLocation(sc.Timezone); err != nil {
		c.add("inputs.syslog.timezone", CheckError, "no time zone %q on this machine (an IANA name such as Europe/Paris, UTC or Local)", sc.Timezone)
	}
	if sc.TLS.Listen == "" {
		return
	}
	leaf, chain, certPEM := c.certFile("inputs.syslog.tls.cert_file", sc.TLS.CertFile)
	keyPEM := c.readFile("inputs.syslog.tls.key_file", sc.TLS.KeyFile, "key")
	if leaf != nil && keyPEM != nil {
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			c.add("inputs.syslog.tls.key_file", CheckError, "is not the key of inputs.syslog.tls.cert_file (%s): %s", sc.TLS.CertFile, pairProblem(err))
		} else {
			c.add("inputs.syslog.tls.key_file", CheckOK, "is the key of inputs.syslog.tls.cert_file")
		}
		c.validity("inputs.syslog.tls.cert_file", leaf, c.cfg.Uplink.CertExpiryWarning)
		_ = chain
	}
	if sc.TLS.ClientCAFile != "" {
		for _, ca := range c.caBundle("inputs.syslog.tls.client_ca_file", sc.TLS.ClientCAFile) {
			c.validity("inputs.syslog.tls.client_ca_file", ca, c.cfg.Uplink.CertExpiryWarning)
		}
	}
}

// readFile reads a file a key names; what says what it should hold.
func (c *checker) readFile(key, path, what string) []byte {
	if path == "" {
		c.add(key, CheckError, "no file named")
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		c.add(key, CheckError, "%s: %s", path, fileProblem(err))
		return nil
	}
	if what == "key" {
		if !strings.Contains(string(b), "PRIVATE KEY-----") {
			c.add(key, CheckError, "%s: holds no PEM private key", path)
			return nil
		}
		c.add(key, CheckOK, "%s: readable, a PEM private key", path)
	}
	return b
}

// fileProblem words an error of opening or reading a file.
func fileProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("not readable by %s (permission denied)", loginName(os.Geteuid()))
	case errors.Is(err, syscall.EISDIR):
		return "is a directory, not a file"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// certFile reads a certificate chain: the leaf, the rest, and the PEM.
func (c *checker) certFile(key, path string) (*x509.Certificate, []*x509.Certificate, []byte) {
	b := c.readFile(key, path, "certificate")
	if b == nil {
		return nil, nil, nil
	}
	certs, err := parseCerts(b)
	if err != nil {
		c.add(key, CheckError, "%s: %s", path, err)
		return nil, nil, nil
	}
	c.add(key, CheckOK, "%s: readable, certificate %s", path, describeCert(certs[0]))
	return certs[0], certs[1:], b
}

// caBundle reads a CA bundle.
func (c *checker) caBundle(key, path string) []*x509.Certificate {
	b := c.readFile(key, path, "CA bundle")
	if b == nil {
		return nil
	}
	certs, err := parseCerts(b)
	if err != nil {
		c.add(key, CheckError, "%s: %s", path, err)
		return nil
	}
	names := make([]string, len(certs))
	for i, ca := range certs {
		names[i] = describeCert(ca)
	}
	c.add(key, CheckOK, "%s: readable, %d CA certificate(s): %s", path, len(certs), strings.Join(names, "; "))
	return certs
}

func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d cannot be parsed: %s", len(out)+1, strings.TrimPrefix(err.Error(), "x509: "))
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		return nil, errors.New("holds no PEM certificate")
	}
	return out, nil
}

func describeCert(c *x509.Certificate) string {
	name := c.Subject.CommonName
	if name == "" {
		name = c.Subject.String()
	}
	return fmt.Sprintf("%q, issued by %q", name, c.Issuer.CommonName)
}

// chain checks that leaf chains to one of cas for usage.
func (c *checker) chain(key string, leaf *x509.Certificate, inter, cas []*x509.Certificate, caKey string, usage x509.ExtKeyUsage) {
	if len(cas) == 0 {
		return
	}
	roots, pool := x509.NewCertPool(), x509.NewCertPool()
	for _, ca := range cas {
		roots.AddCert(ca)
	}
	for _, i := range inter {
		pool.AddCert(i)
	}
	// At a time inside the leaf's validity: expiry is its own check.
	at := c.now
	if at.Before(leaf.NotBefore) || at.After(leaf.NotAfter) {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{usage}})
	var ua x509.UnknownAuthorityError
	var inv x509.CertificateInvalidError
	switch {
	case err == nil:
		c.add(key, CheckOK, "chains to a CA of %s", caKey)
	case errors.As(err, &ua):
		c.add(key, CheckError, "is issued by %q, which is not a CA of %s: the collector would refuse it", leaf.Issuer.CommonName, caKey)
	case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
		c.add(key, CheckError, "is not for client authentication (its extended key usage): the collector would refuse it")
	default:
		c.add(key, CheckError, "does not chain to %s: %s", caKey, strings.TrimPrefix(err.Error(), "x509: "))
	}
}

// validity checks a certificate's dates at now; within warn of its end is
// a warning.
func (c *checker) validity(key string, cert *x509.Certificate, warn time.Duration) {
	end := cert.NotAfter.UTC().Format(time.DateOnly)
	left := cert.NotAfter.Sub(c.now)
	name := strconv.Quote(cert.Subject.CommonName)
	switch {
	case c.now.Before(cert.NotBefore):
		c.add(key, CheckError, "%s is not valid before %s (is this machine's clock right? it says %s)",
			name, cert.NotBefore.UTC().Format(time.RFC3339), c.now.UTC().Format(time.RFC3339))
	case left <= 0:
		c.add(key, CheckError, "%s expired on %s", name, end)
	case left < warn:
		c.add(key, CheckWarning, "%s expires on %s, in %s: within uplink.cert_expiry_warning (%s)", name, end, daysText(left), shortDuration(warn))
	default:
		c.add(key, CheckOK, "%s is valid until %s (%s)", name, end, daysText(left))
	}
}

func daysText(d time.Duration) string {
	n := int(d.Hours() / 24)
	if n == 1 {
		return "1 day"
	}
	if n == 0 {
		return d.Round(time.Minute).String()
	}
	return strconv.Itoa(n) + " days"
}

func (c *checker) serialDevices() {
	for i, b := range c.cfg.Inputs.Modbus.Buses {
		if b.Type == "rtu" {
			c.device(fmt.Sprintf("inputs.modbus.buses[%d].serial.device", i), b.Serial.Device)
		}
	}
	for i, lc := range c.cfg.Inputs.Lines {
		c.device(fmt.Sprintf("inputs.lines[%d].port.device", i), lc.Port.Device)
	}
	if p := c.cfg.Clock.LinuxPTP.PHC; c.cfg.Clock.Mode == ptp.ModeLinuxPTP && p != "" {
		c.device("clock.linuxptp.phc", p)
	}
}

// device checks a device node: it exists, is a character device, and
// this user may read and write it. It is not opened: opening a serial
// line can toggle its modem lines.
func (c *checker) device(key, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		c.add(key, CheckError, "%s: %s", path, fileProblem(err))
		return
	}
	if fi.Mode()&fs.ModeCharDevice == 0 {
		c.add(key, CheckError, "%s is not a character device", path)
		return
	}
	if err := accessible(path, true); err != nil {
		c.add(key, CheckWarning, "%s exists, but %s may not read and write it (%s); weir run's user needs both", path, loginName(os.Geteuid()), err)
		return
	}
	c.add(key, CheckOK, "%s exists, a character device %s may read and write", path, loginName(os.Geteuid()))
}

// listener is one address the gateway will listen on.
type listener struct{ key, network, addr string }

func (c *checker) listeners() {
	var ls []listener
	if a := c.cfg.Metrics.Listen; a != "" {
		ls = append(ls, listener{"metrics.listen", "tcp", a})
	}
	if sc := c.cfg.Inputs.Syslog; sc != nil {
		for _, l := range []listener{{"inputs.syslog.udp.listen", "udp", sc.UDP.Listen},
			{"inputs.syslog.tcp.listen", "tcp", sc.TCP.Listen}, {"inputs.syslog.tls.listen", "tcp", sc.TLS.Listen}} {
			if l.addr != "" {
				ls = append(ls, l)
			}
		}
	}
	seen := map[string]string{}
	for _, l := range ls {
		id := l.network + " " + l.addr
		if other, dup := seen[id]; dup {
			c.add(l.key, CheckError, "%s %s is also %s: one address, one listener", l.network, l.addr, other)
			continue
		}
		seen[id] = l.key
		c.bind(l)
	}
}

// bind binds l's address and releases it at once.
func (c *checker) bind(l listener) {
	var err error
	if l.network == "udp" {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", l.addr); err == nil {
			pc.Close()
		}
	} else {
		var ln net.Listener
		if ln, err = net.Listen("tcp", l.addr); err == nil {
			ln.Close()
		}
	}
	_, port, _ := net.SplitHostPort(l.addr)
	p, _ := strconv.Atoi(port)
	switch {
	case err == nil:
		c.add(l.key, CheckOK, "%s %s can be bound (bound and released)", l.network, l.addr)
	case errors.Is(err, syscall.EADDRINUSE) && c.running():
		c.add(l.key, CheckWarning, "%s %s is in use, most likely by the gateway running now (it answers on %s)", l.network, l.addr, SocketPath(c.cfg))
	case errors.Is(err, syscall.EADDRINUSE):
		c.add(l.key, CheckError, "%s %s is in use by another process (ss -lntup shows which)", l.network, l.addr)
	case errors.Is(err, syscall.EACCES) && p > 0 && p < 1024:
		c.add(l.key, CheckError, "%s %s: port %d is below 1024: %s may not bind it (root or CAP_NET_BIND_SERVICE may)", l.network, l.addr, p, loginName(os.Geteuid()))
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		c.add(l.key, CheckError, "%s %s: no interface of this machine has that address", l.network, l.addr)
	default:
		c.add(l.key, CheckError, "%s %s cannot be bound: %s", l.network, l.addr, netProblem(err))
	}
}

// netProblem is a network error without the operation Go prefixes.
func netProblem(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	return err.Error()
}

// dataDir finds the data directory weir run would use, as ResolveDataDir
// does but creating nothing, and checks it and the room for the spool.
func (c *checker) dataDir() {
	dirs := DataDirCandidates()
	if c.cfg.DataDir != "" {
		dirs = []string{c.cfg.DataDir}
	}
	for i, d := range dirs {
		last := i == len(dirs)-1
		fi, err := os.Lstat(d)
		switch {
		case err == nil && fi.IsDir() || err == nil && fi.Mode()&fs.ModeSymlink != 0:
			if err := checkDataDir(d); err != nil {
				c.add("data_dir", CheckError, "%s: %s", d, err)
				return
			}
			if err := accessible(d, true); err != nil {
				if !last {
					continue
				}
				c.add("data_dir", CheckError, "%s is not writable by %s (%s)", d, loginName(os.Geteuid()), err)
				return
			}
			c.add("data_dir", CheckOK, "%s%s exists and is writable by %s", d, fallback(c.cfg.DataDir, d), loginName(os.Geteuid()))
		case err == nil:
			c.add("data_dir", CheckError, "%s is not a directory", d)
			return
		case errors.Is(err, fs.ErrNotExist):
			parent := existingAncestor(d)
			if aerr := accessible(parent, true); aerr != nil {
				if !last {
					continue
				}
				c.add("data_dir", CheckError, "%s does not exist, and %s may not create it in %s (%s)", d, loginName(os.Geteuid()), parent, aerr)
				return
			}
			c.add("data_dir", CheckOK, "%s%s does not exist yet; weir run creates it (%s is writable by %s)", d, fallback(c.cfg.DataDir, d), parent, loginName(os.Geteuid()))
		default:
			c.add("data_dir", CheckError, "%s: %s", d, fileProblem(err))
			return
		}
		c.usedDir = d
		c.room(d)
		return
	}
}

func fallback(configured, used string) string {
	switch {
	case configured != "":
		return ""
	case used == DataDirCandidates()[0]:
		return " (the default)"
	}
	return fmt.Sprintf(" (the fallback: %s cannot be used; the CLI then needs --socket or data_dir)", DataDirCandidates()[0])
}

// existingAncestor is the nearest directory at or above p that exists.
func existingAncestor(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	for {
		if _, err := os.Stat(abs); err == nil || filepath.Dir(abs) == abs {
			return abs
		}
		abs = filepath.Dir(abs)
	}
}

// room compares the free space under dir with what a full spool takes:
// up to about twice spool.max_bytes, less what the spool holds already.
func (c *checker) room(dir string) {
	free, err := freeSpace(existingAncestor(dir))
	if err != nil {
		c.add("spool.max_bytes", CheckSkipped, "free space under %s unknown: %s", dir, err)
		return
	}
	limit := int64(c.cfg.Spool.MaxBytes)
	need := 2*limit - dirSize(filepath.Join(dir, "spool"))
	full := spool.ByteSize(2 * limit)
	if int64(free) < need {
		c.add("spool.max_bytes", CheckWarning, "%s free under %s, but a full spool (max_bytes %s) takes up to about %s on disk: lower spool.max_bytes or make room",
			approxSize(int64(free)), dir, c.cfg.Spool.MaxBytes, approxSize(int64(full)))
		return
	}
	c.add("spool.max_bytes", CheckOK, "%s free under %s; a full spool (max_bytes %s) takes up to about %s on disk",
		approxSize(int64(free)), dir, c.cfg.Spool.MaxBytes, approxSize(int64(full)))
}

// approxSize writes n bytes for a reader: 11.5GiB.
func approxSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f, i = f/1024, i+1
	}
	if i == 0 || f >= 100 {
		return fmt.Sprintf("%.0f%s", f, units[i])
	}
	return fmt.Sprintf("%.1f%s", f, units[i])
}

// dirSize adds up the sizes of the files under dir (0 if none).
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func (c *checker) admin() {
	if s := c.cfg.Admin.Socket; s != "" {
		dir := filepath.Dir(s)
		if _, err := os.Stat(dir); err != nil {
			c.add("admin.socket", CheckError, "%s: its directory %s: %s", s, dir, fileProblem(err))
		} else if err := checkSocketDir(dir); err != nil {
			c.add("admin.socket", CheckError, "%s: %s", s, err)
		} else {
			c.add("admin.socket", CheckOK, "%s: its directory is safe (owned by root or %s, not writable by others)", s, loginName(os.Geteuid()))
		}
	}
	if g := c.cfg.Admin.Group; g != "" {
		if gid, err := lookupGroup(g); err != nil {
			c.add("admin.group", CheckError, "no group %q on this machine", g)
		} else {
			c.add("admin.group", CheckOK, "group %s (gid %d) exists", g, gid)
		}
	}
}

func (c *checker) inputPaths() {
	for i, f := range c.cfg.Inputs.Files {
		for _, p := range f.Paths {
			key := fmt.Sprintf("inputs.files[%d].paths", i)
			m, err := filepath.Glob(p)
			switch {
			case err != nil:
				c.add(key, CheckError, "%s is not a valid pattern", p)
			case len(m) == 0:
				c.add(key, CheckWarning, "%s matches no file now; weir run follows what appears (a typo in the path?)", p)
			default:
				c.add(key, CheckOK, "%s matches %d file(s) now", p, len(m))
			}
		}
	}
	if a := c.cfg.Inputs.Audit; a != nil {
		c.readable("inputs.audit.path", a.Path, "is auditd running?")
	}
	if ic := c.cfg.Inputs.Integrity; ic != nil {
		for i, p := range ic.Paths {
			c.readable(fmt.Sprintf("inputs.integrity.paths[%d]", i), p, "its absence will be recorded as a change")
		}
	}
}

// readable checks that a path exists and can be read; a missing one is a
// warning with hint.
func (c *checker) readable(key, path, hint string) {
	if _, err := os.Stat(path); err != nil {
		c.add(key, CheckWarning, "%s: %s (%s)", path, fileProblem(err), hint)
		return
	}
	if err := accessible(path, false); err != nil {
		c.add(key, CheckWarning, "%s is not readable by %s (%s)", path, loginName(os.Geteuid()), err)
		return
	}
	c.add(key, CheckOK, "%s exists and is readable by %s", path, loginName(os.Geteuid()))
}

func (c *checker) clock() {
	cl := c.cfg.Clock
	switch cl.Mode {
	case ptp.ModeLinuxPTP:
		fi, err := os.Stat(cl.LinuxPTP.Socket)
		switch {
		case err != nil:
			c.add("clock.linuxptp.socket", CheckWarning, "%s: %s (is ptp4l running? until it answers, records say freerun)", cl.LinuxPTP.Socket, fileProblem(err))
		case fi.Mode()&fs.ModeSocket == 0:
			c.add("clock.linuxptp.socket", CheckError, "%s is not a socket", cl.LinuxPTP.Socket)
		default:
			c.add("clock.linuxptp.socket", CheckOK, "%s is a socket (ptp4l's)", cl.LinuxPTP.Socket)
		}
	case ptp.ModeBuiltin:
		if _, err := net.InterfaceByName(cl.Builtin.Interface); err != nil {
			c.add("clock.builtin.interface", CheckError, "no network interface %q on this machine", cl.Builtin.Interface)
		} else {
			c.add("clock.builtin.interface", CheckOK, "interface %s exists", cl.Builtin.Interface)
		}
	}
}
