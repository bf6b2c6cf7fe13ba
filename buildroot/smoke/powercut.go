package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// plan is when the board that runs gets its power cut.
type plan struct {
	phase string        // starting (before its login prompt), started (after it, no one logged in) or running
	at    time.Duration // from its power on
}

func (s *smoke) randDur(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)))
}

// powerCuts cuts the board's power opt.cuts times, each at a random
// moment, and boots it again from the same data disk. A quarter of the
// boots (never the last) are cut while they start: between half and one
// and a half times the first boot's time to its login prompt, when the
// init scripts run, the data partition is mounted (its journal replayed)
// and the gateway opens its spool. The others are cut while the
// gateway runs, 0 to 10 s after a session read, from the gateway's own
// log, the state its spool opened with; that state is checked against
// what the collector held at the cut before: the gateway must not have
// forgotten a record the collector acknowledged.
func (s *smoke) powerCuts(ctx context.Context) error {
	cur := plan{phase: "running", at: time.Since(s.board.on) + s.randDur(0, 10*time.Second)}
	var heldMax uint64
	for i := 1; i <= s.opt.cuts; i++ {
		if err := s.waitUntil(ctx, s.board.on.Add(cur.at)); err != nil {
			return err
		}
		after := time.Since(s.board.on)
		// A cut planned for the start may come after the login prompt.
		if cur.phase == "starting" && s.board.console.seen(loginPrompt) {
			cur.phase = "started"
		}
		s.board.kill()
		s.board = nil
		// A batch the collector had whole when the link died is written
		// and counted even so; give it a moment.
		time.Sleep(time.Second)
		h, err := readSink(s.sink, gatewayID)
		if err != nil {
			return err
		}
		heldMax = max(heldMax, h.max)
		c := cut{n: i, phase: cur.phase, after: after, heldLines: h.distinct(), heldMax: h.max}
		s.steps.say("cut %d: power cut while %s, %.1fs after power on; the collector holds %d records, the highest sequence %d",
			i, cur.phase, after.Seconds(), h.distinct(), h.max)

		last := i == s.opt.cuts
		if !last && s.rng.IntN(4) == 0 {
			b, err := s.powerOn(ctx, i)
			if err != nil {
				return err
			}
			s.board = b
			// Around the first boot's login prompt: the init scripts, the
			// data partition's mount, the gateway opening its spool.
			cur = plan{phase: "starting", at: s.randDur(s.promptAt/2, s.promptAt*3/2)}
			s.steps.say("boot %d: powered on; its cut comes while it starts, %.1fs after power on", i, cur.at.Seconds())
			s.cuts = append(s.cuts, c)
			continue
		}
		prompt, err := s.bootToPrompt(ctx, i)
		if err != nil {
			return err
		}
		c.bootPrompt = prompt
		t, err := login(ctx, s.board.console, user, password, gatewayID)
		if err != nil {
			return fmt.Errorf("boot %d: login: %w", i, err)
		}
		o, err := s.spoolOpened(ctx, t)
		if err != nil {
			return fmt.Errorf("boot %d: %w", i, err)
		}
		c.opened = &o
		s.steps.say("boot %d: login prompt after %.1fs; the spool opened with next sequence %d, acked up to %d, %d records held: %d written before the cut had not reached the collector, %d it holds will be sent again",
			i, prompt.Seconds(), o.next, o.acked, o.records, int64(o.next-1)-int64(c.heldMax), int64(c.heldMax)-int64(o.acked))
		s.cuts = append(s.cuts, c)
		if o.next <= heldMax {
			return fmt.Errorf("boot %d: the spool opened with next sequence %d, but the collector holds sequence %d: the gateway lost records it had sent, and would number new ones as records the collector already has",
				i, o.next, heldMax)
		}
		if last {
			s.tech = t
			return nil
		}
		if err := t.exit(ctx); err != nil {
			return err
		}
		cur = plan{phase: "running", at: time.Since(s.board.on) + s.randDur(0, 10*time.Second)}
	}
	return nil
}

// waitUntil waits for a moment, failing if the board stops by itself.
func (s *smoke) waitUntil(ctx context.Context, at time.Time) error {
	for time.Now().Before(at) {
		if err := s.board.running(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Until(at), 200*time.Millisecond)):
		}
	}
	return s.board.running()
}

// spoolOpened reads the gateway's log (the console's logs command) for
// the state its spool opened with at this boot.
func (s *smoke) spoolOpened(ctx context.Context, t *session) (opened, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		logs, err := t.run(ctx, "logs 500")
		if err != nil {
			return opened{}, err
		}
		if o, ok := parseOpened(logs); ok {
			return o, nil
		}
		if time.Now().After(deadline) {
			return opened{}, fmt.Errorf("no \"spool opened\" line in the gateway's log within a minute:\n%s", logs)
		}
		time.Sleep(2 * time.Second)
	}
}

