package collector

import (
	"log/slog"
	"sync"
	"time"

	"github.com/weirgw/weir/uplink"
)

// maxPullsPerSession bounds the bundles one session is sent: a pull of
// a few bytes asks for up to uplink.MaxBundleBytes, and a stolen key
// must not turn that into a flood.
const maxPullsPerSession = 4

// sessionConfig is what a version 4 session knows of its gateway's
// remote configuration.
type sessionConfig struct {
	mu      sync.Mutex
	status  *uplink.ConfigStatus // nil until the gateway reports
	labels  map[string]string
	offered uplink.Digest // the bundle offered last on this session
	pulls   int
}

// controlLimit bounds a frame by its type once the session is open:
// Data by the agreed batch limits (max), anything else a gateway sends
// by a Hello's bound.
func controlLimit(max *int) func(uplink.MsgType) int {
	return func(t uplink.MsgType) int {
		if t == uplink.MsgData {
			return *max
		}
		return uplink.HelloMaxFrame
	}
}

// configMessage handles ConfigStatus and ConfigPull; it says whether the
// session goes on.
func (sess *session) configMessage(m uplink.Message) bool {
	switch m := m.(type) {
	case *uplink.ConfigStatus:
		sess.configStatus(m)
	case *uplink.ConfigPull:
		return sess.configPull(m)
	}
	return true
}

func (sess *session) configStatus(m *uplink.ConfigStatus) {
	b := sess.srv.bundles
	if b == nil {
		return // this collector serves no bundles
	}
	labels := b.report(sess.id, m, time.Now())
	sess.cfg.mu.Lock()
	prev := sess.cfg.status
	sess.cfg.status, sess.cfg.labels = m, labels
	sess.cfg.mu.Unlock()
	if prev == nil || prev.Result != m.Result || prev.Version != m.Version || prev.Applied != m.Applied {
		level := slog.LevelInfo
		if m.Result == uplink.ConfigRefused || m.Result == uplink.ConfigRolledBack {
			level = slog.LevelWarn
		}
		sess.note(level, "gateway configuration", "applied", m.Applied, "version", m.Version, "result", clip(m.Result), "error", clip(m.Error))
	}
	sess.offerBundle()
}

func (sess *session) configPull(m *uplink.ConfigPull) bool {
	b := sess.srv.bundles
	if b == nil {
		return true
	}
	sess.cfg.mu.Lock()
	sess.cfg.pulls++
	pulls, labels := sess.cfg.pulls, sess.cfg.labels
	sess.cfg.mu.Unlock()
	if pulls > maxPullsPerSession {
		sess.refuse(uplink.ErrProtocol, "too many configuration pulls on one session", "bad_message",
			"session closed: too many configuration pulls", "pulls", pulls)
		return false
	}
	p, raw, ok := b.desiredFor(sess.id, labels)
	if !ok || p.Version != m.Version || uplink.DigestOf(raw) != m.Digest {
		// Not what this collector holds for the gateway (any more):
		// offer what it holds instead.
		sess.cfg.mu.Lock()
		sess.cfg.offered = uplink.Digest{}
		sess.cfg.mu.Unlock()
		sess.offerBundle()
		return true
	}
	if err := sess.w.write(&uplink.ConfigBundle{Version: p.Version, Bundle: raw}); err != nil {
		sess.note(slog.LevelWarn, "send configuration bundle", "err", err)
		return false
	}
	b.noted(sess.id, func(r *Report) { r.Sent = p.Version })
	sess.note(slog.LevelInfo, "configuration bundle sent", "version", p.Version, "bytes", len(raw))
	return true
}

// offerBundle offers the gateway the bundle this collector holds for it
// when it is newer than any the gateway has taken, once per session
// and bundle. Safe from any goroutine (the session's writer is locked).
func (sess *session) offerBundle() {
	b := sess.srv.bundles
	if b == nil {
		return
	}
	sess.cfg.mu.Lock()
	st, labels := sess.cfg.status, sess.cfg.labels
	sess.cfg.mu.Unlock()
	if st == nil {
		return // the gateway has not said what it runs yet
	}
	p, raw, ok := b.desiredFor(sess.id, labels)
	if !ok || p.Version <= st.Highest {
		return
	}
	d := uplink.DigestOf(raw)
	sess.cfg.mu.Lock()
	if sess.cfg.offered == d {
		sess.cfg.mu.Unlock()
		return
	}
	sess.cfg.offered = d
	sess.cfg.mu.Unlock()
	if err := sess.w.write(&uplink.ConfigOffer{Version: p.Version, Size: uint64(len(raw)), Digest: d}); err != nil {
		sess.note(slog.LevelWarn, "send configuration offer", "err", err)
		return
	}
	b.noted(sess.id, func(r *Report) { r.Offered, r.OfferedAt = p.Version, time.Now().UTC() })
	sess.note(slog.LevelInfo, "configuration bundle offered", "version", p.Version, "target", p.Target)
}
