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
}

// Status takes a snapshot.
func (g *Gateway) Status() Status {
	st := Status{
		Gateway: g.cfg.Gateway.ID, Version: g.version, BootID: g.bootID, Started: g.started,
		DataDir: g.dataDir, Appended: g.appended.Load(), Uplink: g.sender.Status(),
	}
	for _, t := range g.tailers {
		st.Sources = append(st.Sources, t.Status())
	}
	if g.syslog != nil {
		s := g.syslog.Status()
		st.Syslog = &s
	}
	if g.audit != nil {
		s := g.audit.Status()
		st.Audit = &s
	}
	if g.integrity != nil {
		s := g.integrity.Status()
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
