#!/usr/bin/env bash
# make faults: the spool's fault campaign, with the real binaries. Each case
# runs bin/weir tailing a log file it writes numbered lines to, and
# bin/weir-collector as the head-end, injects one fault, lets the gateway
# recover on its own, and counts at the collector's sink:
#
#   written      lines written to the tailed file
#   delivered    distinct lines that reached the sink
#   quarantined  records the gateway reported damaged and set aside
#   duplicated   lines that reached the sink more than once
#   lost         written - delivered - quarantined
#   damaged      records delivered as data with bytes not as written (goal 0)
#   manual       steps a person had to take (a restart after a crash); goal 0
#
# Cases: a full disk (the spool's own backlog, another process, a start on
# a full disk) on a 64 MiB tmpfs, then space returned; each kind of damage
# to a spool file, with half the lines acknowledged before it; SIGKILL
# while the gateway moves a damaged spool aside.
#
#   scripts/faults.sh             every case
#   scripts/faults.sh sst-data    the cases whose name contains the word
#
# Needs root for the tmpfs cases (they are skipped otherwise) and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin
only=${1:-}
lines=${FAULTS_LINES:-20000}
work=$(mktemp -d /tmp/weir-faults.XXXXXX)
pids=()
mounts=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
command -v jq >/dev/null || { echo "faults: jq is needed (scripts/deps.sh installs it)" >&2; exit 1; }

free_port() {
	local p
	for p in $(shuf -i 20000-45000 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	echo "faults: no free port found" >&2; exit 1
}

"$bin/weir-collector" pki init --dir "$work/pki" --name faults >/dev/null
"$bin/weir-collector" pki issue-collector localhost --also 127.0.0.1 --dir "$work/pki" >/dev/null
"$bin/weir-collector" pki issue-gateway faults-gw --dir "$work/pki" >/dev/null

results=()
# case state
dir= data= port= gpid= cpid= manual=0 written=0

# setup NAME [tmpfs]: a fresh case directory; with tmpfs, the data
# directory is a 64 MiB tmpfs.
setup() {
	dir=$work/$1
	mkdir -p "$dir/logs" "$dir/data"
	data=$dir/data
	if [ "${2:-}" = tmpfs ]; then
		mount -t tmpfs -o size=64m,mode=0700 tmpfs "$data"
		mounts+=("$data")
	fi
	port=$(free_port)
	manual=0 written=0 gpid= cpid=
	: >"$dir/logs/app.log"
	cat >"$dir/weir.yaml" <<YAML
gateway: {id: faults-gw}
data_dir: $data
telemetry_interval: 1h
metrics: {listen: ""}
spool: {max_bytes: 256MiB}
inputs:
  files:
    - {name: app, paths: ["$dir/logs/app.log"], start_at: beginning, poll_interval: 50ms}
uplink:
  endpoints: [{address: "127.0.0.1:$port", server_name: localhost}]
  tls: {ca: $work/pki/ca.pem, cert: $work/pki/gateway-faults-gw.pem, key: $work/pki/gateway-faults-gw-key.pem}
  reconnect_min: 200ms
  reconnect_max: 1s
YAML
	chmod 600 "$dir/weir.yaml"
}

start_collector() {
	"$bin/weir-collector" run --listen "127.0.0.1:$port" --ca "$work/pki/ca.pem" \
		--cert "$work/pki/collector-localhost.pem" --key "$work/pki/collector-localhost-key.pem" \
		--sink "$dir/sink.jsonl" 2>>"$dir/collector.log" &
	cpid=$!
	pids+=("$cpid")
}
kill_collector() { kill -9 "$cpid" 2>/dev/null || true; wait "$cpid" 2>/dev/null || true; cpid=; }

start_gateway() {
	"$bin/weir" run --config "$dir/weir.yaml" 2>>"$dir/gateway.log" &
	gpid=$!
	pids+=("$gpid")
}
# wait_up: the admin socket answers (the spool is open)
wait_up() {
	for _ in $(seq 1 300); do
		status >/dev/null 2>&1 && return 0
		alive || return 1
		sleep 0.1
	done
	return 1
}
stop_gateway() { kill -TERM "$gpid" 2>/dev/null || true; wait "$gpid" 2>/dev/null || true; gpid=; }
kill_gateway() { kill -9 "$gpid" 2>/dev/null || true; wait "$gpid" 2>/dev/null || true; gpid=; }
alive() { [ -n "$gpid" ] && kill -0 "$gpid" 2>/dev/null; }
status() { "$bin/weir" status --json --config "$dir/weir.yaml" 2>/dev/null; }

# write N: append N numbered lines of about 200 bytes.
write() {
	awk -v a=$((written + 1)) -v b=$((written + $1)) 'BEGIN {
		pad = sprintf("%170s", ""); gsub(/ /, "x", pad)
		for (i = a; i <= b; i++) printf "line=%d %s\n", i, pad
	}' >>"$dir/logs/app.log"
	written=$((written + $1))
}

