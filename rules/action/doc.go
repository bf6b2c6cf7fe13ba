// Package action runs the local command of an alert: a program and its
// arguments fixed by the configuration (never a shell line, and nothing of
// a record in it), the alert record as JSON on its standard input, a time
// limit after which it is killed, and its output logged. Commands run in
// the background, a few at a time; one that finds every slot taken is
// skipped and counted, so a storm of alerts cannot pile up processes.
//
// The gateway runs it for the actions of rules.actions (docs/ARCHITECTURE.md,
// "Edge detection").
package action
