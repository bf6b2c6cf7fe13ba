// Package fleet owns the head-end's picture of the fleet: per gateway its
// health (worked out from its newest telemetry by fixed rules), the events
// of its strip, its newest telemetry record of each source, and bounded
// time series, all built from the records the collector writes. It does
// not serve them (uplink/collector/ui does) and it never acts on a
// gateway.
//
// What it reads, by source: weir:spool telemetry (backlog records, bytes,
// age of the oldest; evictions; intake held), weir:uplink telemetry per
// endpoint (state, srtt_ms, loss_1m, goodput_bps, reconnects, the running
// total outage_seconds, cert_warning), weir:clock transitions (offset_ns,
// error_bound_ns, from → to), modbus:<bus> telemetry (frame_error_rate_1m,
// state), weir:board tamper alerts (state open/closed), any alert record
// or record of critical severity (the gateway's own alert rule), and the
// quality every record carries (the clock's state and error bound).
// Configuration changes are read from any record carrying config_version
// with config_result (and config_error), the fields the fleet's remote
// configuration is to send; until gateways send them those columns stay
// empty.
//
// Series are per gateway, in two tiers of buckets: 10 s over a day and
// 5 min over a week. Each bucket keeps the sample of largest magnitude
// (the worst RTT, loss, backlog or clock offset in it), or for record
// rates the count. A gateway has at most MaxSeries series, in one file of
// fixed blocks (seriesFileMax, about 1.4 MiB, sparse until written); its
// other state is bounded too (events, endpoints, buses, telemetry sources
// kept, string lengths), so whatever a gateway sends costs at most about
// 75 KiB of memory (5 KiB is typical) and 1.4 MiB of disk, and
// MaxGateways bounds the gateways.
//
// The store is a cache of the sink: fleet.json says how far into the sink
// (or stream) it has taken records; at start the rest is taken again
// (ReplayJSONL), and a store that is lost or damaged is rebuilt from the
// sink's beginning.
//
// "The fleet page" in docs/ARCHITECTURE.md; its bounds in docs/SECURITY.md.
package fleet
