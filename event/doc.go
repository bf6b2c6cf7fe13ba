// Package event owns Weir's record: the one type every input produces and
// every output consumes, and its compact, versioned binary encoding.
//
// The spool and the uplink move encoded records as opaque bytes; only the
// gateway (which builds them) and the collector (which writes them to a
// sink) decode them. The sequence number is not part of the encoding: the
// spool assigns it when the record is stored, and the uplink carries it
// beside the bytes.
//
// This package imports nothing else of this module.
//
// docs/ARCHITECTURE.md follows a record from its source to the collector
// ("The life of one record"); this package is its steps 3 and 7.
package event
