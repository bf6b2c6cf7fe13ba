package linklab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// tableScript creates the lab's nftables table in a namespace: an input
// chain on the lab interface and two named counters, which keep counting
// across changes of the rules.
const tableScript = `table inet weirlab {
	counter received {}
	counter dropped {}
	chain input {
		type filter hook input priority filter; policy accept;
	}
}
`

// SetLoss drops pct percent (0..100) of the packets going in direction d,
// at random, from now on. An outage (Block) stays in force; the loss is
// what Unblock returns to.
func (l *Lab) SetLoss(ctx context.Context, d Direction, pct int) error {
	if d != Uplink && d != Downlink {
		return fmt.Errorf("linklab: set loss: unknown %s", d)
	}
	if pct < 0 || pct > 100 {
		return fmt.Errorf("linklab: set %s loss: %d%% is outside 0..100", d, pct)
	}
	l.mu.Lock()
	l.loss[d] = pct
	l.mu.Unlock()
	return l.apply(ctx)
}

// SetLossBoth sets the same loss in both directions.
func (l *Lab) SetLossBoth(ctx context.Context, pct int) error {
	if pct < 0 || pct > 100 {
		return fmt.Errorf("linklab: set loss: %d%% is outside 0..100", pct)
	}
	l.mu.Lock()
	l.loss = [2]int{pct, pct}
	l.mu.Unlock()
	return l.apply(ctx)
}

// Loss returns the loss set for direction d, in percent.
func (l *Lab) Loss(d Direction) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loss[d]
}

// Block drops every packet both ways until Unblock: an outage.
func (l *Lab) Block(ctx context.Context) error {
	l.mu.Lock()
	l.blocked = true
	l.mu.Unlock()
	return l.apply(ctx)
}

// Unblock ends an outage; the loss set before applies again.
func (l *Lab) Unblock(ctx context.Context) error {
	l.mu.Lock()
	l.blocked = false
	l.mu.Unlock()
	return l.apply(ctx)
}

// apply writes the rules for the current state into both namespaces. A
// direction's loss is made where its packets arrive: uplink loss in the
// collector's namespace, downlink loss in the gateway's.
func (l *Lab) apply(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock() // one writer at a time, so the rules match the state
	if l.closed {
		return errors.New("linklab: lab is closed")
	}
	for _, side := range []struct {
		ns  Namespace
		pct int
	}{{l.Collector, l.loss[Uplink]}, {l.Gateway, l.loss[Downlink]}} {
		script := fmt.Sprintf("flush chain inet weirlab input\nadd rule inet weirlab input iifname %q counter name \"received\"\n", Iface)
		switch {
		case l.blocked || side.pct >= 100:
			script += fmt.Sprintf("add rule inet weirlab input iifname %q counter name \"dropped\" drop\n", Iface)
		case side.pct > 0:
			script += fmt.Sprintf("add rule inet weirlab input iifname %q numgen random mod 100 < %d counter name \"dropped\" drop\n", Iface, side.pct)
		}
		if err := nft(ctx, side.ns, script); err != nil {
			return err
		}
	}
	return nil
}

// Counters are the packets that arrived on one side's lab interface and
// those of them the lab dropped, since the lab was made.
type Counters struct {
	Received uint64
	Dropped  uint64
}

// Counters reads the counters of direction d (kept where its packets
// arrive).
func (l *Lab) Counters(ctx context.Context, d Direction) (Counters, error) {
	ns := l.Collector
	if d == Downlink {
		ns = l.Gateway
	}
	out, err := output(ctx, "ip", "netns", "exec", ns.Name, "nft", "-j", "list", "counters", "table", "inet", "weirlab")
	if err != nil {
		return Counters{}, err
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return Counters{}, fmt.Errorf("linklab: counters in %s: %w", ns.Name, err)
	}
	var c Counters
	found := 0
	for _, o := range doc.Nftables {
		if o.Counter == nil {
			continue
		}
		switch o.Counter.Name {
		case "received":
			c.Received, found = o.Counter.Packets, found+1
		case "dropped":
			c.Dropped, found = o.Counter.Packets, found+1
		}
	}
	if found != 2 {
		return Counters{}, fmt.Errorf("linklab: counters in %s: want received and dropped, got %s", ns.Name, out)
	}
	return c, nil
}

// nft runs an nft script in namespace ns.
func nft(ctx context.Context, ns Namespace, script string) error {
	if err := run(ctx, []byte(script), "ip", "netns", "exec", ns.Name, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("%w (script: %q)", err, script)
	}
	return nil
}
