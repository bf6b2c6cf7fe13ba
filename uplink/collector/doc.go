// Package collector owns the head-end side of the uplink: a mutual-TLS
// listener that authenticates each gateway by its certificate, dedupes
// records by (gateway, sequence), writes them to a sink, and acks only
// once the sink holds them durably.
package collector
