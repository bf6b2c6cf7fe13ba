package gateway

import (
	"time"

	"github.com/weirgw/weir/sensors/hostlog"
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
	Spool    SpoolStatus          `json:"spool"`
	Uplink   sender.Status        `json:"uplink"`
}

// SpoolStatus is the spool's backlog.
type SpoolStatus struct {
	Records   int64     `json:"records"`
	Bytes     int64     `json:"bytes"`
	NextSeq   uint64    `json:"next_seq"`
	AckedUpTo uint64    `json:"acked_up_to"`
	Oldest    time.Time `json:"oldest_unacked,omitzero"`
	DiskBytes int64     `json:"disk_bytes"`
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
	s := g.spool.Stats()
	st.Spool = SpoolStatus{Records: s.Records, Bytes: s.Bytes, NextSeq: s.NextSeq, AckedUpTo: s.AckedUpTo, Oldest: s.Oldest, DiskBytes: s.DiskBytes}
	return st
}
