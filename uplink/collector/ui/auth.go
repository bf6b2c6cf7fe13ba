package ui

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// MinToken is the shortest bearer token accepted (bytes).
const MinToken = 16

// readToken reads the token file: one line, at least MinToken bytes, and
// readable by its owner only.
func readToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable or writable by group or others (mode %04o); make it 0600", path, m)
	}
	b := make([]byte, 4097)
	n, _ := f.Read(b)
	if n > 4096 {
		return nil, fmt.Errorf("%s: longer than 4096 bytes", path)
	}
	tok := bytes.TrimSpace(b[:n])
	if len(tok) < MinToken {
		return nil, fmt.Errorf("%s: the token is %d bytes, at least %d needed", path, len(tok), MinToken)
	}
	if bytes.ContainsAny(tok, "\r\n") {
		return nil, fmt.Errorf("%s: the token must be one line", path)
	}
	return tok, nil
}

// tokenFile holds the token, re-read when the file changes (at most once
// a second), so a rotated token needs no restart.
type tokenFile struct {
	path string
	mu   sync.Mutex
	tok  []byte
	stat struct {
		size int64
		mod  time.Time
	}
	checked time.Time
}

func newTokenFile(path string) (*tokenFile, error) {
	t := &tokenFile{path: path}
	if _, err := t.current(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *tokenFile) current() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.tok != nil && now.Sub(t.checked) < time.Second {
		return t.tok, nil
	}
	t.checked = now
	fi, err := os.Stat(t.path)
	if err != nil {
		return nil, err
	}
	if t.tok != nil && fi.Size() == t.stat.size && fi.ModTime().Equal(t.stat.mod) {
		return t.tok, nil
	}
	tok, err := readToken(t.path)
	if err != nil {
		// A broken token file locks everyone out rather than let anyone in.
		t.tok = nil
		return nil, err
	}
	t.tok, t.stat.size, t.stat.mod = tok, fi.Size(), fi.ModTime()
	return tok, nil
}

// cookieValue is what the session cookie holds: a hash of the token, so
// the token itself is never stored in the browser, and a new token ends
// every session.
func cookieValue(tok []byte) string {
	h := sha256.Sum256(append([]byte("weir-ui-session\x00"), tok...))
	return hex.EncodeToString(h[:])
}

const cookieName = "weir_ui"

// tokenOK checks a request's bearer token or session cookie.
func (t *tokenFile) tokenOK(r *http.Request) bool {
	tok, err := t.current()
	if err != nil {
		return false
	}
	if h := r.Header.Get("Authorization"); h != "" {
		got, ok := strings.CutPrefix(h, "Bearer ")
		return ok && subtle.ConstantTimeCompare([]byte(got), tok) == 1
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(cookieValue(tok))) == 1
}

// isGatewayCert reports whether a certificate names a gateway (an
// urn:weir:gateway URI SAN): such a key opens the uplink, not the page.
func isGatewayCert(c *x509.Certificate) bool {
	for _, u := range c.URIs {
		if strings.EqualFold(u.Scheme, "urn") && strings.HasPrefix(strings.ToLower(u.Opaque), "weir:gateway:") {
			return true
		}
	}
	return false
}

// loginGuard slows down guessing: after each failed login an address
// waits twice as long as after the one before (1 s up to 5 min) before
// its next attempt is even checked. It remembers at most maxGuarded
// addresses, forgetting the one that waited longest ago.
type loginGuard struct {
	mu    sync.Mutex
	addrs map[string]*guardState
}

type guardState struct {
	failures int
	until    time.Time
}

const maxGuarded = 4096

func newLoginGuard() *loginGuard { return &loginGuard{addrs: map[string]*guardState{}} }

// allow says whether addr may try now, and if not for how long it waits.
func (g *loginGuard) allow(addr string, now time.Time) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.addrs[addr]; s != nil && now.Before(s.until) {
		return s.until.Sub(now), false
	}
	return 0, true
}

func (g *loginGuard) failed(addr string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.addrs[addr]
	if s == nil {
		if len(g.addrs) >= maxGuarded {
			var oldest string
			var at time.Time
			for a, st := range g.addrs {
				if oldest == "" || st.until.Before(at) {
					oldest, at = a, st.until
				}
			}
			delete(g.addrs, oldest)
		}
		s = &guardState{}
		g.addrs[addr] = s
	}
	s.failures++
	d := time.Second << min(s.failures-1, 9)
	s.until = now.Add(min(d, 5*time.Minute))
}

func (g *loginGuard) succeeded(addr string) {
	g.mu.Lock()
	delete(g.addrs, addr)
	g.mu.Unlock()
}

// addrKey is a peer's address for the per-address bounds: the IP, or the
// /64 of an IPv6 one (a host has a whole /64 to pick from).
func addrKey(a net.Addr) string {
	s := a.String()
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return s
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}