# wait_read: the tailer has read the whole file (or the spool holds it back
# for the disk: then return after 3 s of no progress).
wait_read() {
	local size last=-1 same=0 off
	size=$(stat -c %s "$dir/logs/app.log")
	for _ in $(seq 1 600); do
		off=$(status | jq -r '[.sources[]?.files[]?.offset] | add // 0' || echo 0)
		[ "$off" = "$size" ] && { sleep 0.5; return 0; }
		if [ "$off" = "$last" ]; then same=$((same + 1)); else same=0; fi
		[ $same -ge 30 ] && return 0
		last=$off
		alive || return 0 # wait_delivered restarts it, and counts that
		sleep 0.1
	done
}

# sink counts (a line's record is "line=N" and 170 x's: anything else that
# arrived as a log record is a damaged record delivered as data)
count() { [ -f "$dir/sink.jsonl" ] && grep -c "$1" "$dir/sink.jsonl" || true; }
delivered() {
	[ -f "$dir/sink.jsonl" ] || { echo 0; return; }
	{ grep -o '"message":"line=[0-9]*' "$dir/sink.jsonl" || true; } | sort -u | wc -l
}
records() { local n; n=$(count '"message":"line='); echo "${n:-0}"; }
damaged() {
	[ -f "$dir/sink.jsonl" ] || { echo 0; return; }
	{ grep '"message":"line=' "$dir/sink.jsonl" || true; } | { grep -cvE '"message":"line=[0-9]+ x{170}"' || true; }
}
quarantined() {
	local q=0 u
	[ -f "$dir/sink.jsonl" ] || { echo 0; return; }
	q=$({ grep 'damaged records quarantined' "$dir/sink.jsonl" || true; } | jq -s '[.[].fields.records] | add // 0')
	u=$(count '"decode_error"')
	echo $((q + ${u:-0}))
}

# wait_delivered: until every written line is accounted for at the sink
# (delivered or quarantined), or nothing moved for 10 s.
wait_delivered() {
	local last=-1 same=0 d
	for _ in $(seq 1 1200); do
		d=$(($(delivered) + $(quarantined)))
		[ "$d" -ge "$written" ] && { sleep 1; return 0; }
		if [ "$d" = "$last" ]; then same=$((same + 1)); else same=0; fi
		[ $same -ge 100 ] && return 0
		last=$d
		# A gateway that died needs a person to restart it: counted.
		if [ -n "$gpid" ] && ! alive; then
			echo "   gateway died: $(grep -m1 -E 'fatal error|panic' "$dir/gateway.log" || echo "exit")"
			manual=$((manual + 1))
			start_gateway
			wait_up || true
		fi
		sleep 0.1
	done
}

report() {
	local d q r x
	d=$(delivered) q=$(quarantined) r=$(records) x=$(damaged)
	local lost=$((written - d - q))
	[ $lost -lt 0 ] && lost=0
	results+=("$(printf '%-34s %8d %9d %11d %10d %6d %8d %6d' "$1" "$written" "$d" "$q" $((r - d)) "$lost" "$x" "$manual")")
	echo "   $1: written $written, delivered $d, quarantined $q, duplicated $((r - d)), lost $lost, damaged as data $x, manual $manual"
	stop_gateway
	kill_collector
	[ -n "${2:-}" ] && echo "   $2"
	return 0
}

wanted() { [ -z "$only" ] || [[ $1 == *"$only"* ]]; }
# root: this process may mount a tmpfs.
root() {
	local d
	[ "$(id -u)" = 0 ] || return 1
	d=$(mktemp -d)
	if mount -t tmpfs -o size=1m tmpfs "$d" 2>/dev/null; then umount "$d"; rmdir "$d"; return 0; fi
	rmdir "$d"
	return 1
}

# --- full disk -------------------------------------------------------------

if wanted full-disk-own-backlog && root; then
	echo "== full disk: the spool's own backlog (64 MiB tmpfs, max_bytes 256MiB, collector down)"
	setup full-disk-own-backlog tmpfs
	start_gateway; wait_up || true
	write 300000
	wait_read
	held=$(status | jq -r '.spool.disk.held // ""' || true)
	echo "   held: ${held:-NOT HELD}"
	alive || manual=$((manual + 1))
	start_collector
	wait_delivered
	alerts=$(count '"spool: intake')
	report "full disk, own backlog" "critical records at the collector about the hold: $alerts"
fi

