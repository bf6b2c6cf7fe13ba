#!/usr/bin/env bash
# Installs what the build, tests and demo need, idempotently. Run by the
# Makefile's targets; safe to run by hand as often as you like.
#
#   scripts/deps.sh        what `make test` and `make demo` need
#   scripts/deps.sh arm    that, plus qemu-user-static for `make test-arm`
#   scripts/deps.sh image  that, plus what `make image-smoke` boots: QEMU
#                          for arm64 and Debian's arm64 kernel and BusyBox
set -euo pipefail
cd "$(dirname "$0")/.."

arm=0
image=0
for a in "$@"; do
	case $a in
	arm) arm=1 ;;
	image) image=1 ;;
	*)
		echo "deps: unknown argument '$a' (expected: arm, image)" >&2
		exit 2
		;;
	esac
done

# Debian packages the tests and demo use. Each later peer (socat, libmodbus,
# linuxptp, rsyslog, nftables, qemu-user-static, ...) is added here with the
# test that needs it.
packages=(ca-certificates)
# The lossy link of the uplink tests and `weir-bench link` (uplink/linklab):
# network namespaces joined by veth (iproute2), random drop with nftables,
# segmentation offloads turned off with ethtool.
packages+=(iproute2 nftables ethtool)
# Modbus interop tests (sensors/modbus): socat pty pairs as serial lines, a
# small libmodbus server compiled by the test (gcc, libc6-dev, pkg-config,
# libmodbus-dev), and mbpoll as an independent master.
packages+=(socat gcc libc6-dev pkg-config libmodbus-dev mbpoll)
# Syslog interop tests (sensors/syslog): util-linux's logger (bsdutils) and
# a private rsyslogd forwarding over mutual TLS with each of its drivers
# (gtls: rsyslog-gnutls, ossl: rsyslog-openssl); the syslog output's
# interop test (uplink/siem/syslogtls TestRsyslogReceivesEveryFormat)
# runs a private rsyslogd as a receiver requiring client certificates,
# with each driver. Audit integration tests
# (sensors/audit, as root): the real auditd writing its own log
# (TestIntegrationAuditd), and as the audit daemon beside which the netlink
# source reads the multicast group (TestNetlinkMulticastBesideAuditd;
# auditctl loads its rule).
packages+=(rsyslog rsyslog-gnutls rsyslog-openssl bsdutils auditd)
# make faults (scripts/faults.sh) reads `weir status --json` and the
# collector's sink with jq.
packages+=(jq)
# PTP tests (ptp, as root): ptp4l as grandmaster and as a reference slave in
# namespaces, pmc to query them (linuxptp); stdbuf keeps ptp4l's output
# line-buffered through a pipe (coreutils).
packages+=(linuxptp coreutils)
# `make demo`'s summary reads the collector's JSON lines sink (jq); its
# processes run in sessions of their own (setsid: util-linux).
packages+=(jq util-linux)
# The least-privilege test (cmd/weir TestRunUnprivileged, as root) creates
# the weir system user in group dialout (useradd, usermod: passwd).
packages+=(passwd)
# The BusyBox init script's test (cmd/weir TestBusyBoxInitScript, as root)
# runs dist/busybox/S95weir with BusyBox's sh and start-stop-daemon, as a
# Buildroot image would.
packages+=(busybox)
# The fleet page's browser tests (cmd/weir-collector TestFleetPageInChromium;
# TestFleetPageLoad behind `make fleet-load`) drive headless Chromium through
# chromedp; fonts-dejavu-core is the font its pages are drawn in.
packages+=(chromium fonts-dejavu-core)
# `make bench` (weir-bench e2e) runs rsyslog (above) and syslog-ng side by
# side with Weir: syslog-ng's libraries here; syslog-ng-core itself cannot
# be installed beside rsyslog (both are the system's log daemon), so it is
# downloaded and unpacked into bin/tools/syslog-ng below, and run from
# there. linux-perf counts each process's fsync calls (perf stat on
# syscall tracepoints) and nftables its bytes on the wire.
packages+=(libivykis0 libnet1 libpcre3 libjson-c5 libwrap0 libglib2.0-0 linux-perf nftables)
# `make test-arm` runs the arm64 and armv7 unit tests under qemu-user
# (qemu-aarch64-static, qemu-arm-static), invoked directly, so binfmt_misc
# need not be registered.
if [ "$arm" = 1 ]; then
	packages+=(qemu-user-static)
fi
# `make image-smoke` (buildroot/smoke) boots an emulated arm64 board:
# qemu-system-aarch64 (qemu-system-arm), its initramfs packed with cpio,
# its data disk made with mke2fs (e2fsprogs). The board's kernel and
# BusyBox are Debian's arm64 packages, fetched below.
if [ "$image" = 1 ]; then
	packages+=(qemu-system-arm cpio e2fsprogs)
fi

