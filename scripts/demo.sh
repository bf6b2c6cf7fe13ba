#!/usr/bin/env bash
# make demo: a collector and a gateway on this machine, end to end over
# mutual TLS. The gateway tails a log file the demo writes to (rotating it
# every 20 s) and polls a simulated Modbus flow meter (weir-sim) on a socat
# pty pair. As root, a PTP grandmaster (ptp4l) runs in a network namespace
# and the gateway's built-in PTP slave follows it over a veth pair, so
# records carry a locked clock and its error bound; otherwise the clock is
# free-running and the screen says why.
#
# `weir top` shows it all live until Ctrl-C (or DEMO_SECONDS, if set); then
# the demo counts what reached the collector's sink, prints a summary and
# removes its temporary directory, CA key included (KEEP=1 keeps it).
#
#   scripts/demo.sh          the demo
#   scripts/demo.sh clean    remove what crashed or KEEP=1 demos left
#                            (/tmp/weir-demo.*, weir-demo-* namespaces)
set -euo pipefail
cd "$(dirname "$0")/.."

# clean removes the leftovers of demos whose process is gone: a running
# demo's directory and namespace stay.
clean() {
	local d pid ns
	for d in /tmp/weir-demo.*; do
		[ -d "$d" ] || continue
		pid=$(cat "$d/demo.pid" 2>/dev/null || echo 0)
		if [ "$pid" -gt 0 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
		rm -rf "$d" && echo "removed $d"
	done
	if command -v ip >/dev/null && [ "$(id -u)" = 0 ]; then
		for ns in $(ip netns list 2>/dev/null | awk '/^weir-demo-[0-9]+/ {print $1}'); do
			pid=${ns#weir-demo-}
			if kill -0 "$pid" 2>/dev/null; then continue; fi
			ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
			ip netns del "$ns" && echo "removed network namespace $ns"
		done
	fi
}
if [ "${1:-}" = clean ]; then
	clean
	exit 0
fi

seconds=${DEMO_SECONDS:-0} # 0: until Ctrl-C
case $seconds in '' | *[!0-9]*)
	echo "demo: DEMO_SECONDS=$seconds: want a whole number of seconds (0: until Ctrl-C)" >&2
	exit 2
	;;
esac
bin=$PWD/bin
work=$(mktemp -d /tmp/weir-demo.XXXXXX)
echo $$ >"$work/demo.pid"
pids=()
ns=""
cleanup() {
	trap - INT TERM
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	if [ -n "$ns" ]; then
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		echo "KEEP=1: kept $work (make clean removes it)"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Each process runs in a session of its own (setsid): the terminal's
# Ctrl-C is for the live view, and the gateway and collector must still
# answer for the summary after it.
start() {
	local log=$1
	shift
	setsid "$@" >"$work/$log" 2>&1 </dev/null &
	pids+=($!)
}

free_port() {
	local p
	for p in $(shuf -i 20000-45000 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	echo "demo: no free port found" >&2
	exit 1
}
port=$(free_port)

echo "== provisioning a demo PKI in $work/pki (removed at the end)"
"$bin/weir-collector" pki init --dir "$work/pki" --name demo >/dev/null
"$bin/weir-collector" pki issue-collector localhost --also 127.0.0.1 --dir "$work/pki" >/dev/null
"$bin/weir-collector" pki issue-gateway demo-gw --dir "$work/pki" >/dev/null

# A simulated Modbus flow meter on one end of a pty pair; the gateway polls
# the other end.
sim_yaml=""
if command -v socat >/dev/null; then
	start socat.log socat -b 4096 "pty,raw,echo=0,link=$work/tty-gw" "pty,raw,echo=0,link=$work/tty-sim"
	for _ in $(seq 1 50); do [ -e "$work/tty-gw" ] && [ -e "$work/tty-sim" ] && break; sleep 0.1; done
	echo "== starting weir-sim, a Modbus flow meter (unit 7) on $work/tty-sim"
	start sim.log "$bin/weir-sim" --device "$work/tty-sim" --unit 7
	sim_yaml="  modbus:
    buses:
      - {name: rs485-1, serial: {device: $work/tty-gw, baud: 19200}, timeout: 500ms}
    devices:
      - name: flow-meter
        bus: rs485-1
        unit: 7
        interval: 1s
        registers:
          - {name: flow, register: holding, address: 0, type: float32, unit: m3/h}
          - {name: level, register: holding, address: 2, type: uint16, unit: mm}
          - {name: volume, register: holding, address: 3, type: uint32, order: CDAB, unit: m3}
          - {name: status, register: holding, address: 5, type: bitfield, bits: [{bit: 0, name: running}]}
          - {name: pump, register: coil, address: 0}"
else
	echo "== socat not installed: no simulated Modbus sensor (scripts/deps.sh installs it)"
fi

# The clock: a ptp4l grandmaster in a network namespace, joined to this
# one by a veth pair; the gateway's built-in slave follows it on its end.
# Both read the one system clock, so the offsets are the link's and the
# time stamping's; Weir's slave steers only a clock of its own.
clock_yaml="clock: {mode: system}"
clock_why=""
if [ "$(id -u)" != 0 ]; then
	clock_why="not root, so no PTP grandmaster in a network namespace"
elif ! command -v ptp4l >/dev/null || ! command -v ip >/dev/null; then
	clock_why="no ptp4l or ip (scripts/deps.sh installs them)"
else
	ns=weir-demo-$$
	veth=wdemo$$
	net=169.254.$(($$ % 250 + 1))
	if ip netns add "$ns" 2>"$work/netns.log" &&
		ip link add "$veth" type veth peer name ptp0 netns "$ns" 2>>"$work/netns.log" &&
		ip addr add "$net.1/30" dev "$veth" && ip link set "$veth" up &&
		ip -n "$ns" addr add "$net.2/30" dev ptp0 && ip -n "$ns" link set ptp0 up && ip -n "$ns" link set lo up; then
		cat >"$work/ptp4l.conf" <<CONF
[global]
network_transport UDPv4
delay_mechanism E2E
time_stamping software
priority1 1
logSyncInterval -2
logAnnounceInterval -1
uds_address $work/ptp4l.sock
CONF
		echo "== starting a PTP grandmaster: ptp4l in network namespace $ns, on $veth's peer"
		start ptp4l.log ip netns exec "$ns" ptp4l -f "$work/ptp4l.conf" -i ptp0 -S -m -q
		clock_yaml="clock:
  mode: builtin
  builtin: {interface: $veth}"
	else
		clock_why="no network namespace: $(head -n 1 "$work/netns.log" | cut -c 1-50)"
		ip netns del "$ns" 2>/dev/null || true
		ns=""
	fi
fi

mkdir -p "$work/logs"
cat >"$work/weir.yaml" <<YAML
gateway:
  id: demo-gw
data_dir: $work/data
telemetry_interval: 10s
metrics:
  listen: ""
$clock_yaml
inputs:
  files:
    - name: pump-station
      paths: ["$work/logs/*.log"]
      start_at: beginning
      poll_interval: 100ms
$sim_yaml
uplink:
  endpoints:
    - address: 127.0.0.1:$port
      server_name: localhost
  tls:
    ca: $work/pki/ca.pem
    cert: $work/pki/gateway-demo-gw.pem
    key: $work/pki/gateway-demo-gw-key.pem
  reconnect_max: 2s
YAML
chmod 600 "$work/weir.yaml"

echo "== starting weir-collector on 127.0.0.1:$port"
start collector.log "$bin/weir-collector" run --listen "127.0.0.1:$port" --ca "$work/pki/ca.pem" \
	--cert "$work/pki/collector-localhost.pem" --key "$work/pki/collector-localhost-key.pem" \
	--sink "$work/sink.jsonl"
echo "== starting weir run"
start gateway.log "$bin/weir" run --config "$work/weir.yaml"

# The writer: a pump station logging five readings every 100 ms, its log
# rotated every 20 s.
writer() {
	local n=0 r=1 next=$((SECONDS + 20))
	while :; do
		for _ in 1 2 3 4 5; do
			n=$((n + 1))
			printf '%s pump-3 flow=%d.%d m3/h level=%d mm seq=%d\n' "$(date -u +%FT%T.%3NZ)" \
				$((10 + RANDOM % 5)) $((RANDOM % 10)) $((1200 + RANDOM % 50)) "$n" >>"$work/logs/pump.log"
		done
		if [ $SECONDS -ge $next ]; then
			mv "$work/logs/pump.log" "$work/logs/pump.log.$r"
			r=$((r + 1)) next=$((SECONDS + 20))
		fi
		sleep 0.1
	done
}
for _ in $(seq 1 100); do [ -S "$work/data/weir.sock" ] && break; sleep 0.1; done
if ! [ -S "$work/data/weir.sock" ]; then
	echo "demo: FAILED: the gateway did not start; its log:" >&2
	cat "$work/gateway.log" >&2
	exit 1
fi
writer &
pids+=($!)
started=$SECONDS

# The live view, until Ctrl-C (which only ends the view) or DEMO_SECONDS.
titles=(--title "make demo: Ctrl-C (or DEMO_SECONDS) ends it with a summary")
if [ -n "$clock_why" ]; then
	titles+=(--title "clock free-running: $clock_why")
fi
interval=1s
[ -t 1 ] || interval=5s
trap 'true' INT
"$bin/weir" top --config "$work/weir.yaml" --interval "$interval" --for "${seconds}s" "${titles[@]}" || true
trap 'exit 130' INT
ran=$((SECONDS - started))

# Stop writing, give the last batch time to be acked, then stop the
# gateway and the collector and count what reached the sink.
kill -TERM "${pids[-1]}" 2>/dev/null || true
wait "${pids[-1]}" 2>/dev/null || true
unset 'pids[-1]'
written=$(cat "$work"/logs/* | wc -l)
logs() { grep -c '"kind":"log"' "$work/sink.jsonl" 2>/dev/null || true; }
for _ in $(seq 1 100); do
	[ "$(logs)" -ge "$written" ] && break
	sleep 0.1
done
clock_now=$("$bin/weir" ptp --config "$work/weir.yaml" 2>/dev/null | awk '$1 == "state" {s=$2} $1 == "error_bound" {b=$2} END {print s ", error bound " b}')
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
pids=()

sink=$work/sink.jsonl
count() { jq -c "select(.kind == \"$1\")" "$sink" 2>/dev/null | wc -l; }
delivered=$(count log)
readings=$(count reading)
telemetry=$(count telemetry)
# Each line carries seq=N: every N from 1 to the lines written, once.
dupes=$(jq -r 'select(.kind == "log") | .message | capture("seq=(?<n>[0-9]+)").n' "$sink" | sort -n | uniq -d | wc -l)
missing=$(comm -23 <(seq 1 "$written" | sort) <(jq -r 'select(.kind == "log") | .message | capture("seq=(?<n>[0-9]+)").n' "$sink" | sort -u) | wc -l)

# record prints the last delivered record of a kind within 80 columns,
# a field to a line.
record() {
	jq -c --arg kind "$1" 'select(.kind == $kind)' "$sink" | tail -n 1 | jq -r '
		def span: if . == null then "unknown" elif . >= 1000000 then "\((. / 10000 | round) / 100)ms"
			elif . >= 1000 then "\((. / 10 | round) / 100)µs" else "\(.)ns" end;
		["time", "\(.time), \(.time_quality.source) clock \(.time_quality.state), error bound \(.time_quality.error_bound_ns | span)"],
		["source", "\(.source), kind \(.kind)\(if .checksum then ", checksum \(.checksum)" else "" end), seq \(.seq)"],
		(if .message and .kind == "log" then ["message", .message] else empty end),
		["fields", ([.fields // {} | to_entries[] | select(.key != "fingerprint") | "\(.key)=\(.value)"] | join(" "))]
		| @tsv' | while IFS=$'\t' read -r key value; do
		fold -s -w 68 <<<"$value" | sed "1s/^/  $(printf '%-8s' "$key") /; 2,\$s/^/           /"
	done
}

echo
echo "== make demo: summary after ${ran}s"
printf '%-38s %s\n' "lines written to the pump-station log" "$written"
printf '%-38s %s\n' "log records in the collector's sink" "$delivered ($missing missing, $dupes twice)"
printf '%-38s %s\n' "Modbus readings in the sink" "$readings"
printf '%-38s %s\n' "telemetry records in the sink" "$telemetry"
if [ -n "$clock_why" ]; then
	printf '%-38s %s\n' "clock" "free-running"
	echo "  ($clock_why)"
else
	printf '%-38s %s\n' "clock (PTP, built-in slave)" "$clock_now"
fi
echo "the last log record as delivered:"
record log
if [ "$readings" -gt 0 ]; then
	echo "the last Modbus reading as delivered:"
	record reading
fi
status=0
if [ -n "$sim_yaml" ] && [ "$readings" -lt 1 ]; then
	echo "demo: FAILED: no sensor reading reached the collector (logs in $work; KEEP=1 keeps them)" >&2
	status=1
fi
if [ "$delivered" -lt 1 ] || [ "$missing" -gt 0 ] || [ "$dupes" -gt 0 ]; then
	echo "demo: FAILED: $written lines written, $delivered delivered, $missing missing, $dupes twice" >&2
	status=1
fi
[ $status = 0 ] && echo "demo: every line written was delivered end to end, exactly once"
exit $status
