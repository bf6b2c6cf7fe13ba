#!/usr/bin/env bash
# Checks the BR2_EXTERNAL tree (buildroot/) against a Buildroot checkout,
# with no download and no build: for every defconfig in buildroot/configs,
#
#   make BR2_EXTERNAL=<repo>/buildroot <name>_defconfig   succeeds,
#   every line of the defconfig is in the resulting .config (Kconfig drops
#     a symbol it does not know, or whose dependencies fail, silently),
#   BR2_PACKAGE_WEIR=y,
#   make weir-show-info lists the package with the version git describes,
#   the build it would run is static and stamped (CGO_ENABLED=0,
#     -X main.version, -trimpath),
#   and the kernel and U-Boot it would download have a hash in this
#     Buildroot (BR2_DOWNLOAD_FORCE_CHECK_HASHES refuses them otherwise).
#
#   scripts/buildroot-check.sh BUILDROOT_DIR [DEFCONFIG...]
#
# How to get a Buildroot checkout on a machine without git access to
# buildroot.org: buildroot/README.md. Environment: KEEP=1 keeps the output
# directories (one per defconfig, printed).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
br=${1:?usage: scripts/buildroot-check.sh BUILDROOT_DIR [DEFCONFIG...]}
shift
br=$(cd "$br" && pwd)
[ -f "$br/Makefile" ] && [ -d "$br/package" ] || { echo "buildroot-check: $br is not a Buildroot tree" >&2; exit 2; }
command -v jq >/dev/null || { echo "buildroot-check: jq is needed (scripts/deps.sh installs it)" >&2; exit 2; }

defconfigs=("$@")
if [ ${#defconfigs[@]} -eq 0 ]; then
	for f in buildroot/configs/*_defconfig; do defconfigs+=("$(basename "$f")"); done
fi
version=$(make -s -C "$br" print-version 2>/dev/null || echo unknown)
want_version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
echo "buildroot-check: Buildroot $version ($br), BR2_EXTERNAL $repo/buildroot, weir $want_version"

out=$(mktemp -d /tmp/weir-buildroot-check.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$out"' EXIT
failed=0
fail() {
	echo "  FAIL: $*"
	failed=1
}

for d in "${defconfigs[@]}"; do
	name=${d%_defconfig}
	o=$out/$name
	echo "== $d"
	if ! make -s -C "$br" BR2_EXTERNAL="$repo/buildroot" O="$o" "$d" >"$o.log" 2>&1; then
		fail "make $d:"
		sed 's/^/    /' "$o.log"
		continue
	fi
	# Every line of the defconfig must be in .config as written; a "not
	# set" line may also be absent (its dependencies make it unset).
	missing=0
	while IFS= read -r line; do
		case $line in
		'' | '#'*' is not set')
			if [[ $line == '# '*' is not set' ]]; then
				sym=${line#\# }
				sym=${sym% is not set}
				if grep -q "^$sym=" "$o/.config"; then
					fail "$d: $sym is set in .config, the defconfig says not"
					missing=1
				fi
			fi
			;;
		'#'*) ;;
		*)
			if ! grep -qxF -- "$line" "$o/.config"; then
				fail "$d: '$line' is not in .config (unknown symbol, or its dependencies are not met): $(grep "^${line%%=*}=" "$o/.config" || echo absent)"
				missing=1
			fi
			;;
		esac
	done <"buildroot/configs/$d"
	[ $missing = 0 ] && echo "  every line of the defconfig is in .config"
	grep -qx 'BR2_PACKAGE_WEIR=y' "$o/.config" && echo "  BR2_PACKAGE_WEIR=y" || fail "$d: BR2_PACKAGE_WEIR is not y"

	if ! info=$(make -s -C "$o" weir-show-info 2>"$o.info.log"); then
		fail "make weir-show-info:"
		sed 's/^/    /' "$o.info.log"
		continue
	fi
	got=$(jq -r '.weir.version // empty' <<<"$info")
	deps=$(jq -r '.weir.dependencies | join(" ")' <<<"$info")
	if [ "$got" = "$want_version" ]; then
		echo "  weir-show-info: weir $got, depends on $deps"
	else
		fail "weir-show-info: version '${got:-none}', want $want_version: $info"
	fi
	vars=$(make -s -C "$o" printvars VARS='WEIR_GO_ENV WEIR_BUILD_OPTS WEIR_SITE WEIR_SITE_METHOD' 2>&1)
	for want in 'WEIR_GO_ENV=CGO_ENABLED=0' "-X main.version=$want_version" '-trimpath' "WEIR_SITE=$repo" 'WEIR_SITE_METHOD=local'; do
		grep -qF -- "$want" <<<"$vars" || fail "printvars: no '$want' in:
$vars"
	done
	echo "  build: $(grep '^WEIR_GO_ENV=' <<<"$vars"), go build $(sed -n 's/^WEIR_BUILD_OPTS=//p' <<<"$vars")"

	# The tarballs a build would download, against the hash files it would
	# check them with: the global patch directory's, then the package's.
	if grep -qx 'BR2_DOWNLOAD_FORCE_CHECK_HASHES=y' "$o/.config"; then
		patchdirs=$(sed -n 's/^BR2_GLOBAL_PATCH_DIR="\(.*\)"$/\1/p' "$o/.config")
		for pkg in linux:LINUX:BR2_LINUX_KERNEL:linux uboot:UBOOT:BR2_TARGET_UBOOT:boot/uboot; do
			IFS=: read -r dir var sym pkgdir <<<"$pkg"
			grep -qx "$sym=y" "$o/.config" || continue
			src=$(make -s -C "$o" printvars VARS="${var}_SOURCE" | sed -n "s/^${var}_SOURCE=//p")
			files=()
			for p in $patchdirs; do
				[[ $p == /* ]] || p=$br/$p
				[ -d "$p/$dir" ] && while IFS= read -r f; do files+=("$f"); done < <(find "$p/$dir" -name '*.hash')
			done
			[ -f "$br/$pkgdir/$dir.hash" ] && files+=("$br/$pkgdir/$dir.hash")
			if [ ${#files[@]} -gt 0 ] && grep -qF -- " $src" "${files[@]}"; then
				echo "  $dir: $src has a hash"
			else
				fail "$dir: no hash for $src in ${files[*]:-any hash file} (BR2_DOWNLOAD_FORCE_CHECK_HASHES: the download would be refused)"
			fi
		done
	fi
	[ "${KEEP:-0}" = 1 ] && echo "  output directory: $o"
done

if [ $failed -ne 0 ]; then
	echo "buildroot-check: FAILED against Buildroot $version"
	exit 1
fi
echo "buildroot-check: ${#defconfigs[@]} defconfigs accepted by Buildroot $version"
