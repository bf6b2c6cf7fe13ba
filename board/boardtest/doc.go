// Package boardtest reads the sim board's pins the way a technician reads
// the LEDs: it watches a pin for a while and names the pattern it showed.
// It is test equipment (docs/ARCHITECTURE.md), never part of the firmware.
package boardtest
