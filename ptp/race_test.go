//go:build race

package ptp

// raceEnabled: the race detector is on, and the lab comparison skips.
const raceEnabled = true
