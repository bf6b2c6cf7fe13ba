#!/usr/bin/env bash
# The emulated boot of the firmware (`make image-smoke`): builds what the
# board boots and runs buildroot/smoke, which boots it in QEMU, checks it
# over its serial console as a technician, and cuts its power CUTS times.
#
#   scripts/image-smoke.sh          CUTS=10 power cuts (about 5 minutes)
#   CUTS=1 scripts/image-smoke.sh   one boot-check and one cut (CI)
#
# Environment: CUTS (10), SEED (the cuts' moments; printed by each run),
# SMOKE_WORK (where the run's files and logs go; default a new directory
# in /tmp, kept on failure, removed on success unless KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOTOOLCHAIN=go1.27.3

t0=$SECONDS
say() { printf '[image-smoke %4ds] %s\n' $((SECONDS - t0)) "$*"; }

scripts/deps.sh image
say "deps: qemu-system-aarch64, Debian's arm64 packages in bin/image/debs: $(cd bin/image/debs && echo *.deb)"

make --no-print-directory build >/dev/null
scripts/cross.sh arm64
say "built: bin/weir, bin/weir-collector, bin/weir-sim (this host), bin/cross/weir-linux-arm64 (the board)"

mkdir -p bin/image
buildroot/smoke/initramfs.sh bin/image/debs bin/cross/weir-linux-arm64 bin/image/initramfs.cpio.gz bin/image/vmlinuz
go build -o bin/image/smoke ./buildroot/smoke
say "assembled: bin/image/initramfs.cpio.gz, bin/image/vmlinuz"

work=${SMOKE_WORK:-$(mktemp -d /tmp/weir-image-smoke.XXXXXX)}
rc=0
bin/image/smoke -kernel bin/image/vmlinuz -initrd bin/image/initramfs.cpio.gz \
	-weir bin/weir -collector bin/weir-collector -sim bin/weir-sim \
	-work "$work" -cuts "${CUTS:-10}" ${SEED:+-seed "$SEED"} || rc=$?
if [ $rc -ne 0 ]; then
	say "FAILED; the run's files and logs (console-NN.log: each boot's serial console) are in $work"
	exit $rc
fi
if [ "${KEEP:-0}" = 1 ] || [ -n "${SMOKE_WORK:-}" ]; then
	say "passed; the run's files and logs are in $work"
else
	rm -rf "$work"
	say "passed"
fi
