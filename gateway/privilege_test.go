package gateway

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/syslog"
)

func TestDecodeCaps(t *testing.T) {
	require.Empty(t, decodeCaps(0))
	require.Equal(t, []string{"CAP_NET_BIND_SERVICE"}, decodeCaps(1<<10))
	require.Equal(t, []string{"CAP_SYS_TIME", "CAP_AUDIT_READ"}, decodeCaps(1<<25|1<<37))
	all := decodeCaps(0x1ffffffffff)
	require.Len(t, all, 41)
	require.Equal(t, "CAP_CHOWN", all[0])
	require.Equal(t, "CAP_CHECKPOINT_RESTORE", all[40])
	require.Equal(t, []string{"cap_50"}, decodeCaps(1<<50))
}

func TestParseCapEff(t *testing.T) {
	status := "Name:\tweir\nUid:\t999\t999\t999\t999\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000400\nCapEff:\t0000000000000400\n"
	mask, err := parseCapEff(status)
	require.NoError(t, err)
	require.Equal(t, uint64(1<<10), mask)
	_, err = parseCapEff("Name:\tweir\n")
	require.ErrorContains(t, err, "no CapEff")
	_, err = parseCapEff("CapEff:\tzz\n")
	require.ErrorContains(t, err, `CapEff "zz"`)
}

func TestCapNeeds(t *testing.T) {
	base := func() *Config {
		l, err := Load("", false)
		require.NoError(t, err)
		return &l.Config
	}
	syslogOn := func(udp string) func(*Config) {
		return func(c *Config) {
			sc := syslog.DefaultConfig()
			sc.UDP.Listen, sc.TCP.Listen = udp, ""
			c.Inputs.Syslog = &sc
		}
	}
	auditOn := func(source, mode string) func(*Config) {
		return func(c *Config) {
			ac := audit.DefaultConfig()
			ac.Source, ac.Mode = source, mode
			c.Inputs.Audit = &ac
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		need []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"syslog on 514", syslogOn("0.0.0.0:514"), []string{"CAP_NET_BIND_SERVICE"}},
		{"syslog on 5514", syslogOn("127.0.0.1:5514"), nil},
		{"metrics on 80", func(c *Config) { c.Metrics.Listen = "127.0.0.1:80" }, []string{"CAP_NET_BIND_SERVICE"}},
		{"builtin PTP", func(c *Config) { c.Clock.Mode = ptp.ModeBuiltin }, []string{"CAP_NET_BIND_SERVICE"}},
		{"builtin PTP steering the clock", func(c *Config) {
			c.Clock.Mode = ptp.ModeBuiltin
			c.Clock.Builtin.AdjustSystemClock = true
		}, []string{"CAP_NET_BIND_SERVICE", "CAP_SYS_TIME"}},
		{"adjust_system_clock without builtin", func(c *Config) { c.Clock.Builtin.AdjustSystemClock = true }, nil},
		{"audit from auditd's log", auditOn(audit.SourceFile, ""), nil},
		{"audit netlink unicast", auditOn(audit.SourceNetlink, audit.ModeUnicast), []string{"CAP_AUDIT_CONTROL"}},
		{"audit netlink multicast", auditOn(audit.SourceNetlink, audit.ModeMulticast), []string{"CAP_AUDIT_READ"}},
		{"audit netlink auto", auditOn(audit.SourceNetlink, audit.ModeAuto), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(c)
			need, _ := capNeeds(c)
			var got []string
			for k := range need {
				got = append(got, k)
			}
			require.ElementsMatch(t, tc.need, got)
		})
	}
}

func TestPrivilegeReport(t *testing.T) {
	cfg := func(udp string) *Config {
		l, err := Load("", false)
		require.NoError(t, err)
		if udp != "" {
			sc := syslog.DefaultConfig()
			sc.UDP.Listen, sc.TCP.Listen = udp, ""
			l.Inputs.Syslog = &sc
		}
		return &l.Config
	}
	weir := privileges{uid: 999, gid: 999, user: "weir", groups: []string{"weir", "dialout"}}
	for _, tc := range []struct {
		name  string
		p     privileges
		cfg   *Config
		shown string
		warn  []string
	}{
		{"root, every capability", privileges{uid: 0, user: "root", caps: 0x1ffffffffff}, cfg("127.0.0.1:514"), "all (41)",
			[]string{"running as root with 39 capabilities the configuration does not need (CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,",
				"; run as an unprivileged user (weir, in group dialout for serial lines) with only: CAP_NET_BIND_SERVICE"}},
		{"weir with what it needs", func() privileges { p := weir; p.caps = 1 << 10; return p }(), cfg("127.0.0.1:514"),
			"CAP_NET_BIND_SERVICE", nil},
		{"weir with nothing, needing nothing", weir, cfg(""), "none", nil},
		{"weir with SYS_TIME it does not steer with", func() privileges { p := weir; p.caps = 1 << 25; return p }(), cfg(""),
			"CAP_SYS_TIME", []string{"running with 1 capabilities the configuration does not need (CAP_SYS_TIME); run as an unprivileged user (weir, in group dialout for serial lines) with only: none"}},
		{"weir lacking NET_BIND_SERVICE", weir, cfg("127.0.0.1:514"), "none",
			[]string{"lacks CAP_NET_BIND_SERVICE for inputs.syslog.udp.listen 127.0.0.1:514"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attrs, warnings := privilegeReport(tc.p, tc.cfg)
			m := map[any]any{}
			for i := 0; i+1 < len(attrs); i += 2 {
				m[attrs[i]] = attrs[i+1]
			}
			require.Equal(t, tc.shown, m["capabilities"])
			require.Equal(t, tc.p.user, m["user"])
			if tc.warn == nil {
				require.Empty(t, warnings)
				return
			}
			require.Len(t, warnings, 1, "%q", warnings)
			for _, w := range tc.warn {
				require.True(t, strings.Contains(warnings[0], w), "%q lacks %q", warnings[0], w)
			}
		})
	}
}
