#!/usr/bin/env bash
# Cross-builds every package's unit tests for arm64 and armv7 (static,
# CGO_ENABLED=0) and runs them under qemu-user. Run by `make test-arm`.
#
#   scripts/test-arm.sh                 both architectures, every package
#   scripts/test-arm.sh armv7           one architecture (arm64 | armv7)
#   scripts/test-arm.sh arm64 ./spool   some packages only
#
# The emulators (qemu-aarch64-static, qemu-arm-static from Debian's
# qemu-user-static; `scripts/deps.sh arm` installs it) are invoked directly,
# so binfmt_misc need not be registered. Each test binary runs from its
# package's source directory, so testdata/ resolves, with -test.short (the
# end-to-end tests that build binaries skip) and a per-package timeout.
#
# Environment:
#   ARM_PKG_TIMEOUT  per-package timeout (default 10m): -test.timeout, plus a
#                    hard kill 30 s later should the emulator wedge
#   ARM_TEST_FLAGS   extra test flags, e.g. "-test.v -test.run TestAppend"
#   ARM_LONG=1       run without -test.short (the long tests too)
#   ARM_OUT          where the test binaries and logs go (default bin/arm)
#   QEMU_RESERVED_VA passed through to qemu (guest address space size)
#
# Prints a per-architecture, per-package PASS/FAIL summary; exits 1 if any
# package fails to build or its tests fail.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOTOOLCHAIN=go1.27.3

timeout_go=${ARM_PKG_TIMEOUT:-10m}
out=${ARM_OUT:-bin/arm}
read -r -a extra <<<"${ARM_TEST_FLAGS:-}"
short=-test.short
[ "${ARM_LONG:-0}" = 1 ] && short=

arches=()
pkgs=()
for a in "$@"; do
	case $a in
	arm64 | armv7) arches+=("$a") ;;
	./* | github.com/*) pkgs+=("$a") ;;
	*)
		echo "test-arm: unknown argument '$a' (architectures: arm64, armv7; packages: ./path/...)" >&2
		exit 2
		;;
	esac
done
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armv7)
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

# GOARCH, GOARM and emulator per architecture.
arch_env() {
	case $1 in
	arm64) echo "GOARCH=arm64 qemu-aarch64-static" ;;
	armv7) echo "GOARCH=arm GOARM=7 qemu-arm-static" ;;
	esac
}

for a in "${arches[@]}"; do
	q=$(arch_env "$a" | awk '{print $NF}')
	if ! command -v "$q" >/dev/null 2>&1; then
		echo "test-arm: $q not found; run 'scripts/deps.sh arm' as root (Debian package qemu-user-static)" >&2
		exit 1
	fi
done

# The packages that have tests: import path and source directory.
if ! list=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' "${pkgs[@]}"); then
	echo "test-arm: go list ${pkgs[*]} failed" >&2
	exit 1
fi
mapfile -t listed < <(grep . <<<"$list")
if [ ${#listed[@]} -eq 0 ]; then
	echo "test-arm: no packages with tests in ${pkgs[*]}" >&2
	exit 1
fi
module=$(go list -m)

# Hard kill: -test.timeout plus 30 s, in seconds.
secs() {
	local t=$1 n
	case $t in
	*m) n=${t%m}; echo $((n * 60)) ;;
	*s) n=${t%s}; echo "$n" ;;
	*h) n=${t%h}; echo $((n * 3600)) ;;
	*) echo "$t" ;;
	esac
}
hard=$(($(secs "$timeout_go") + 30))

results=()   # "arch pkg STATUS seconds"
failed=0
start_all=$SECONDS

for a in "${arches[@]}"; do
	read -r -a envs <<<"$(arch_env "$a")"
	qemu=${envs[-1]}
	unset 'envs[-1]'
	dir="$out/$a"
	rm -rf "$dir"
	mkdir -p "$dir"
	abs=$(cd "$dir" && pwd)

	echo "== $a: building test binaries (${envs[*]} CGO_ENABLED=0) into $dir"
	t0=$SECONDS
	declare -A built=()
	for l in "${listed[@]}"; do
		pkg=${l%% *}
		rel=${pkg#"$module"}
		rel=${rel#/}
		name=${rel:-root}
		name=${name//\//-}
		# `go test -c` caches the build, so building one package at a time
		# costs little more than one go invocation would.
		if env "${envs[@]}" GOOS=linux CGO_ENABLED=0 go test -c -trimpath \
			-o "$abs/$name.test" "$pkg" >"$abs/$name.build.log" 2>&1; then
			built[$pkg]=$name
		else
			echo "   $pkg: BUILD FAILED"
			sed 's/^/     /' "$abs/$name.build.log"
		fi
	done
	echo "   built in $((SECONDS - t0)) s"

	echo "== $a: running under $qemu (${short:-long tests too}, timeout $timeout_go per package)"
	for l in "${listed[@]}"; do
		pkg=${l%% *}
		src=${l#* }
		name=${built[$pkg]:-}
		if [ -z "$name" ]; then
			results+=("$a $pkg BUILD-FAIL -")
			failed=1
			continue
		fi
		if [ ! -x "$abs/$name.test" ]; then
			# `go test -c` writes nothing for a package whose test files
			# hold no tests; treat it as a pass with nothing run.
			results+=("$a $pkg NO-TESTS -")
			continue
		fi
		log="$abs/$name.log"
		t0=$SECONDS
		(cd "$src" && timeout -k 5 "$hard" "$qemu" "$abs/$name.test" \
			${short:+"$short"} -test.count=1 -test.timeout="$timeout_go" "${extra[@]}") >"$log" 2>&1
		rc=$?
		dt=$((SECONDS - t0))
		if [ $rc -eq 0 ]; then
			status=PASS
		elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			status=TIMEOUT
		else
			status=FAIL
		fi
		printf '   %-8s %-44s %4d s\n' "$status" "$pkg" "$dt"
		if [ "$status" != PASS ]; then
			failed=1
			echo "   ---- $a $pkg (exit $rc), last 60 lines of $log:"
			tail -n 60 "$log" | sed 's/^/     /'
			echo "   ----"
		fi
		results+=("$a $pkg $status $dt")
	done
	unset built
done

echo
echo "== test-arm summary ($((SECONDS - start_all)) s; logs and binaries in $out/<arch>/)"
printf '%-6s %-46s %-10s %s\n' arch package result seconds
for r in "${results[@]}"; do
	read -r a p s d <<<"$r"
	printf '%-6s %-46s %-10s %s\n' "$a" "${p#"$module"/}" "$s" "$d"
done
if [ $failed -ne 0 ]; then
	echo "test-arm: FAILED"
	exit 1
fi
echo "test-arm: all packages passed"
