// Package hec delivers records to Splunk's HTTP Event Collector
// (/services/collector/event, "Authorization: Splunk <token>"), batched
// and optionally gzipped, each record an event whose body is its
// encoding (ECS JSON as an object, the text formats as a string) with
// the indexed fields weir_id (gateway:sequence), weir_gateway and
// weir_seq.
//
// With indexer acknowledgement (ack: true, the token's "Enable indexer
// acknowledgement") a batch counts as delivered only once Splunk says
// its ackId is indexed (/services/collector/ack on this output's
// channel); without it, once HEC answered 200, which means received, not
// indexed. HEC has no idempotent write: a batch whose acknowledgement
// never comes (ack_timeout) or whose answer is lost is sent again, and
// its records may then be indexed twice; each carries weir_id, so a
// search can tell (| dedup weir_id). 429 and 5xx answers and failed
// connections are retried with back-off; 400 (an event HEC will never
// take) sends the batch's records one by one, and the ones refused alone
// go to the dead-letter file, counted (should HEC have indexed the
// events before the refused one, as its "invalid-event-number" allows,
// those are indexed again by the one-by-one resend); 401 and 403 are retried too (a
// token is being fixed), never dropped.
//
// docs/ARCHITECTURE.md: "The life of one record", where outputs branch.
package hec
