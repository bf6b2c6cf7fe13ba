//go:build !race

package ptp

const raceEnabled = false
