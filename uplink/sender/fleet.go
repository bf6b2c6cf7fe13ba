package sender

import (
	"fmt"

	"github.com/weirgw/weir/uplink"
)

// Fleet is the gateway's side of remote configuration, as a session
// needs it: what to report to the collector, whether to pull a bundle it
// offers, and where to hand one pulled. The sender decides nothing about
// a bundle; it only carries it.
type Fleet interface {
	// ConfigStatus is sent after Welcome (protocol version 4) and again
	// each time Changed is closed.
	ConfigStatus() uplink.ConfigStatus
	// Changed is closed at the next change of ConfigStatus; take it
	// before reading ConfigStatus, and none is missed.
	Changed() <-chan struct{}
	// Offered says whether to pull the bundle a collector offers.
	Offered(o uplink.ConfigOffer, endpoint string) bool
	// Pulled hands over a bundle pulled. It must not block: applying it
	// may restart this very sender.
	Pulled(b uplink.ConfigBundle, endpoint string)
}

// UseFleet carries remote configuration for f on every version 4
// session. Call it before Run.
func (s *Sender) UseFleet(f Fleet) { s.fleet = f }

// fleetLink is one session's part in remote configuration.
type fleetLink struct {
	f        Fleet
	endpoint string
	changed  <-chan struct{}
	pulls    map[uplink.Digest]uint64 // pulled on this session, not received yet
}

// startFleet reports the gateway's configuration on a session whose
// Welcome says version 4; nil when the session carries none.
func (s *Sender) startFleet(w *frameWriter, welcome *uplink.Welcome, endpoint string) (*fleetLink, error) {
	if s.fleet == nil || welcome.Version < 4 {
		return nil, nil
	}
	fl := &fleetLink{f: s.fleet, endpoint: endpoint, pulls: map[uplink.Digest]uint64{}}
	return fl, fl.report(w)
}

// changes is the channel that wakes the session to report again; nil
// (never ready) without remote configuration.
func (fl *fleetLink) changes() <-chan struct{} {
	if fl == nil {
		return nil
	}
	return fl.changed
}

func (fl *fleetLink) report(w *frameWriter) error {
	fl.changed = fl.f.Changed()
	st := fl.f.ConfigStatus()
	if err := w.write(&st); err != nil {
		return fmt.Errorf("uplink: %s: send config status: %w", fl.endpoint, err)
	}
	return nil
}

// reply handles an offer or a bundle from the collector.
func (fl *fleetLink) reply(w *frameWriter, r reply) error {
	if fl == nil {
		return fmt.Errorf("uplink: %s sent a configuration message on a session that carries none", fl.endpointOr())
	}
	if o := r.offer; o != nil {
		if !fl.f.Offered(*o, fl.endpoint) {
			return nil
		}
		if len(fl.pulls) >= 4 {
			return fmt.Errorf("uplink: %s offered more bundles than one session pulls", fl.endpoint)
		}
		fl.pulls[o.Digest] = o.Version
		if err := w.write(&uplink.ConfigPull{Version: o.Version, Digest: o.Digest}); err != nil {
			return fmt.Errorf("uplink: %s: send config pull: %w", fl.endpoint, err)
		}
		return nil
	}
	b := r.bundle
	d := uplink.DigestOf(b.Bundle)
	if v, ok := fl.pulls[d]; !ok || v != b.Version {
		return fmt.Errorf("uplink: %s sent configuration bundle %d, which was not pulled", fl.endpoint, b.Version)
	}
	delete(fl.pulls, d)
	fl.f.Pulled(*b, fl.endpoint)
	return nil
}

func (fl *fleetLink) endpointOr() string {
	if fl == nil {
		return "the collector"
	}
	return fl.endpoint
}
