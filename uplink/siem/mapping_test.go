package siem

import (
	"testing"

	"github.com/weirgw/weir/event"
)

// TestPeerIP: the address fields take a bare address. A port goes, an
// IPv4-mapped address is unmapped, and an IPv6 zone goes too: it is any
// bytes at all, and one of invalid UTF-8 made the CEF line unreadable.
func TestPeerIP(t *testing.T) {
	for _, c := range []struct {
		peer, want string
	}{
		{"192.0.2.7:514", "192.0.2.7"},
		{"192.0.2.7", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:514", "192.0.2.7"},
		{"[fe80::1%eth0]:514", "fe80::1"},
		{"fe80::1%eth0", "fe80::1"},
		{"::C%/\xf1T#::::\xcb", "::c"},
		{"gw.example", ""},
		{"", ""},
	} {
		e := &event.Event{Fields: []event.Field{{Key: "peer", Value: event.Value{Type: event.TypeString, Str: c.peer}}}}
		got := ""
		if ip, ok := peerIP(e); ok {
			got = ip.String()
		}
		if got != c.want {
			t.Errorf("peer %q: address %q, want %q", c.peer, got, c.want)
		}
	}
}