if wanted full-disk-other-process && root; then
	echo "== full disk: another process fills it while the gateway runs"
	setup full-disk-other-process tmpfs
	start_gateway; wait_up || true
	write 20000; wait_read
	dd if=/dev/zero of="$data/filler" bs=1M 2>/dev/null || true
	write 20000; wait_read
	st=$(status || echo '{}')
	echo "   disk free $(jq -r .spool.disk.free <<<"$st"), ballast $(jq -r .spool.disk.ballast <<<"$st"), held: $(jq -r '.spool.disk.held // ""' <<<"$st" | cut -c1-60)"
	sleep 2
	alive || { manual=$((manual + 1)); start_gateway; wait_up; }
	rm -f "$data/filler"
	start_collector
	wait_delivered
	report "full disk, another process"
fi

if wanted full-disk-at-start && root; then
	echo "== full disk at start: stopped, disk filled to the last block, started again"
	setup full-disk-at-start tmpfs
	start_gateway; wait_up || true
	write 20000; wait_read
	stop_gateway
	dd if=/dev/zero of="$data/filler" bs=1M 2>/dev/null || true
	start_gateway
	if wait_up; then echo "   opened on a full disk: $(status | jq -r '.spool.disk.held // "not held"' | cut -c1-80 || true)"; else echo "   did not open"; fi
	start_collector
	sleep 3
	rm -f "$data/filler"
	write 20000
	wait_delivered
	report "full disk at start"
fi

# --- damage ----------------------------------------------------------------

# largest FILE-GLOB: the biggest file matching in the spool directory
largest() { ls -S "$data"/spool/$1 2>/dev/null | head -n 1; }
# junk FILE OFFSET: 16 bytes overwritten (a negative offset counts from the end)
junk() {
	local f=$1 off=$2 size
	size=$(stat -c %s "$f")
	[ "$off" -lt 0 ] && off=$((size + off))
	[ "$off" -lt 0 ] && off=0
	printf 'sixteen bytes!!!' | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}
damage() {
	local f
	case $1 in
	sst-data) f=$(largest '*.sst'); junk "$f" $(($(stat -c %s "$f") / 2)) ;;
	sst-index) junk "$(largest '*.sst')" -200 ;;
	sst-truncated) f=$(largest '*.sst'); truncate -s $(($(stat -c %s "$f") / 2)) "$f" ;;
	sst-zero-length) truncate -s 0 "$(largest '*.sst')" ;;
	vlog) junk "$(largest '*.vlog')" 0 ;;
	manifest) junk "$data/spool/MANIFEST" 8 ;;
	manifest-truncated) truncate -s 10 "$data/spool/MANIFEST" ;;
	manifest-zero-length) truncate -s 0 "$data/spool/MANIFEST" ;;
	keyregistry) junk "$data/spool/KEYREGISTRY" 0 ;;
	keyregistry-zero-length) truncate -s 0 "$data/spool/KEYREGISTRY" ;;
	discard) junk "$data/spool/DISCARD" 0 ;;
	mem-log) printf 'junk%.0s' $(seq 1 1000) >"$data/spool/00099.mem" ;;
	esac
}

# Half the lines are acknowledged, then the collector is killed, the other
# half spooled, the gateway stopped, one file damaged, and both started.
for kind in sst-data sst-index sst-truncated sst-zero-length vlog manifest manifest-truncated manifest-zero-length \
	keyregistry keyregistry-zero-length discard mem-log; do
	wanted "$kind" || continue
	echo "== damage: $kind"
	setup "damage-$kind"
	start_collector
	start_gateway; wait_up || true
	write $((lines / 2)); wait_delivered
	kill_collector
	write $((lines / 2)); wait_read
	stop_gateway
	damage "$kind"
	start_gateway
	wait_up || true
	start_collector
	wait_delivered
	why=$({ status || true; } | jq -r '.spool.recovered // ""' | grep -o 'moved aside\|positions of [0-9]* sources restored' | paste -sd ';' - || true)
	report "damage: $kind" "${why:+spool: $why}"
done

# --- SIGKILL during the move aside -------------------------------------------

if wanted sigkill-quarantine; then
	echo "== SIGKILL while the gateway moves a damaged spool aside (5 kills, then a normal start)"
	setup sigkill-quarantine
	start_collector
	start_gateway; wait_up || true
	write $((lines / 2)); wait_delivered
	kill_collector
	write $((lines / 2)); wait_read
	stop_gateway
	damage manifest
	for delay in 0.02 0.05 0.1 0.2 0.4; do
		start_gateway
		sleep "$delay"
		kill_gateway
	done
	start_gateway; wait_up || true
	start_collector
	wait_delivered
	moved=$(count 'moved aside')
	report "SIGKILL during quarantine" "records at the collector saying a spool was moved aside: $moved; spools aside: $(ls -d "$data"/spool.corrupt-* 2>/dev/null | wc -l)"
fi

echo
printf '%-34s %8s %9s %11s %10s %6s %8s %6s\n' case written delivered quarantined duplicated lost damaged manual
for r in "${results[@]}"; do echo "$r"; done
echo "(work directory: $work)"
