// Package serialtest gives tests real serial lines: pairs of pseudo
// terminals linked by socat. It is test equipment (docs/ARCHITECTURE.md):
// real peers for the sensors' integration tests.
package serialtest
