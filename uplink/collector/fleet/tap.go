package fleet

import (
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink/collector"
)

// Tap is a sink that shows the store what its inner sink writes, for a
// sink that has no observer of its own (JetStream): the entries the sink
// did not hold before the write. It has no position, so nothing is
// rebuilt from it at start.
type Tap struct {
	collector.Sink
	store *Store
}

// NewTap wraps inner.
func NewTap(inner collector.Sink, store *Store) *Tap { return &Tap{Sink: inner, store: store} }

// Write writes through the inner sink, then shows the store what was new.
func (t *Tap) Write(gateway string, entries []collector.Entry) (collector.WriteResult, error) {
	fresh := make([]*event.Event, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		if t.Holds(gateway, e.Seq) {
			continue
		}
		if e.Event != nil {
			fresh = append(fresh, e.Event)
		} else {
			fresh = append(fresh, &event.Event{Seq: e.Seq, Kind: kindUndecodable, Time: time.Now().UnixNano()})
		}
	}
	res, err := t.Sink.Write(gateway, entries)
	if err == nil && len(fresh) > 0 {
		t.store.Observe(gateway, time.Now(), fresh, Position{Offset: -1})
	}
	return res, err
}

// Alert writes the collector's own record through, and shows it.
func (t *Tap) Alert(ev *event.Event) error {
	if err := t.Sink.Alert(ev); err != nil {
		return err
	}
	t.store.Observe(collector.CollectorStream, time.Now(), []*event.Event{ev}, Position{Offset: -1})
	return nil
}
