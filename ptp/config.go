package ptp

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config selects and tunes the clock.
type Config struct {
	Mode     Mode           `mapstructure:"mode" yaml:"mode"`
	Holdover HoldoverConfig `mapstructure:"holdover" yaml:"holdover"`
	LinuxPTP LinuxPTPConfig `mapstructure:"linuxptp" yaml:"linuxptp"`
	Builtin  BuiltinConfig  `mapstructure:"builtin" yaml:"builtin"`
}

// HoldoverConfig says when a synchronised clock stops being trusted as
// locked and how fast its error bound grows afterwards.
type HoldoverConfig struct {
	// OffsetThreshold: an offset from the master larger than this, in
	// absolute value, counts as loss of lock.
	OffsetThreshold time.Duration `mapstructure:"offset_threshold" yaml:"offset_threshold"`
	// FrequencyUncertaintyPPB is how far the local oscillator may drift from
	// the frequency it had when last locked, in parts per billion; the error
	// bound grows by elapsed time × this.
	FrequencyUncertaintyPPB float64 `mapstructure:"frequency_uncertainty_ppb" yaml:"frequency_uncertainty_ppb"`
	// Limit is how long holdover lasts after the last locked sample before
	// the clock is declared free-running with an unknown bound.
	Limit time.Duration `mapstructure:"limit" yaml:"limit"`
}

// DefaultConfig is the system clock, which every board has, with the
// default holdover.
func DefaultConfig() Config {
	return Config{Mode: ModeSystem, Holdover: DefaultHoldover(), LinuxPTP: DefaultLinuxPTP(), Builtin: DefaultBuiltin()}
}

// DefaultHoldover: lock is lost beyond 1 ms of offset (software time
// stamping on a LAN stays within tens of µs); a disciplined board crystal
// is trusted to 1 ppm (1 µs per second) of residual drift; after 15 min
// (a bound of 0.9 ms plus the last locked one) the clock is free-running.
func DefaultHoldover() HoldoverConfig {
	return HoldoverConfig{OffsetThreshold: time.Millisecond, FrequencyUncertaintyPPB: 1000, Limit: 15 * time.Minute}
}

// Validate checks the configuration without I/O; errors name the key.
func (c Config) Validate() error {
	var errs []error
	switch c.Mode {
	case ModeSystem:
	case ModeLinuxPTP:
		if err := c.LinuxPTP.Validate(); err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				errs = append(errs, fmt.Errorf("linuxptp.%w", e))
			}
		}
	case ModeBuiltin:
		if err := c.Builtin.Validate(); err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				errs = append(errs, fmt.Errorf("builtin.%w", e))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("mode: %q is not supported (want system, linuxptp or builtin)", c.Mode))
	}
	if err := c.Holdover.Validate(); err != nil {
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			errs = append(errs, fmt.Errorf("holdover.%w", e))
		}
	}
	return errors.Join(errs...)
}

// Validate checks the holdover settings; errors name the key.
func (h HoldoverConfig) Validate() error {
	var errs []error
	if h.OffsetThreshold <= 0 {
		errs = append(errs, fmt.Errorf("offset_threshold: %s must be positive", h.OffsetThreshold))
	}
	if !(h.FrequencyUncertaintyPPB > 0) || math.IsInf(h.FrequencyUncertaintyPPB, 0) || h.FrequencyUncertaintyPPB > 1e6 {
		errs = append(errs, fmt.Errorf("frequency_uncertainty_ppb: %v must be in (0, 1000000]", h.FrequencyUncertaintyPPB))
	}
	if h.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit: %s must not be negative", h.Limit))
	}
	return errors.Join(errs...)
}
