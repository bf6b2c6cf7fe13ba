// Package gateway owns the firmware's assembly: configuration (viper:
// embedded defaults, the YAML file, WEIR_* environment overrides),
// building the pipeline from sources through the clock into the spool and
// out through the uplink, its lifecycle, the admin socket that the CLI's
// diagnostics talk to, and the Prometheus metrics.
//
// It knows no input's wire format: sources hand it events, it stamps,
// encodes and spools them.
package gateway
