package gateway

import (
	"time"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/rules/action"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/hostlog"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/syslog"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink/sender"
)

// Status is what `weir status` shows, served as JSON on the admin socket.
type Status struct {
	Gateway  string               `json:"gateway"`
	Version  string               `json:"version"`
	BootID   string               `json:"boot_id"`
	Started  time.Time            `json:"started"`
	DataDir  string               `json:"data_dir"`
	Appended uint64               `json:"records_appended"`
	Sources  []hostlog.TailStatus `json:"sources"`
	Spool    spool.Stats          `json:"spool"`
	Uplink   sender.Status        `json:"uplink"`

	// The optional inputs, absent while off.
	Syslog    *syslog.Status    `json:"syslog,omitempty"`
	Audit     *audit.Status     `json:"audit,omitempty"`
	Integrity *integrity.Status `json:"integrity,omitempty"`

	// Board is absent without a board section; Health is the watchdogs'
	// verdict on the pipeline.
	Board  *board.Status `json:"board,omitempty"`
	Health Health        `json:"health"`

	// Config is the configuration in force: its generation and the last
	// reload's outcome.
	Config ConfigStatus `json:"config"`

	// Counters are the pipeline's figures as a SOC knows them; Alerts the
	// rules' state (weir alerts).
	Counters Counters     `json:"counters"`
	Alerts   rules.Status `json:"alerts"`
	// Processors are the chains' figures since they were last loaded.
	Processors []ProcessorChainStatus `json:"processors,omitempty"`
	// Seal is the Merkle log's last seal; absent while seals are off.
	Seal *SealStatus `json:"seal,omitempty"`
}

// Counters are the pipeline's figures since start, named as log shippers
// and SIEM agents name theirs.
type Counters struct {
	EventsLogged  uint64 `json:"events_logged"`  // records stamped and spooled
	EventsDropped int64  `json:"events_dropped"` // records lost unsent: evicted or expired from a full spool, quarantined as damaged
	EventsShipped uint64 `json:"events_shipped"` // records the collector acknowledged
	// ShipFailures: handshakes refused or failed, and sessions lost and
	// reconnected, over every endpoint.
	ShipFailures uint64            `json:"ship_failures"`
	QueueSize    int64             `json:"queue_size"` // records in the spool not yet acknowledged
	Alerts       map[string]uint64 `json:"alerts_by_level"`
	Correlations map[string]uint64 `json:"correlations_detected"`
	// Actions: the alert commands started, failed and skipped.
	Actions action.Stats `json:"actions"`
}

// counters gathers the figures.
func (g *Gateway) counters(sp spool.Stats, up sender.Status, rs rules.Stats) Counters {
	c := Counters{EventsLogged: g.appended.Load(), EventsShipped: up.RecordsAcked, QueueSize: sp.Records,
		Alerts: rs.Alerts, Correlations: rs.Correlations, Actions: g.actions.Stats()}
	for _, cs := range sp.Classes {
		c.EventsDropped += cs.Evicted + cs.Expired
	}
	c.EventsDropped += int64(sp.Quarantined)
	for _, e := range up.Endpoints {
		c.ShipFailures += e.HandshakeFailures + e.Reconnects
	}
	return c
}

// Status takes a snapshot.
func (g *Gateway) Status() Status {
	p := g.now()
	st := Status{
		Gateway: g.cfg.Gateway.ID, Version: g.version, BootID: g.bootID, Started: g.started,
		DataDir: g.dataDir, Appended: g.appended.Load(), Uplink: p.sender.Status(), Config: g.configStatus(),
	}
	for _, t := range p.tailers {
		st.Sources = append(st.Sources, t.Status())
	}
	if p.syslog != nil {
		s := p.syslog.Status()
		st.Syslog = &s
	}
	if p.audit != nil {
		s := p.audit.Status()
		st.Audit = &s
	}
	if p.integrity != nil {
		s := p.integrity.Status()
		st.Integrity = &s
	}
	st.Spool = g.spool.Stats()
	if b := g.Board(); b != nil {
		bs := b.Status()
		st.Board = &bs
	}
	st.Health = g.health.snapshot()
	st.Alerts = g.rules.Status()
	st.Processors = g.procs.Load().status()
	st.Seal = g.sealer.status()
	st.Counters = g.counters(st.Spool, st.Uplink, st.Alerts.Stats)
	return st
}
