package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/weirgw/weir/event"
)

// FollowJetStream takes the records of a head-end on JetStream into the
// store: those of the stream it has not taken yet (from its position, or
// the week before now for a new store), then each one as it lands, until
// ctx ends. Every collector sharing the stream so shows the whole fleet,
// whichever collector a gateway delivers to, and a lost store is rebuilt
// from the stream. A message's gateway is its Weir-Gateway header, its
// time of writing (the ack) the stream's timestamp.
func (s *Store) FollowJetStream(ctx context.Context, js jetstream.JetStream, stream, prefix string) error {
	src := "jetstream:" + stream
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{prefix + ".>"}}
	if from := s.NeedsRebuild(src); from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, uint64(from)+1
	} else {
		since := s.opt.Now().Add(-week)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	var last uint64
	if st, err := js.Stream(ctx, stream); err == nil {
		if info, err := st.Info(ctx); err == nil {
			last = info.State.LastSeq
		}
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("fleet: follow stream %s: %w", stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("fleet: follow stream %s: %w", stream, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()

	catching := last > 0 && (cfg.OptStartSeq == 0 || cfg.OptStartSeq <= last)
	s.mu.Lock()
	if catching {
		at := int64(cfg.OptStartSeq)
		s.replayAt = &at
		s.replay = Replay{Running: true, Done: at, Size: int64(last)}
	}
	s.mu.Unlock()
	caughtUp := func() {
		if catching {
			catching = false
			_ = s.replayDone(nil)
		}
	}
	var bad uint64
	for {
		msg, err := it.Next()
		if err != nil {
			caughtUp()
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("fleet: follow stream %s: %w", stream, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		gateway, ev, perr := ParseRecord(msg.Data())
		if h := msg.Headers().Get("Weir-Gateway"); h != "" {
			gateway = h
		}
		pos := Position{Source: src, Offset: int64(meta.Sequence.Stream)}
		s.mu.Lock()
		if perr != nil {
			bad++
		} else {
			s.observeLocked(gateway, meta.Timestamp.UnixNano(), []*event.Event{&ev}, catching)
		}
		if pos.Offset > s.pos.Offset || s.pos.Source != src {
			s.pos = pos
		}
		if catching {
			*s.replayAt = pos.Offset
			s.replay.Done = pos.Offset
			s.replay.Records++
		}
		s.mu.Unlock()
		if catching && (meta.NumPending == 0 || meta.Sequence.Stream >= last) {
			s.log.Info("fleet store: caught up with the stream", "stream", stream, "records", s.Stats().Replay.Records, "unreadable", bad)
			caughtUp()
		}
	}
}

// Follow runs FollowJetStream until ctx ends, starting it again after an
// error (a cluster electing its leaders, a connection lost).
func (s *Store) Follow(ctx context.Context, js jetstream.JetStream, stream, prefix string) error {
	for ctx.Err() == nil {
		if err := s.FollowJetStream(ctx, js, stream, prefix); err != nil {
			s.log.Warn("fleet store: following the stream; trying again", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
	return nil
}
