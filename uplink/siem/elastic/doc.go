// Package elastic delivers records to Elasticsearch or OpenSearch with
// the _bulk API, in ECS JSON.
//
// Each record is a "create" action with _id gateway:sequence, so a batch
// sent again (its response lost, a connection dropped, another item
// needing a retry) is never indexed twice: what is already there answers
// 409, which counts as held. Per item: 2xx and 409 are held; 429 and 5xx
// are sent again after a back-off; any other 4xx (a mapping error) is
// written to the dead-letter file and counted, never dropped silently. A
// whole request answered 429 or 5xx, or a connection that fails, is sent
// again whole. A batch counts as delivered once every item is held or set
// aside: Elasticsearch acknowledges an item once it is in its translog
// (durable per its index.translog.durability, "request" by default).
//
// It is written on net/http rather than go-elasticsearch's
// esutil.BulkIndexer: the indexer flushes on its own schedule and reports
// items through callbacks, with no way to wait for one batch's outcome
// before moving the spool's mark, and it does not retry single items;
// the _bulk request and response it would wrap are a few dozen lines.
//
// docs/ARCHITECTURE.md: "The life of one record", where outputs branch.
package elastic
