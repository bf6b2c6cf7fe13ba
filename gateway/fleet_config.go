package gateway

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

// FleetConfig is remote configuration: bundles from the head-end, signed
// by a fleet key, merged over this file (README, "Fleet configuration").
// It is off while Keys is empty.
type FleetConfig struct {
	// Keys are the fleet public keys a bundle must be signed by
	// ("ed25519:<base64>", as `weir-collector pki fleet-key` prints it).
	Keys []string `mapstructure:"keys" yaml:"keys"`
	// Labels describe this gateway to the target selector of a bundle.
	Labels map[string]string `mapstructure:"labels" yaml:"labels"`
	// Protected are keys no bundle may set, besides those always
	// protected (alwaysProtected).
	Protected []string `mapstructure:"protected" yaml:"protected"`
	// HealthTimeout: once a bundle is applied, the uplink must deliver a
	// record and every source run within this, or the configuration
	// before it is restored.
	HealthTimeout time.Duration `mapstructure:"health_timeout" yaml:"health_timeout"`
}

// alwaysProtected are keys no bundle may ever set, whatever the file
// says: the fleet section (its keys first: a bundle must not choose who
// signs the next one), the gateway's identity (its id and its uplink
// certificate, key and CA: a stolen fleet key must not be able to point a
// site at another PKI), the console's password, and the data directory
// (where the bundle in force itself is kept).
var alwaysProtected = []string{"fleet", "gateway.id", "data_dir", "uplink.tls", "console.password_hash"}

// Bounds on labels: the protocol carries at most uplink.MaxConfigLabels.
const (
	maxLabels   = uplink.MaxConfigLabels
	maxLabelLen = 64
)

// Enabled says whether bundles are taken at all.
func (c FleetConfig) Enabled() bool { return len(c.Keys) > 0 }

// Validate checks the section without I/O; errors name the key.
func (c FleetConfig) Validate() error {
	var errs []error
	for i, k := range c.Keys {
		if _, err := pki.ParseFleetKey(k); err != nil {
			errs = append(errs, fmt.Errorf("keys[%d]: %w", i, err))
		}
	}
	if len(c.Labels) > maxLabels {
		errs = append(errs, fmt.Errorf("labels: %d labels, more than %d", len(c.Labels), maxLabels))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		v := c.Labels[k]
		switch {
		case k == "" || len(k) > maxLabelLen || strings.ContainsAny(k, "=, \t\n"):
			errs = append(errs, fmt.Errorf("labels: %q: a label's name is 1 to %d characters without '=', ',' or spaces", clipText(k, 40), maxLabelLen))
		case v == "" || len(v) > maxLabelLen || strings.ContainsAny(v, ", \t\n"):
			errs = append(errs, fmt.Errorf("labels.%s: %q: a label's value is 1 to %d characters without ',' or spaces", k, clipText(v, 40), maxLabelLen))
		}
	}
	known := schemaPaths(reflect.TypeFor[Config]())
	for i, p := range c.Protected {
		if !slices.Contains(known, schemaPath(p)) {
			errs = append(errs, fmt.Errorf("protected[%d]: %q is not a key of the configuration", i, clipText(p, 60)))
		}
	}
	if c.HealthTimeout < time.Second || c.HealthTimeout > time.Hour {
		errs = append(errs, fmt.Errorf("health_timeout: %s is outside 1s..1h", c.HealthTimeout))
	}
	return errors.Join(errs...)
}

// publicKeys are the keys parsed (Validate has checked them).
func (c FleetConfig) publicKeys() []ed25519.PublicKey {
	var out []ed25519.PublicKey
	for _, k := range c.Keys {
		if pub, err := pki.ParseFleetKey(k); err == nil {
			out = append(out, pub)
		}
	}
	return out
}

// protected is every key no bundle may set.
func (c FleetConfig) protected() []string {
	return append(slices.Clone(alwaysProtected), c.Protected...)
}

// labels are the gateway's labels as the protocol carries them.
func (c FleetConfig) labels() []uplink.Label {
	out := make([]uplink.Label, 0, len(c.Labels))
	for k, v := range c.Labels {
		out = append(out, uplink.Label{Key: k, Value: v})
	}
	slices.SortFunc(out, func(a, b uplink.Label) int { return strings.Compare(a.Key, b.Key) })
	return out
}
