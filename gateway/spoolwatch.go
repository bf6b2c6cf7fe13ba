package gateway

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// spoolWatchInterval is how often the gateway looks at the spool for what
// the head-end must hear about at once rather than at the next telemetry
// record: intake held for a full disk, and damaged records quarantined.
const spoolWatchInterval = time.Second

// resumeQuiet is how long intake must have run again before the record
// saying so is sent: near the line, a busy spool may hold and resume a few
// times while Badger's compactions give space back, and each of those is
// not news.
const resumeQuiet = 5 * time.Second

// runSpoolWatch spools one critical record when intake starts to wait for
// disk space, one when it has run again for resumeQuiet, and one for each
// batch of records a read from the spool quarantined, naming the
// sequences. Critical records are admitted from the slice the spool keeps
// for them.
func (g *Gateway) runSpoolWatch(ctx context.Context) error {
	t := time.NewTicker(spoolWatchInterval)
	defer t.Stop()
	var (
		held    bool      // a held record was sent, no resumed one yet
		clearAt time.Time // when the hold last ended
		mark    uint64    // quarantine events reported
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st := g.spool.Stats()
		var evs []event.Event
		switch {
		case st.Disk.Held != "" && !held:
			held = true
			evs = append(evs, diskHeldEvent(st))
		case st.Disk.Held != "":
			clearAt = time.Time{}
		case held && clearAt.IsZero():
			clearAt = time.Now()
		case held && time.Since(clearAt) >= resumeQuiet:
			held, clearAt = false, time.Time{}
			evs = append(evs, diskResumedEvent(st))
		}
		qs, next := g.spool.QuarantinedSince(mark)
		if len(qs) > 0 {
			evs = append(evs, quarantineEvent(qs, g.spool.Stats().Quarantined))
		}
		if len(evs) == 0 {
			mark = next
			continue
		}
		if err := g.Emit(ctx, evs, nil); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			g.log.Warn("spool alert not spooled; trying again", "err", err)
			continue
		}
		mark = next
	}
}

func diskHeldEvent(st spool.Stats) event.Event {
	return event.Event{Source: "weir:spool", Kind: event.KindAlert, Severity: event.SevCritical, Priority: event.PriorityCritical,
		Message: "spool: intake held: " + st.Disk.Held,
		Fields: []event.Field{
			event.Int("disk_free_bytes", st.Disk.Free), event.Int("disk_reserve_bytes", st.Disk.Reserve),
			event.Int("budget_bytes", st.Disk.Budget), event.Int("backlog_bytes", st.Used), event.Int("max_bytes", st.MaxBytes),
		}}
}

func diskResumedEvent(st spool.Stats) event.Event {
	return event.Event{Source: "weir:spool", Kind: event.KindAlert, Severity: event.SevNotice, Priority: event.PriorityCritical,
		Message: "spool: intake resumed: disk space is back",
		Fields:  []event.Field{event.Int("disk_free_bytes", st.Disk.Free), event.Int("backlog_bytes", st.Used)}}
}

// quarantineEvent names the runs of damaged records set aside.
func quarantineEvent(qs []spool.Quarantined, total uint64) event.Event {
	var runs, reasons []string
	n := 0
	first, last := qs[0].First, qs[0].Last
	for _, q := range qs {
		n += q.Records
		first, last = min(first, q.First), max(last, q.Last)
		runs = append(runs, fmt.Sprintf("%d-%d", q.First, q.Last))
		if !slices.Contains(reasons, q.Reason) {
			reasons = append(reasons, q.Reason)
		}
	}
	return event.Event{Source: "weir:spool", Kind: event.KindAlert, Severity: event.SevCritical, Priority: event.PriorityCritical,
		Message: fmt.Sprintf("spool: %d damaged records quarantined, not delivered (sequences %d to %d): %s",
			n, first, last, strings.Join(reasons, "; ")),
		Fields: []event.Field{
			event.Uint("first_seq", first), event.Uint("last_seq", last), event.Int("records", int64(n)),
			event.Str("runs", strings.Join(runs, ",")), event.Uint("quarantined_total", total),
		}}
}
