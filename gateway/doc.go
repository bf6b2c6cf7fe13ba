// Package gateway owns the firmware's assembly: configuration (embedded
// defaults, the YAML file, WEIR_* environment overrides, read against a
// schema that is Config's own types, every problem placed at its line),
// building the pipeline from sources through the clock into the spool and
// out through the uplink, its lifecycle, the admin socket that the CLI's
// diagnostics talk to, and the Prometheus metrics.
//
// The pipeline is a set of parts, each built from its own section
// (parts.go); a reload (reload.go, Gateway.Reload: SIGHUP, or a
// configuration from elsewhere) checks a new configuration whole, then
// replaces only the parts whose section changed. A part that can take
// its section in place implements Reloader instead.
//
// It knows no input's wire format: sources hand it events, it stamps,
// encodes and spools them.
//
// With a board section it also drives the appliance (package board):
// what the LEDs show, a record per opening and closing of the enclosure,
// the RS-485 driver-enable pin for the serial inputs on its line, and the
// health check (health.go) that alone kicks the hardware watchdog and
// systemd's (notify.go).
//
// docs/ARCHITECTURE.md is the map: the layers, the life of one record
// (this package stamps, encodes and spools it: steps 2 to 4) and the
// failure model.
package gateway
