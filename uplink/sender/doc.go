// Package sender owns the gateway side of the uplink: it reads the spool
// from the collector's resume point, sends batches with a window in
// flight, and acks the spool only for what the collector acknowledged.
package sender
