package ui

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Config is the fleet page's listener. Keys are the weir-collector flags
// that set them; Validate names those.
type Config struct {
	// Listen is host:port. A loopback address may be served in plain
	// HTTP; any other needs TLS (Cert, Key) and a way to authenticate
	// (ClientCA, TokenFile, or both).
	Listen string
	Cert   string // PEM certificate of the page's TLS server
	Key    string
	// ClientCA verifies browser (operator) certificates; a certificate
	// naming a gateway is refused even if this CA signed it.
	ClientCA string
	// GatewayCA is the gateways' CA (--ca): it may not serve as ClientCA,
	// or every gateway's key would open the page.
	GatewayCA string
	// TokenFile holds the bearer token (mode 0600 or stricter), re-read
	// when it changes. A browser logs in once at /login and gets a cookie.
	TokenFile string

	// Before authentication: connections at once, and per address (an
	// IPv6 /64); headers within ReadHeaderTimeout and MaxHeaderBytes.
	MaxConns          int
	MaxConnsPerAddr   int
	ReadHeaderTimeout time.Duration
	// After: pages rendered at once; a request past it waits up to
	// BusyWait, then gets 503.
	MaxInFlight int
	BusyWait    time.Duration
	// PageSize is the fleet page's rows per page unless the request asks
	// for another (at most MaxPageSize).
	PageSize int
}

// MaxPageSize bounds the rows of one fleet page.
const MaxPageSize = 1000

// DefaultConfig has no listener; its bounds suit a few operators.
func DefaultConfig() Config {
	return Config{MaxConns: 64, MaxConnsPerAddr: 16, ReadHeaderTimeout: 5 * time.Second, MaxInFlight: 8,
		BusyWait: 2 * time.Second, PageSize: 250}
}

// Exposed reports whether addr listens beyond loopback.
func Exposed(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// Validate checks the configuration and the files it names (their
// presence and the token file's mode); errors name the flag.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("ui-listen", "%q is not host:port: %v", c.Listen, err)
	}
	if (c.Cert == "") != (c.Key == "") {
		add("ui-cert, ui-key", "give both or neither")
	}
	tls := c.Cert != ""
	if c.ClientCA != "" && !tls {
		add("ui-client-ca", "client certificates need TLS: give --ui-cert and --ui-key")
	}
	if Exposed(c.Listen) {
		if !tls {
			add("ui-listen", "%s is not a loopback address: the page needs TLS there (--ui-cert, --ui-key)", c.Listen)
		}
		if c.ClientCA == "" && c.TokenFile == "" {
			add("ui-listen", "%s is not a loopback address: the page needs --ui-client-ca or --ui-token-file there, never an open port", c.Listen)
		}
	}
	if c.ClientCA != "" && c.GatewayCA != "" && sameFile(c.ClientCA, c.GatewayCA) {
		add("ui-client-ca", "%s is the gateways' CA: every gateway's key would open the page; give the operators' CA", c.ClientCA)
	}
	for _, f := range []struct{ key, path string }{{"ui-cert", c.Cert}, {"ui-key", c.Key}, {"ui-client-ca", c.ClientCA}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			add(f.key, "%v", err)
		}
	}
	if c.TokenFile != "" {
		if _, err := readToken(c.TokenFile); err != nil {
			add("ui-token-file", "%v", err)
		}
	}
	for _, n := range []struct {
		key string
		val int
	}{{"ui-max-conns", c.MaxConns}, {"ui-max-conns-per-addr", c.MaxConnsPerAddr}, {"ui-max-in-flight", c.MaxInFlight}} {
		if n.val < 1 {
			add(n.key, "%d must be at least 1", n.val)
		}
	}
	if c.MaxConnsPerAddr > c.MaxConns {
		add("ui-max-conns-per-addr", "%d is above ui-max-conns %d", c.MaxConnsPerAddr, c.MaxConns)
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		add("ui-page-size", "%d is outside 1..%d", c.PageSize, MaxPageSize)
	}
	return errors.Join(errs...)
}

func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	pa, _ := filepath.Abs(a)
	pb, _ := filepath.Abs(b)
	return pa == pb
}
