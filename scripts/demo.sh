#!/usr/bin/env bash
# make demo: a collector and a gateway on this machine, end to end over
# mutual TLS. The gateway tails a log file the demo writes to (rotating it
# once midway) and polls a simulated Modbus sensor (weir-sim) on a socat pty
# pair; `weir status` and `weir sensors` show it live; at the end the demo
# counts what reached the collector's sink.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${DEMO_SECONDS:-20}
bin=$PWD/bin
work=$(mktemp -d /tmp/weir-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
	local p
	for p in $(shuf -i 20000-45000 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	echo "demo: no free port found" >&2; exit 1
}
port=$(free_port)

echo "== provisioning a demo PKI in $work/pki"
"$bin/weir-collector" pki init --dir "$work/pki" --name demo
"$bin/weir-collector" pki issue-collector localhost --also 127.0.0.1 --dir "$work/pki"
"$bin/weir-collector" pki issue-gateway demo-gw --dir "$work/pki"

# A simulated Modbus flow meter on one end of a pty pair; the gateway polls
# the other end.
sim_yaml=""
if command -v socat >/dev/null; then
	socat -b 4096 "pty,raw,echo=0,link=$work/tty-gw" "pty,raw,echo=0,link=$work/tty-sim" 2>"$work/socat.log" &
	pids+=($!)
	for _ in $(seq 1 50); do [ -e "$work/tty-gw" ] && [ -e "$work/tty-sim" ] && break; sleep 0.1; done
	echo "== starting weir-sim, a Modbus flow meter (unit 7) on $work/tty-sim"
	"$bin/weir-sim" --device "$work/tty-sim" --unit 7 >"$work/sim.log" 2>&1 &
	pids+=($!)
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

mkdir -p "$work/logs"
cat >"$work/weir.yaml" <<YAML
gateway:
  id: demo-gw
data_dir: $work/data
telemetry_interval: 5s
metrics:
  listen: ""
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

echo "== starting weir-collector on 127.0.0.1:$port (log: $work/collector.log)"
"$bin/weir-collector" run --listen "127.0.0.1:$port" --ca "$work/pki/ca.pem" \
	--cert "$work/pki/collector-localhost.pem" --key "$work/pki/collector-localhost-key.pem" \
	--sink "$work/sink.jsonl" 2>"$work/collector.log" &
pids+=($!)
echo "== starting weir run (log: $work/gateway.log)"
"$bin/weir" run --config "$work/weir.yaml" 2>"$work/gateway.log" &
gw=$!
pids+=($gw)

# The writer: a pump station logging readings, rotated once halfway.
(
	n=0
	end=$((SECONDS + seconds))
	rotated=0
	while [ $SECONDS -lt $end ]; do
		for _ in 1 2 3 4 5; do
			n=$((n + 1))
			printf '%s pump-3 flow=%d.%d m3/h level=%d mm seq=%d\n' "$(date -u +%FT%T.%3NZ)" \
				$((10 + RANDOM % 5)) $((RANDOM % 10)) $((1200 + RANDOM % 50)) "$n" >>"$work/logs/pump.log"
		done
		if [ $rotated = 0 ] && [ $SECONDS -ge $((end - seconds / 2)) ]; then
			mv "$work/logs/pump.log" "$work/logs/pump.log.1"
			rotated=1
		fi
		sleep 0.1
	done
	echo "$n" >"$work/written"
) &
writer=$!
pids+=($writer)

for _ in $(seq 1 50); do [ -S "$work/data/weir.sock" ] && break; sleep 0.1; done
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
	sleep 2
	echo
	echo "== weir status ($(date -u +%T))"
	"$bin/weir" status --config "$work/weir.yaml" || true
	if [ -n "$sim_yaml" ]; then
		echo "== weir sensors"
		"$bin/weir" sensors --config "$work/weir.yaml" || true
	fi
done
wait "$writer"
written=$(cat "$work/written")

# Give the last batch time to be acked, then stop both cleanly.
logs() { grep -c '"kind":"log"' "$work/sink.jsonl" 2>/dev/null || echo 0; }
for _ in $(seq 1 50); do
	got=$(logs)
	[ "$got" -ge "$written" ] && break
	sleep 0.2
done
echo
echo "== final status"
"$bin/weir" status --config "$work/weir.yaml" || true
echo
echo "== weir spool"
"$bin/weir" spool --config "$work/weir.yaml" || true
kill -TERM "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
pids=()

delivered=$(logs)
telemetry=$(grep -c '"kind":"telemetry"' "$work/sink.jsonl" 2>/dev/null || echo 0)
readings=$(grep -c '"kind":"reading"' "$work/sink.jsonl" 2>/dev/null || echo 0)
echo
echo "== result"
echo "lines written:            $written"
echo "log records in the sink:  $delivered   ($work/sink.jsonl)"
echo "gateway telemetry records: $telemetry"
echo "Modbus sensor readings:   $readings"
echo "one log record as delivered:"
grep '"kind":"log"' "$work/sink.jsonl" | tail -n 1 | sed 's/^/  /'
if [ "$telemetry" -gt 0 ]; then
	echo "one telemetry record as delivered:"
	grep '"kind":"telemetry"' "$work/sink.jsonl" | tail -n 1 | sed 's/^/  /'
fi
if [ "$readings" -gt 0 ]; then
	echo "one sensor reading as delivered:"
	grep '"kind":"reading"' "$work/sink.jsonl" | tail -n 1 | sed 's/^/  /'
fi
echo "logs: $work/gateway.log $work/collector.log"
if [ -n "$sim_yaml" ] && [ "$readings" -lt 1 ]; then
	echo "demo: FAILED: no sensor reading reached the collector" >&2
	exit 1
fi
if [ "$delivered" -lt 1 ]; then
	echo "demo: FAILED: no record reached the collector" >&2
	exit 1
fi
if [ "$delivered" -ne "$written" ]; then
	echo "demo: WARNING: $written lines written but $delivered records delivered" >&2
	exit 1
fi
echo "demo: every line written was delivered end to end, exactly once"