// finish is the last boot's count: with the Modbus device stopped (no new
// readings), a last status gives the spool's next sequence; every record
// the gateway wrote before it must reach the collector once. (The
// console's own audit records keep coming while a technician types, so
// the spool never quite empties under one; those after the status are
// not counted.)
func (s *smoke) finish(ctx context.Context) error {
	t := s.tech
	if t == nil {
		// No cut: the first boot's board, logged out; log in again.
		if _, err := s.board.console.expect(ctx, loginPrompt, time.Minute); err != nil {
			return err
		}
		var err error
		if t, err = login(ctx, s.board.console, user, password, gatewayID); err != nil {
			return err
		}
	}
	s.board.stopSim()
	time.Sleep(2 * time.Second) // a poll under way ends
	status, err := t.run(ctx, "status")
	if err != nil {
		return err
	}
	sp, ok := parseStatusSpool(status)
	if !ok {
		return fmt.Errorf("status: no spool line:\n%s", status)
	}
	if err := t.exit(ctx); err != nil {
		return err
	}
	var h *held
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if h, err = readSink(s.sink, gatewayID); err != nil {
			return err
		}
		if len(h.missing(h.min, sp.next-1)) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	s.steps.say("drain: Modbus device stopped; the spool's next sequence was %d; the collector holds %d records up to it", sp.next, h.distinct())
	s.board.kill()
	s.board = nil
	time.Sleep(time.Second)
	if h, err = readSink(s.sink, gatewayID); err != nil {
		return err
	}
	return s.report(h, sp.next-1)
}

// report prints the cuts and the count, and fails on any record lost or
// duplicated.
func (s *smoke) report(h *held, last uint64) error {
	first := h.min
	written := int64(last) - int64(first) + 1
	var inRange int64
	for seq := range h.seqs {
		if seq >= first && seq <= last {
			inRange++
		}
	}
	lost := written - inRange
	dup := h.duplicated()

	var b strings.Builder
	fmt.Fprintf(&b, "power cuts (sequences as record numbers, the first record the gateway wrote is 1):\n")
	fmt.Fprintf(&b, "  %-4s %-9s %9s %14s %12s %14s %12s %11s\n", "cut", "while", "after", "collector held", "prompt after", "spool next at", "unacked", "sent again")
	for _, c := range s.cuts {
		prompt, next, unacked, again := "-", "-", "-", "-"
		if c.bootPrompt > 0 {
			prompt = fmt.Sprintf("%.1fs", c.bootPrompt.Seconds())
		}
		if c.opened != nil {
			next = fmt.Sprintf("%d", c.opened.next-first+1)
			unacked = fmt.Sprintf("%d", int64(c.opened.next-1)-int64(c.heldMax))
			again = fmt.Sprintf("%d", int64(c.heldMax)-int64(c.opened.acked))
		}
		fmt.Fprintf(&b, "  %-4d %-9s %8.1fs %14d %12s %14s %12s %11s\n", c.n, c.phase, c.after.Seconds(), c.heldLines, prompt, next, unacked, again)
	}
	fmt.Fprintf(&b, "  (collector held: records at the collector after the cut; spool next at: the next boot's spool; unacked: written before the cut, not yet at the collector, sent after the boot; sent again: at the collector, the gateway not yet told, deduplicated)\n")
	fmt.Fprintf(&b, "records: written %d, acknowledged %d, lost %d, duplicated %d (%d lines at the collector; by source:", written, inRange, lost, dup, h.lines)
	for _, src := range sortedKeys(h.bySource) {
		fmt.Fprintf(&b, " %s %d", src, h.bySource[src])
	}
	b.WriteString(")")
	s.steps.say("%s", b.String())

	var problems []string
	if lost > 0 {
		miss := ""
		if written < 10_000_000 {
			m := h.missing(first, last)
			if len(m) > 20 {
				m = m[:20]
			}
			miss = fmt.Sprintf(" (sequences %v...)", m)
		}
		problems = append(problems, fmt.Sprintf("%d records lost%s", lost, miss))
	}
	if dup > 0 {
		problems = append(problems, fmt.Sprintf("%d records duplicated", dup))
	}
	if h.bySource["modbus:flow-1"] == 0 {
		problems = append(problems, "no Modbus reading at the collector")
	}
	if h.bySource["weir:console"] == 0 {
		problems = append(problems, "no console audit record at the collector")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	s.steps.say("image-smoke: passed (%d power cuts, seed %d)", len(s.cuts), s.opt.seed)
	return nil
}
