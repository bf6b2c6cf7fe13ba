package console

import (
	"errors"
	"fmt"
	"time"

	"github.com/weirgw/weir/event"
)

// Config is the console: section of the gateway configuration.
type Config struct {
	// User is the one login name the console knows.
	User string `mapstructure:"user" yaml:"user"`
	// PasswordHash is User's password as `weir passwd` prints it: argon2id
	// in PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash) or
	// bcrypt ($2b$...). Empty: the console refuses to start. A secret:
	// redacted wherever the configuration is printed.
	PasswordHash string `mapstructure:"password_hash" yaml:"password_hash"`
	// MaxFailures failed logins in a row lock the console for Lockout.
	MaxFailures int           `mapstructure:"max_failures" yaml:"max_failures"`
	Lockout     time.Duration `mapstructure:"lockout" yaml:"lockout"`
	// FailureDelay is the wait after the first failed login; it doubles
	// with each further one.
	FailureDelay time.Duration `mapstructure:"failure_delay" yaml:"failure_delay"`
	// IdleTimeout ends a session (logged in or not) with no key pressed
	// for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout" yaml:"idle_timeout"`
}

// DefaultConfig is what gateway/default.yaml gives.
func DefaultConfig() Config {
	return Config{User: "technician", MaxFailures: 5, Lockout: 15 * time.Minute,
		FailureDelay: time.Second, IdleTimeout: 10 * time.Minute}
}

// Bounds Validate enforces.
const (
	MaxMaxFailures  = 100
	MaxLockout      = 24 * time.Hour
	MaxFailureDelay = time.Minute
	MinIdleTimeout  = time.Second
	MaxIdleTimeout  = 24 * time.Hour
	maxUserLen      = 32
)

// Validate checks the section without I/O; errors name the key and never
// quote the hash.
func (c Config) Validate() error {
	var errs []error
	if err := checkUser(c.User); err != nil {
		errs = append(errs, fmt.Errorf("user: %w", err))
	}
	if c.PasswordHash != "" {
		if _, err := ParseHash(c.PasswordHash); err != nil {
			errs = append(errs, fmt.Errorf("password_hash: %w (make one with weir passwd)", err))
		}
	}
	if c.MaxFailures < 1 || c.MaxFailures > MaxMaxFailures {
		errs = append(errs, fmt.Errorf("max_failures: %d out of range 1..%d", c.MaxFailures, MaxMaxFailures))
	}
	if c.Lockout < time.Second || c.Lockout > MaxLockout {
		errs = append(errs, fmt.Errorf("lockout: %s out of range 1s..24h", c.Lockout))
	}
	if c.FailureDelay < 0 || c.FailureDelay > MaxFailureDelay {
		errs = append(errs, fmt.Errorf("failure_delay: %s out of range 0s..1m", c.FailureDelay))
	}
	if c.IdleTimeout < MinIdleTimeout || c.IdleTimeout > MaxIdleTimeout {
		errs = append(errs, fmt.Errorf("idle_timeout: %s out of range 1s..24h", c.IdleTimeout))
	}
	return errors.Join(errs...)
}

// checkUser keeps the login name to what reads the same in every sink
// and on every terminal.
func checkUser(u string) error {
	if u == "" {
		return errors.New("empty")
	}
	if len(u) > maxUserLen {
		return fmt.Errorf("%q is longer than %d", u, maxUserLen)
	}
	if event.CheckSourceName(u) != nil {
		return fmt.Errorf("%q may hold only letters, digits, '.', '_' and '-'", u)
	}
	return nil
}
