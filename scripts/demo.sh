#!/usr/bin/env bash
# make demo: a collector and a gateway on this machine, end to end over
# mutual TLS. The gateway tails a log file the demo writes to (rotating it
# once midway); `weir status` shows it live; at the end the demo counts what
# reached the collector's sink.
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
echo
echo "== result"
echo "lines written:            $written"
echo "log records in the sink:  $delivered   ($work/sink.jsonl)"
echo "gateway telemetry records: $telemetry"
echo "one log record as delivered:"
grep '"kind":"log"' "$work/sink.jsonl" | tail -n 1 | sed 's/^/  /'
if [ "$telemetry" -gt 0 ]; then
	echo "one telemetry record as delivered:"
	grep '"kind":"telemetry"' "$work/sink.jsonl" | tail -n 1 | sed 's/^/  /'
fi
echo "logs: $work/gateway.log $work/collector.log"
if [ "$delivered" -lt 1 ]; then
	echo "demo: FAILED: no record reached the collector" >&2
	exit 1
fi
if [ "$delivered" -ne "$written" ]; then
	echo "demo: WARNING: $written lines written but $delivered records delivered" >&2
	exit 1
fi
echo "demo: every line written was delivered end to end, exactly once"
