package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/syslog"
	"github.com/weirgw/weir/spool"
)

func TestPrintStatusInputs(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	base := gateway.Status{Gateway: "gw", Started: now.Add(-time.Hour)}
	on := base
	on.Syslog = &syslog.Status{Name: "syslog", Emitted: 9, MaxConnections: 256, ConnectionsOpen: 1, RateLimited: 4,
		Listeners: []syslog.ListenerStatus{
			{Transport: "udp", Address: "127.0.0.1:514", Received: 5, ParseErrors: 1, SocketDrops: 2},
			{Transport: "tcp", Address: "127.0.0.1:514", Received: 4},
		}}
	on.Audit = &audit.Status{Name: "audit", Path: "/var/log/audit/audit.log", State: audit.StateReading,
		File: "/var/log/audit/audit.log", Offset: 100, Size: 200, Events: 3, Errors: 1, LastError: "emit: spool closed"}
	on.Integrity = &integrity.Status{Paths: []string{"/etc", "/usr/bin/weir"}, Files: 812, Watches: 90, Changes: 2,
		LastScan: now.Add(-5 * time.Minute), LastScanMillis: 340}

	nl := base
	nl.Audit = &audit.Status{Name: "audit", Source: audit.SourceNetlink, State: audit.StateReading, Events: 7,
		Netlink: audit.NetlinkStatus{Mode: audit.ModeUnicast, DaemonPID: 4242, Backlog: 3, BacklogLimit: 8192, KernelLost: 12, Dropped: 1}}

	cases := []struct {
		name      string
		st        gateway.Status
		want, not []string
	}{
		{"off", base, nil, []string{"syslog", "audit", "integrity"}},
		{"on", on, []string{
			"source   syslog: udp 127.0.0.1:514, tcp 127.0.0.1:514; 9 messages, 1 unparsed, 9 emitted, 0 queued, 1 of 256 connections; dropped 4 over the rate limit, 2 by the socket buffer, 0 lost\n",
			"source   audit: reading /var/log/audit/audit.log, offset 100 of 200; 3 events, 0 pending, 0 unparsed, 1 errors (last: emit: spool closed)\n",
			"source   integrity: 2 paths, 812 in the baseline, 90 watched directories; 2 changes; last scan 5m0s ago (340ms)\n",
		}, nil},
		{"audit over netlink", nl, []string{
			"source   audit: reading netlink unicast, daemon pid 4242, backlog 3 of 8192; 7 events, 0 pending, 0 unparsed; kernel lost 12, 1 dropped\n",
		}, []string{"offset"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			printStatus(&b, &c.st, now)
			for _, w := range c.want {
				require.Contains(t, b.String(), w)
			}
			for _, n := range c.not {
				require.NotContains(t, b.String(), n)
			}
		})
	}
}

func TestPrintStatusSpoolDisk(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	st := gateway.Status{Gateway: "gw", Started: now.Add(-time.Hour)}
	st.Uplink.State = "disabled"
	st.Spool.MaxBytes = 256 << 20
	st.Spool.Disk = spool.DiskStats{Free: 20 << 20, Reserve: 16 << 20, Ballast: 20 << 20, Budget: 30 << 20,
		Held: "disk full: 20.0MiB free", HeldSince: now.Add(-90 * time.Second), AcksInMemory: true}
	st.Spool.Quarantined = 18
	var b bytes.Buffer
	printStatus(&b, &st, now)
	for _, want := range []string{
		"disk: 20.0 MiB free, 16.0 MiB kept in reserve, ballast 20.0 MiB; the backlog can reach 30.0 MiB (the disk holds less than max_bytes 256.0 MiB)\n",
		"INTAKE HELD for 1m30s: disk full: 20.0MiB free; sources wait, critical records still go in\n",
		"acknowledgements kept in memory",
		"18 damaged records quarantined",
	} {
		require.Contains(t, b.String(), want)
	}

	st.Spool.Disk = spool.DiskStats{Free: -1}
	st.Spool.Quarantined = 0
	b.Reset()
	printStatus(&b, &st, now)
	require.NotContains(t, b.String(), "disk:")
	require.NotContains(t, b.String(), "HELD")
}
