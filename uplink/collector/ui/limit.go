package ui

import (
	"net"
	"sync"
)

// limitListener closes, at once and before reading anything, a
// connection past the global or per-address bound.
type limitListener struct {
	net.Listener
	max, perAddr int
	refused      func(reason string)

	mu     sync.Mutex
	n      int
	byAddr map[string]int
}

func newLimitListener(ln net.Listener, max, perAddr int, refused func(string)) *limitListener {
	return &limitListener{Listener: ln, max: max, perAddr: perAddr, refused: refused, byAddr: map[string]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(c.RemoteAddr())
		l.mu.Lock()
		reason := ""
		switch {
		case l.n >= l.max:
			reason = "conns"
		case l.byAddr[key] >= l.perAddr:
			reason = "conns_per_addr"
		default:
			l.n++
			l.byAddr[key]++
		}
		l.mu.Unlock()
		if reason != "" {
			c.Close()
			l.refused(reason)
			continue
		}
		return &limitConn{Conn: c, l: l, key: key}, nil
	}
}

func (l *limitListener) release(key string) {
	l.mu.Lock()
	l.n--
	if l.byAddr[key]--; l.byAddr[key] <= 0 {
		delete(l.byAddr, key)
	}
	l.mu.Unlock()
}

type limitConn struct {
	net.Conn
	l    *limitListener
	key  string
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}
