//go:build race

package spool

// raceEnabled: the race detector is on, and timing-heavy tests skip.
const raceEnabled = true
