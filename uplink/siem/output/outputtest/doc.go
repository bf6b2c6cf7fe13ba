// Package outputtest runs an output's target the way the gateway does,
// for tests: records in a real spool, a gate, a runner, until the spool
// is acknowledged to its end.
//
// docs/ARCHITECTURE.md: "The life of one record", where outputs branch.
package outputtest
