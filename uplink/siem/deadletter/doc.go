// Package deadletter keeps the records an output's target refused for
// good (an Elasticsearch mapping error, a Splunk HEC event it will never
// take): one JSON line each, fsynced before the output moves on, so a
// refused record is set aside and counted, never dropped silently.
//
// docs/ARCHITECTURE.md: "The life of one record", where outputs branch.
package deadletter
