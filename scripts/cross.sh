#!/usr/bin/env bash
# Static ARM builds of the firmware, as the Buildroot package builds it:
# CGO_ENABLED=0, -trimpath, -buildvcs=false, -ldflags "-s -w -X
# main.version=$VERSION". Run by `make cross`.
#
#   scripts/cross.sh [--check] [arm64] [armv7]
#
# Writes bin/cross/weir-linux-arm64 and bin/cross/weir-linux-armv7
# (GOARM=7) and prints their sizes. With --check, builds each again from
# a copy of the tree in another directory with an empty build cache, and
# fails unless the two are byte-identical: the same commit gives the same
# firmware, wherever and however often it is built.
#
# Environment: VERSION (default: git describe --tags --always --dirty, as
# the Makefile's).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOTOOLCHAIN=go1.27.3

check=0
arches=()
for a in "$@"; do
	case $a in
	--check) check=1 ;;
	arm64 | armv7) arches+=("$a") ;;
	*)
		echo "cross: unknown argument '$a' (expected --check, arm64, armv7)" >&2
		exit 2
		;;
	esac
done
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armv7)
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}

# build SRC OUT ARCH: one static build of cmd/weir.
build() {
	local src=$1 out=$2 arch=$3 goarch goarm=
	case $arch in
	arm64) goarch=arm64 ;;
	armv7) goarch=arm goarm=7 ;;
	esac
	(cd "$src" && CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm go build -trimpath -buildvcs=false \
		-ldflags "-s -w -X main.version=$VERSION" -o "$out" ./cmd/weir)
}

mkdir -p bin/cross
for a in "${arches[@]}"; do
	t0=$SECONDS
	build . "$PWD/bin/cross/weir-linux-$a" "$a"
	size=$(stat -c %s "bin/cross/weir-linux-$a")
	printf 'cross: bin/cross/weir-linux-%-6s %9d bytes (%.1f MiB), stripped, static, version %s (%d s)\n' \
		"$a" "$size" "$(awk -v s="$size" 'BEGIN { print s / 1048576 }')" "$VERSION" $((SECONDS - t0))
done
[ "$check" = 1 ] || exit 0

# The second build: the tracked and untracked (not ignored) files of the
# working tree, so a checkout with changes compares what it holds, copied
# to another path; an empty GOCACHE, so nothing is reused from the first.
work=$(mktemp -d /tmp/weir-cross-check.XXXXXX)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/cache"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
	[ -e "$f" ] && printf '%s\0' "$f"
done | tar -c --null -T - | tar -x -C "$work/src"
failed=0
for a in "${arches[@]}"; do
	t0=$SECONDS
	GOCACHE=$work/cache build "$work/src" "$work/weir-linux-$a" "$a"
	if cmp -s "bin/cross/weir-linux-$a" "$work/weir-linux-$a"; then
		printf 'cross: reproducible: a second build of %s, from %s with an empty build cache, is byte-identical (sha256 %s; %d s)\n' \
			"$a" "$work/src" "$(sha256sum <"$work/weir-linux-$a" | cut -c1-16)" $((SECONDS - t0))
	else
		echo "cross: NOT reproducible: the second build of $a differs from bin/cross/weir-linux-$a:" >&2
		cmp "bin/cross/weir-linux-$a" "$work/weir-linux-$a" >&2 || true
		failed=1
	fi
done
exit $failed
