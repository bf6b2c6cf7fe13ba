package gateway

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/sensors/audit"
)

// The gateway needs no privilege for most of its work: it reads files it
// is allowed to read, writes its data directory, dials the collector. A
// few features need a capability, or a group; docs/SECURITY.md lists them
// and the unprivileged `weir` user the service runs as. At start the
// gateway logs whom it runs as and with which capabilities, and warns of
// capabilities its configuration has no use for, root's above all.

// capNames are Linux's capability names by bit (linux/capability.h).
var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// decodeCaps names the capabilities set in a CapEff mask; bits beyond
// the table are named by number.
func decodeCaps(mask uint64) []string {
	var out []string
	for bit := range 64 {
		if mask&(1<<bit) == 0 {
			continue
		}
		if bit < len(capNames) {
			out = append(out, capNames[bit])
		} else {
			out = append(out, "cap_"+strconv.Itoa(bit))
		}
	}
	return out
}

// parseCapEff reads the effective capability mask from the text of
// /proc/<pid>/status.
func parseCapEff(status string) (uint64, error) {
	for l := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("CapEff %q: %w", strings.TrimSpace(v), err)
			}
			return mask, nil
		}
	}
	return 0, fmt.Errorf("no CapEff line")
}

// capNeeds says which capabilities cfg calls for, each with the key that
// does (need), and which ones some setups of it need and others do not
// (may: not warned about when held).
func capNeeds(cfg *Config) (need, may map[string]string) {
	need, may = map[string]string{}, map[string]string{}
	privPort := func(key, addr string) {
		if _, port, err := net.SplitHostPort(addr); err == nil {
			if p, err := strconv.Atoi(port); err == nil && p > 0 && p < 1024 {
				need["CAP_NET_BIND_SERVICE"] = key + " " + addr
			}
		}
	}
	privPort("metrics.listen", cfg.Metrics.Listen)
	if sc := cfg.Inputs.Syslog; sc != nil {
		privPort("inputs.syslog.udp.listen", sc.UDP.Listen)
		privPort("inputs.syslog.tcp.listen", sc.TCP.Listen)
		privPort("inputs.syslog.tls.listen", sc.TLS.Listen)
	}
	if cfg.Clock.Mode == ptp.ModeBuiltin {
		need["CAP_NET_BIND_SERVICE"] = "clock.mode builtin (PTP ports 319 and 320)"
		// SO_BINDTODEVICE wants it before Linux 5.7.
		may["CAP_NET_RAW"] = "clock.builtin.interface on Linux before 5.7"
		if cfg.Clock.Builtin.AdjustSystemClock {
			need["CAP_SYS_TIME"] = "clock.builtin.adjust_system_clock"
		}
	}
	if ac := cfg.Inputs.Audit; ac != nil {
		switch {
		case ac.Source != audit.SourceNetlink:
			// Reading auditd's log wants its group (log_group = adm) or this.
			may["CAP_DAC_READ_SEARCH"] = "inputs.audit (or the group of auditd's log_group)"
		case ac.Mode == audit.ModeUnicast:
			need["CAP_AUDIT_CONTROL"] = "inputs.audit.mode unicast (Weir is the audit daemon)"
		case ac.Mode == audit.ModeMulticast:
			need["CAP_AUDIT_READ"] = "inputs.audit.mode multicast"
		default: // auto: which one depends on whether auditd runs
			may["CAP_AUDIT_READ"] = "inputs.audit.mode auto (multicast beside auditd)"
			may["CAP_AUDIT_CONTROL"] = "inputs.audit.mode auto (unicast without auditd)"
		}
	}
	if cfg.Inputs.Integrity != nil {
		may["CAP_DAC_READ_SEARCH"] = "inputs.integrity (files only root may read, such as /etc/shadow)"
	}
	if len(cfg.Inputs.Files) > 0 {
		if _, ok := may["CAP_DAC_READ_SEARCH"]; !ok {
			may["CAP_DAC_READ_SEARCH"] = "inputs.files (logs only root may read; group adm reads most)"
		}
	}
	if cfg.Admin.Group != "" {
		may["CAP_CHOWN"] = "admin.group (a group weir's user is not in)"
	}
	return need, may
}

// privileges is whom the process runs as.
type privileges struct {
	uid, gid int
	user     string
	groups   []string
	caps     uint64
	capsErr  error // the mask could not be read (not Linux, no /proc)
}

// privilegeReport is what logPrivileges logs: the attributes of the info
// line, and the warnings.
func privilegeReport(p privileges, cfg *Config) (attrs []any, warnings []string) {
	attrs = []any{"user", p.user, "uid", p.uid, "gid", p.gid, "groups", strings.Join(p.groups, ",")}
	if p.capsErr != nil {
		return append(attrs, "capabilities", "unknown: "+p.capsErr.Error()), nil
	}
	held := decodeCaps(p.caps)
	shown := strings.Join(held, ",")
	switch {
	case len(held) == 0:
		shown = "none"
	case len(held) >= len(capNames):
		shown = "all (" + strconv.Itoa(len(held)) + ")"
	}
	attrs = append(attrs, "capabilities", shown)

	need, may := capNeeds(cfg)
	var missing, extra []string
	for c, why := range need {
		if !slices.Contains(held, c) {
			missing = append(missing, c+" for "+why)
		}
	}
	for _, c := range held {
		if _, ok := need[c]; ok {
			continue
		}
		if _, ok := may[c]; ok {
			continue
		}
		extra = append(extra, c)
	}
	slices.Sort(missing)
	wanted := make([]string, 0, len(need))
	for c := range need {
		wanted = append(wanted, c)
	}
	slices.Sort(wanted)
	if len(wanted) == 0 {
		wanted = []string{"none"}
	}
	if len(extra) > 0 {
		who := "running"
		if p.uid == 0 {
			who = "running as root"
		}
		warnings = append(warnings, fmt.Sprintf("%s with %d capabilities the configuration does not need (%s); run as an unprivileged user (weir, in group dialout for serial lines) with only: %s",
			who, len(extra), strings.Join(extra, ","), strings.Join(wanted, ",")))
	}
	for _, m := range missing {
		warnings = append(warnings, "lacks "+m)
	}
	return attrs, warnings
}

// logPrivileges logs whom the gateway runs as and with which
// capabilities, and warns of capabilities it holds without need (or
// lacks).
func (g *Gateway) logPrivileges() {
	attrs, warnings := privilegeReport(currentPrivileges(), &g.cfg)
	g.log.Info("running as", attrs...)
	for _, w := range warnings {
		g.log.Warn(w)
	}
}

// currentPrivileges reads the process's user, groups and effective
// capabilities.
func currentPrivileges() privileges {
	p := privileges{uid: os.Geteuid(), gid: os.Getegid()}
	p.user = loginName(p.uid)
	if gs, err := os.Getgroups(); err == nil {
		for _, gid := range gs {
			p.groups = append(p.groups, groupName(gid))
		}
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		p.capsErr = err
		return p
	}
	p.caps, p.capsErr = parseCapEff(string(b))
	return p
}
