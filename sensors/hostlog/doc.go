// Package hostlog owns the gateway's host-log inputs: what the board's own
// operating system and applications write, as opposed to field sensors.
//
// Today it tails files: one or more globs, followed line by line across
// rename rotation and truncation, each line a record of kind log. A file's
// read position is handed to the Sink with the records it produced, so the
// gateway commits both in one spool transaction and a crash neither loses
// nor repeats a line.
//
// Later it also owns syslog intake (UDP, TCP, TLS), the kernel audit log
// and file integrity monitoring.
package hostlog
