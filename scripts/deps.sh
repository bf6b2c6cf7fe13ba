#!/usr/bin/env bash
# Installs what the build, tests and demo need, idempotently. Run by the
# Makefile's targets; safe to run by hand as often as you like.
#
#   scripts/deps.sh        what `make test` and `make demo` need
#   scripts/deps.sh arm    that, plus qemu-user-static for `make test-arm`
set -euo pipefail
cd "$(dirname "$0")/.."

arm=0
for a in "$@"; do
	case $a in
	arm) arm=1 ;;
	*)
		echo "deps: unknown argument '$a' (expected: arm)" >&2
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
# (gtls: rsyslog-gnutls, ossl: rsyslog-openssl). Audit integration test
# (sensors/audit, as root): the real auditd writing its own log.
packages+=(rsyslog rsyslog-gnutls rsyslog-openssl bsdutils auditd)
# make faults (scripts/faults.sh) reads `weir status --json` and the
# collector's sink with jq.
packages+=(jq)
# PTP tests (ptp, as root): ptp4l as grandmaster and as a reference slave in
# namespaces, pmc to query them (linuxptp); stdbuf keeps ptp4l's output
# line-buffered through a pipe (coreutils).
packages+=(linuxptp coreutils)
# `make test-arm` runs the arm64 and armv7 unit tests under qemu-user
# (qemu-aarch64-static, qemu-arm-static), invoked directly, so binfmt_misc
# need not be registered.
if [ "$arm" = 1 ]; then
	packages+=(qemu-user-static)
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

# Go 1.26 or newer.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH=/usr/local/go/bin:$PATH
fi
if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go 1.26 or newer is needed and 'go' is not on PATH" >&2
	exit 1
fi
gov=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' 1.26 "$gov" | sort -V | head -1)" != 1.26 ]; then
	echo "deps: Go $gov is too old; 1.26 or newer is needed" >&2
	exit 1
fi

# Linters pinned to a version, installed into bin/tools.
mkdir -p bin/tools
if [ ! -x bin/tools/staticcheck ] || ! bin/tools/staticcheck -version 2>/dev/null | grep -q '(0.8.2)'; then
	echo "deps: installing staticcheck 0.8.2"
	GOBIN="$PWD/bin/tools" GOFLAGS=-mod=mod go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
