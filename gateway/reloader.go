package gateway

import (
	"context"
	"reflect"
)

// Reloader is what a part implements to take a new configuration of its
// own section while it runs, keeping its state (a rules engine its
// windows and counters, the telemetry loop the figures it compares),
// instead of being stopped and built again. It is defined over the
// section's own type, so the part's package needs nothing of the
// gateway; the gateway wires it to its key with liveSection.
type Reloader[C any] interface {
	// CheckReload says whether c can be taken, changing nothing. A
	// reload calls it, for a section that changed, before anything is
	// applied; an error refuses the whole reload.
	CheckReload(c C) error
	// Reload takes c. On an error the part must still run on its
	// previous configuration; the reload is reported as partial.
	Reload(ctx context.Context, c C) error
}

// sectionHook is a Reloader wired to the key of the section it owns.
type sectionHook struct {
	key     string
	applied any // the section the part runs on
	section func(*Config) any
	check   func(any) error
	apply   func(context.Context, any) error
}

// liveSection wires r to key: the section a reload hands it (section
// of the new configuration), starting from the one in force.
func liveSection[C any](key string, section func(*Config) C, inForce *Config, r Reloader[C]) *sectionHook {
	return &sectionHook{
		key: key, applied: section(inForce),
		section: func(c *Config) any { return section(c) },
		check:   func(v any) error { return r.CheckReload(v.(C)) },
		apply:   func(ctx context.Context, v any) error { return r.Reload(ctx, v.(C)) },
	}
}

// changed returns the hook's section of next when it differs from the
// one applied.
func (h *sectionHook) changed(next *Config) (any, bool) {
	v := h.section(next)
	return v, !reflect.DeepEqual(v, h.applied)
}