need=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing Debian packages: ${need[*]} (run as root, or install them)" >&2
		exit 1
	fi
	echo "deps: installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The emulated board's arm64 packages for `make image-smoke`, downloaded
# (not installed) into bin/image/debs: busybox-static, and the kernel
# package linux-image-arm64 depends on (the metapackage holds no kernel).
# apt needs the arm64 architecture to find them.
if [ "$image" = 1 ]; then
	debs=bin/image/debs
	mkdir -p "$debs"
	if ! compgen -G "$debs/busybox-static_*_arm64.deb" >/dev/null || ! compgen -G "$debs/linux-image-*-arm64_*_arm64.deb" >/dev/null; then
		if [ "$(id -u)" -ne 0 ]; then
			echo "deps: image: the arm64 packages are not in $debs (run as root to fetch them)" >&2
			exit 1
		fi
		if ! dpkg --print-foreign-architectures | grep -qx arm64; then
			echo "deps: adding the arm64 architecture to dpkg (for apt-get download of the emulated board's packages)"
			dpkg --add-architecture arm64
			apt-get update -qq
		fi
		kernel=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)
		if [ -z "$kernel" ]; then
			apt-get update -qq
			kernel=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)
		fi
		[ -n "$kernel" ] || { echo "deps: image: apt names no kernel for linux-image-arm64:arm64" >&2; exit 1; }
		echo "deps: downloading busybox-static:arm64 and $kernel into $debs"
		rm -f "$debs"/*.deb
		(cd "$debs" && apt-get download -q busybox-static:arm64 "${kernel%:arm64}:arm64" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
		compgen -G "$debs/busybox-static_*_arm64.deb" >/dev/null && compgen -G "$debs/linux-image-*-arm64_*_arm64.deb" >/dev/null ||
			{ echo "deps: image: apt-get download did not fetch the arm64 packages into $debs" >&2; exit 1; }
	fi
fi

# syslog-ng for `make bench`, unpacked (not installed: see above).
slng=bin/tools/syslog-ng
if [ ! -x "$slng/usr/sbin/syslog-ng" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: bench: syslog-ng is not in $slng (run as root to fetch it)" >&2
		exit 1
	fi
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -q syslog-ng-core 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
	compgen -G "$tmp/syslog-ng-core_*.deb" >/dev/null || { echo "deps: bench: apt-get download syslog-ng-core fetched nothing" >&2; exit 1; }
	echo "deps: unpacking $(basename "$tmp"/syslog-ng-core_*.deb) into $slng"
	mkdir -p "$slng"
	dpkg-deb -x "$tmp"/syslog-ng-core_*.deb "$slng"
	rm -rf "$tmp"
fi

# Go: the go command on PATH (1.21 or newer, to switch toolchains) fetches
# the toolchain the project builds with from the module proxy the first
# time: go1.27.3, the first served release without the standard library
# advisories govulncheck reports for 1.26.8. go.mod's go line
# names it too; a go command set to GOTOOLCHAIN=local refuses the module
# rather than build it with an older release.
export GOTOOLCHAIN=go1.27.3
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH=/usr/local/go/bin:$PATH
fi
if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go 1.21 or newer is needed on PATH to fetch $GOTOOLCHAIN, and 'go' is not on PATH" >&2
	exit 1
fi
if ! gov=$(go env GOVERSION) || [ "$gov" != "$GOTOOLCHAIN" ]; then
	echo "deps: the go command did not switch to $GOTOOLCHAIN (got '${gov:-nothing}'); it fetches it from the module proxy (GOPROXY=$(GOTOOLCHAIN=local go env GOPROXY))" >&2
	exit 1
fi
# Its bin/ first on PATH: the tools below load packages through `go list`,
# which they also ask for the language version in GOPATH mode, where
# GOTOOLCHAIN is not obeyed; with the older go first they type-check
# go1.27 sources as go1.26 and fail.
PATH=$(go env GOROOT)/bin:$PATH
export PATH

# Tools pinned to a version, installed into bin/tools, and built again when
# the binary there is another version or was built by another toolchain.
#   staticcheck  `make lint`
#   govulncheck  `make vuln`, against the database scripts/vulndb.sh builds
mkdir -p bin/tools
tool() {
	local name=$1 module=$2 version=$3 pkg=$4 bin=bin/tools/$1
	if [ -x "$bin" ] && [ "$(go version "$bin" 2>/dev/null)" = "$bin: $GOTOOLCHAIN" ] &&
		go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+$module[[:space:]]+$version([[:space:]]|\$)"; then
		return
	fi
	echo "deps: installing $name $version ($GOTOOLCHAIN)"
	GOBIN="$PWD/bin/tools" GOFLAGS=-mod=mod go install "$pkg@$version"
}
tool staticcheck honnef.co/go/tools v0.8.2 honnef.co/go/tools/cmd/staticcheck
tool govulncheck golang.org/x/vuln v1.10.0 golang.org/x/vuln/cmd/govulncheck
