#!/usr/bin/env bash
# make tour: runs README.md's tour as written, so that it cannot drift.
# Every code block fenced as ```sh tour is taken, in order, and the blocks
# are run as one bash script (errexit, nounset, pipefail; each command
# echoed) in a temporary directory whose bin/ is the checkout's, with the
# substitutions the README states:
#
#   make build    is run in the checkout
#   7443, 9464    become free loopback ports (the collector, the metrics)
#
# It fails on any error, or if the tour has not ended after 5 minutes;
# what the tour started in the background is stopped, and the directory
# (a CA key among its files) removed, either way.
#
#   scripts/readme-tour.sh          run the tour
#   scripts/readme-tour.sh -v       and show its output
#   scripts/readme-tour.sh clean    remove what killed runs left in /tmp
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

verbose=0
[ "${1:-}" = -v ] && verbose=1
if [ "${1:-}" = clean ]; then
	for d in /tmp/weir-tour.*; do
		[ -d "$d" ] || continue
		pid=$(cat "$d/.readme-tour.pid" 2>/dev/null || echo 0)
		if [ "$pid" -gt 0 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
		rm -rf "$d" && echo "removed $d"
	done
	exit 0
fi

work=$(mktemp -d /tmp/weir-tour.XXXXXX)
echo $$ >"$work/.readme-tour.pid"
group=""
cleanup() {
	# The tour's own last line stops what it started; after a failure this
	# does, the whole process group.
	if [ -n "$group" ]; then kill -TERM -- "-$group" 2>/dev/null || true; fi
	sleep 0.2
	if [ -n "$group" ]; then kill -KILL -- "-$group" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

free_port() {
	local p
	for p in $(shuf -i 20000-45000 -n 100); do
		[ "$p" = "${1:-}" ] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	echo "tour: no free port found" >&2
	exit 1
}
collector_port=$(free_port)
metrics_port=$(free_port "$collector_port")

# The blocks, in order.
awk '/^```sh tour[[:space:]]*$/ {on = 1; n++; print "# block " n; next}
	on && /^```[[:space:]]*$/ {on = 0; next}
	on' README.md >"$work/.readme-tour.sh"
blocks=$(grep -c '^# block ' "$work/.readme-tour.sh" || true)
if [ "$blocks" -lt 1 ]; then
	echo "tour: README.md has no \`\`\`sh tour block" >&2
	exit 1
fi

# The substitutions, each of which must apply: if the README changed what
# they replace, this script must change with it.
subst() {
	local what=$1 expr=$2
	if ! grep -q -- "$what" "$work/.readme-tour.sh"; then
		echo "tour: README.md's tour no longer contains '$what', which this script substitutes; update scripts/readme-tour.sh" >&2
		exit 1
	fi
	sed -i -e "$expr" "$work/.readme-tour.sh"
}
subst 'make build' "s|make build|make -s -C '$repo' build|"
subst '7443' "s/\\b7443\\b/$collector_port/g"
subst '9464' "s/\\b9464\\b/$metrics_port/g"

ln -s "$repo/bin" "$work/bin"
echo "tour: running the $blocks tour blocks of README.md in $work (ports $collector_port, $metrics_port)"
# A session of its own, so that everything the tour starts can be found
# and stopped.
(cd "$work" && exec setsid timeout 300 bash -euxo pipefail ./.readme-tour.sh </dev/null >"$work/.readme-tour.log" 2>&1) &
group=$!
rc=0
wait "$group" || rc=$?
if [ $rc -ne 0 ]; then
	if [ $rc -eq 124 ]; then
		echo "tour: FAILED: still running after 5 minutes" >&2
	else
		echo "tour: FAILED (exit $rc); the end of its output:" >&2
	fi
	tail -n 60 "$work/.readme-tour.log" | sed 's/^/  /' >&2
	exit 1
fi
if [ -n "$(cd "$work" && ls -A | grep -v -x -e bin -e .readme-tour.sh -e .readme-tour.log -e .readme-tour.pid)" ]; then
	echo "tour: FAILED: the tour's last line left files behind:" >&2
	(cd "$work" && ls -A | grep -v -x -e bin -e .readme-tour.sh -e .readme-tour.log -e .readme-tour.pid) | sed 's/^/  /' >&2
	exit 1
fi
[ $verbose = 1 ] && cat "$work/.readme-tour.log"
echo "tour: every command of README.md's tour ran as written ($(grep -c '^+ ' "$work/.readme-tour.log") commands)"
