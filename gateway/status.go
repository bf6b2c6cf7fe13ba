package gateway

import (
	"time"

	"github.com/weirgw/weir/board"
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
	return st
}
