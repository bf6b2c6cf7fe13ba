// Package outputs is the configuration of SIEM outputs (a list item of
// the gateway's outputs key, and the collector's --output files), its
// example, and the building of each output's target from it.
//
// docs/ARCHITECTURE.md: "The life of one record", where outputs branch.
package outputs
