// Package match owns Weir's record matcher: which records a rule, a
// correlation or a processor applies to, written in the configuration as
// a Spec (record kind, source, severity, priority, host, message, typed
// fields compared as text, by prefix, by regular expression or as
// numbers, and all/any/not of nested Specs) and compiled once into a
// Matcher.
//
// A Matcher is immutable and safe for concurrent use; Match allocates
// nothing, so it can sit on every record's path (the rules engine runs
// every record through every rule before the spool). Regular expressions
// are RE2 (Go's regexp): matching is linear in the input, whatever the
// pattern, so a hostile line cannot make a rule backtrack.
//
// It imports only package event. docs/ARCHITECTURE.md says where the
// rules engine uses it on a record's path.
package match
