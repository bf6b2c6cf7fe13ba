package collector

import (
	"net"
	"sync"
)

// gate admits connections: handshakes (before authentication) within a
// global budget and a budget per source address, then sessions (after
// authentication) within a global budget and a budget per gateway id. A
// host with no certificate can hold only handshake slots, and only its
// own address's share of them, for at most the handshake timeout.
type gate struct {
	maxHandshakes, perAddr, maxSessions, perGateway int

	mu         sync.Mutex
	handshakes int
	addrs      map[string]int
	sessions   map[*session]struct{}
	gateways   map[string]int
}

func newGate(cfg Config) *gate {
	return &gate{maxHandshakes: cfg.MaxHandshakes, perAddr: cfg.MaxHandshakesPerAddr, maxSessions: cfg.MaxConns,
		perGateway: cfg.MaxSessionsPerGateway, addrs: map[string]int{}, sessions: map[*session]struct{}{}, gateways: map[string]int{}}
}

// Why a connection or session was not admitted (metric labels).
const (
	refusedHandshakes = "handshakes"          // max-handshakes in progress
	refusedAddr       = "handshakes_per_addr" // max-handshakes-per-addr from the source address
	refusedSessions   = "sessions"            // max-conns sessions open
	refusedGateway    = "sessions_per_gateway"
)

// addrKey is the unit of the per-address budget: the IP, or the /64 of an
// IPv6 address (one host usually holds a whole /64).
func addrKey(a net.Addr) string {
	var ip net.IP
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		ip = net.ParseIP(host)
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	if ip == nil {
		return a.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

func (g *gate) enterHandshake(key string) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.handshakes >= g.maxHandshakes:
		return refusedHandshakes, false
	case g.addrs[key] >= g.perAddr:
		return refusedAddr, false
	}
	g.handshakes++
	g.addrs[key]++
	return "", true
}

func (g *gate) leaveHandshake(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.handshakes--
	if g.addrs[key]--; g.addrs[key] <= 0 {
		delete(g.addrs, key)
	}
}

func (g *gate) enterSession(s *session) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case len(g.sessions) >= g.maxSessions:
		return refusedSessions, false
	case g.gateways[s.id] >= g.perGateway:
		return refusedGateway, false
	}
	g.sessions[s] = struct{}{}
	g.gateways[s.id]++
	return "", true
}

func (g *gate) leaveSession(s *session) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.sessions[s]; !ok {
		return
	}
	delete(g.sessions, s)
	if g.gateways[s.id]--; g.gateways[s.id] <= 0 {
		delete(g.gateways, s.id)
	}
}

// open returns the sessions open now.
func (g *gate) open() []*session {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*session, 0, len(g.sessions))
	for s := range g.sessions {
		out = append(out, s)
	}
	return out
}

func (g *gate) counts() (handshakes, sessions int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.handshakes, len(g.sessions)
}
