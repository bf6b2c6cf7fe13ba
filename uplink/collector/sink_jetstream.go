package collector

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weirgw/weir/event"
)

// JetStreamOptions configure a JetStream sink.
type JetStreamOptions struct {
	URLs          string        // nats://host:4222, comma-separated for a cluster
	Name          string        // this collector, in connection names and the ids of its own records
	Stream        string        // the stream records land in
	SubjectPrefix string        // subjects are <prefix>.<gateway>.<kind>
	Bucket        string        // the key-value bucket of per-gateway resume state
	Replicas      int           // of the stream and the bucket (3 in a 3-node cluster)
	Duplicates    time.Duration // JetStream's duplicate window (Nats-Msg-Id)
	Timeout       time.Duration // for publish acknowledgements and state updates
	MaxRanges     int
	CredsFile     string      // NATS credentials (JWT and NKey seed); empty: none
	TLS           *tls.Config // nil: plain (loopback or a private network only)
}

// DefaultJetStreamOptions are for a 3-node cluster.
func DefaultJetStreamOptions() JetStreamOptions {
	return JetStreamOptions{Stream: "WEIR", SubjectPrefix: "weir", Bucket: "WEIR_RESUME", Replicas: 3,
		Duplicates: 10 * time.Minute, Timeout: 10 * time.Second, MaxRanges: DefaultMaxRanges}
}

// JetStream is a sink that publishes every record to a JetStream stream,
// one subject per gateway and kind, with the message id gateway:sequence,
// and keeps each gateway's resume state (its seqSet: a floor and the
// ranges above it) in a key-value bucket. Several collectors share one
// stream and bucket: a gateway may reconnect to any of them and resume
// with no gap and no duplicate.
//
// Write returns once JetStream acknowledged every publish (the stream's
// replicas hold it) and the bucket records the sequences as held; a
// concurrent update by another collector is merged (compare-and-set on
// the key's revision, then again). A crash between the two leaves the
// records in the stream and not in the state: the gateway resends, and
// JetStream's duplicate window (Nats-Msg-Id) drops the copies, so the
// exactly-once promise holds while a gateway comes back within the
// window (Duplicates, 10 minutes by default).
type JetStream struct {
	opt JetStreamOptions
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream
	kv  jetstream.KeyValue

	mu  sync.Mutex
	gws map[string]*jsGateway
}

type jsGateway struct {
	mu     sync.Mutex
	set    seqSet
	rev    uint64
	loaded bool
	// The live seal check's state kept with the resume state: as loaded
	// or last stored, and the newer one to store next.
	seal, sealNext *sealCheckpoint
	// checkRev is the revision this collector's check is consistent with
	// (it loaded it, or only it wrote since): another collector's write
	// makes the check stale.
	checkRev uint64
	checked  bool // the check loaded the state at least once
}

// jsValue is a gateway's key in the bucket: its resume state (the
// seqSet's fields) and the live check's.
type jsValue struct {
	seqSet
	Seal *sealCheckpoint `json:"seal,omitempty"`
}

// sealCheckpoint is the live check's state (seal.Verifier's) and the
// stream position after which every record of the gateway it has not
// seen is stored.
type sealCheckpoint struct {
	State  json.RawMessage `json:"state"`
	Stream uint64          `json:"stream_seq"`
}

// OpenJetStream connects, creates (or updates) the stream and the bucket,
// retrying until ctx ends while the cluster elects its leaders.
func OpenJetStream(ctx context.Context, opt JetStreamOptions, log *slog.Logger) (*JetStream, error) {
	if log == nil {
		log = slog.Default()
	}
	d := DefaultJetStreamOptions()
	if opt.Stream == "" {
		opt.Stream = d.Stream
	}
	if opt.SubjectPrefix == "" {
		opt.SubjectPrefix = d.SubjectPrefix
	}
	if opt.Bucket == "" {
		opt.Bucket = d.Bucket
	}
	if opt.Replicas < 1 {
		opt.Replicas = d.Replicas
	}
	if opt.Duplicates <= 0 {
		opt.Duplicates = d.Duplicates
	}
	if opt.Timeout <= 0 {
		opt.Timeout = d.Timeout
	}
	if opt.MaxRanges < 1 {
		opt.MaxRanges = d.MaxRanges
	}
	nopts := []nats.Option{nats.Name("weir-collector " + opt.Name), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	if opt.CredsFile != "" {
		nopts = append(nopts, nats.UserCredentials(opt.CredsFile))
	}
	if opt.TLS != nil {
		nopts = append(nopts, nats.Secure(opt.TLS))
	}
	nc, err := nats.Connect(opt.URLs, nopts...)
	if err != nil {
		return nil, fmt.Errorf("collector: jetstream: connect %s: %w", opt.URLs, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("collector: jetstream: %w", err)
	}
	s := &JetStream{opt: opt, log: log, nc: nc, js: js, gws: map[string]*jsGateway{}}
	for {
		err = s.setup(ctx)
		if err == nil {
			return s, nil
		}
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("collector: jetstream: create stream %s and bucket %s: %w", opt.Stream, opt.Bucket, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *JetStream) setup(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	defer cancel()
	_, err := s.js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{Name: s.opt.Stream, Subjects: []string{s.opt.SubjectPrefix + ".>"},
		Storage: jetstream.FileStorage, Replicas: s.opt.Replicas, Duplicates: s.opt.Duplicates})
	if err != nil {
		return err
	}
	s.kv, err = s.js.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{Bucket: s.opt.Bucket, Replicas: s.opt.Replicas,
		Storage: jetstream.FileStorage, History: 1})
	return err
}

// Close closes the connection.
func (s *JetStream) Close() error {
	s.nc.Close()
	return nil
}

// Stream is what a reader of the records needs (the fleet page's store
// follows the stream): the JetStream handle, the stream's name and the
// subjects' prefix.
func (s *JetStream) Stream() (js jetstream.JetStream, stream, prefix string) {
	return s.js, s.opt.Stream, s.opt.SubjectPrefix
}

// Subject is where a record of gateway and kind lands. A '.' in a gateway
// id would split its token, so it is written '~' (no id holds one).
func (s *JetStream) Subject(gateway, kind string) string {
	return s.opt.SubjectPrefix + "." + strings.ReplaceAll(gateway, ".", "~") + "." + kind
}

// stateKey is the bucket key of a gateway. Keys allow letters, digits,
// '-', '_', '=', '/' and '.', but not a '.' at either end, which an id
// may have: its dots are written '=' (no id holds one).
func stateKey(gateway string) string { return strings.ReplaceAll(gateway, ".", "=") }

func (s *JetStream) gw(gateway string) *jsGateway {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gws[gateway]
	if g == nil {
		g = &jsGateway{}
		s.gws[gateway] = g
	}
	return g
}

// load reads the gateway's state from the bucket (g.mu held).
func (s *JetStream) load(ctx context.Context, gateway string, g *jsGateway) error {
	e, err := s.kv.Get(ctx, stateKey(gateway))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		g.set, g.rev, g.loaded, g.seal = seqSet{}, 0, true, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("collector: jetstream: read state of %s: %w", gateway, err)
	}
	var val jsValue
	if err := json.Unmarshal(e.Value(), &val); err != nil || val.check() != nil {
		return fmt.Errorf("collector: jetstream: state of %s in %s does not read (%v); fix or delete the key", gateway, s.opt.Bucket, errors.Join(err, val.check()))
	}
	g.set, g.rev, g.loaded, g.seal = val.seqSet, e.Revision(), true, val.Seal
	return nil
}

// store writes the gateway's state, merging with another collector's
// update: on a revision conflict it reloads and applies change again.
func (s *JetStream) store(ctx context.Context, gateway string, g *jsGateway, change func(*seqSet)) error {
	consistent := g.checkRev == g.rev
	for attempt := 0; ; attempt++ {
		change(&g.set)
		val := jsValue{seqSet: g.set, Seal: g.seal}
		if g.sealNext != nil {
			// Either check's state is a valid one of the same log: ours
			// goes, whoever wrote last.
			val.Seal = g.sealNext
		}
		b, err := json.Marshal(&val)
		if err != nil {
			return err
		}
		var rev uint64
		if g.rev == 0 {
			rev, err = s.kv.Create(ctx, stateKey(gateway), b)
		} else {
			rev, err = s.kv.Update(ctx, stateKey(gateway), b, g.rev)
		}
		if err == nil {
			if consistent {
				g.checkRev = rev
			}
			g.rev, g.seal, g.sealNext = rev, val.Seal, nil
			return nil
		}
		consistent = false
		var apiErr *jetstream.APIError
		conflict := errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
		if !conflict || attempt > 50 {
			g.loaded = false
			return fmt.Errorf("collector: jetstream: store state of %s: %w", gateway, err)
		}
		if err := s.load(ctx, gateway, g); err != nil {
			return err
		}
	}
}

func (s *JetStream) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opt.Timeout)
}

// Holds reports whether seq of gateway is held, as this collector last
// read the state (Write checks again).
func (s *JetStream) Holds(gateway string, seq uint64) bool {
	g := s.gw(gateway)
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.loaded && g.set.holds(seq)
}

// Resume reads the gateway's state afresh (it may have come from another
// collector) and takes its floor as the JSONL sink does.
func (s *JetStream) Resume(gateway string, floor uint64) Resumed {
	ctx, cancel := s.ctx()
	defer cancel()
	g := s.gw(gateway)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := s.load(ctx, gateway, g); err != nil {
		s.log.Error("resume state unreadable; answering from what this collector knew", "gateway", gateway, "err", err)
		return g.set.claim(floor)
	}
	var res Resumed
	before, _ := json.Marshal(&g.set)
	probe := g.set
	probe.Ranges = append([][2]uint64(nil), g.set.Ranges...)
	res = probe.claim(floor)
	after, _ := json.Marshal(&probe)
	if string(before) == string(after) {
		return res
	}
	if err := s.store(ctx, gateway, g, func(set *seqSet) { res = set.claim(floor) }); err != nil {
		s.log.Error("resume floor not stored", "gateway", gateway, "err", err)
	}
	return res
}

// Write publishes the entries the state does not hold, waits for every
// acknowledgement, then records them as held.
func (s *JetStream) Write(gateway string, entries []Entry) (WriteResult, error) {
	if len(entries) == 0 {
		return WriteResult{}, nil
	}
	ctx, cancel := s.ctx()
	defer cancel()
	g := s.gw(gateway)
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.loaded {
		if err := s.load(ctx, gateway, g); err != nil {
			return WriteResult{}, err
		}
	}
	type sent struct {
		seq uint64
		i   int
		ack jetstream.PubAckFuture
	}
	var pending []sent
	for i := range entries {
		e := &entries[i]
		if g.set.holds(e.Seq) {
			continue
		}
		msg, err := s.message(gateway, e)
		if err != nil {
			return WriteResult{}, err
		}
		f, err := s.js.PublishMsgAsync(msg, jetstream.WithMsgID(gateway+":"+strconv.FormatUint(e.Seq, 10)))
		if err != nil {
			return WriteResult{}, fmt.Errorf("collector: jetstream: publish %s:%d: %w", gateway, e.Seq, err)
		}
		pending = append(pending, sent{e.Seq, i, f})
	}
	var res WriteResult
	var held []uint64
	for _, p := range pending {
		select {
		case ack := <-p.ack.Ok():
			held = append(held, p.seq)
			if !ack.Duplicate {
				res.Written++
				entries[p.i].StreamSeq = ack.Sequence
			}
		case err := <-p.ack.Err():
			return WriteResult{}, fmt.Errorf("collector: jetstream: publish %s:%d not acknowledged: %w", gateway, p.seq, err)
		case <-ctx.Done():
			return WriteResult{}, fmt.Errorf("collector: jetstream: publish %s:%d not acknowledged within %s", gateway, p.seq, s.opt.Timeout)
		}
	}
	if len(held) == 0 {
		return res, nil
	}
	err := s.store(ctx, gateway, g, func(set *seqSet) {
		res.Forgotten = 0
		for _, seq := range held {
			if set.add(seq, s.opt.MaxRanges) {
				res.Forgotten++
			}
		}
	})
	if err != nil {
		return WriteResult{}, err
	}
	return res, nil
}

func (s *JetStream) message(gateway string, e *Entry) (*nats.Msg, error) {
	kind := "undecodable"
	var body []byte
	var err error
	if e.Event != nil {
		kind = e.Event.Kind.String()
		body = e.Event.AppendJSON(nil)
	} else {
		body, err = json.Marshal(undecodable{Seq: e.Seq, Gateway: gateway, Error: e.DecodeErr.Error(), Raw: e.Raw})
	}
	if err != nil {
		return nil, fmt.Errorf("collector: jetstream: encode %s:%d: %w", gateway, e.Seq, err)
	}
	body = appendProof(body, e)
	m := nats.NewMsg(s.Subject(gateway, kind))
	m.Data = body
	m.Header.Set("Weir-Gateway", gateway)
	m.Header.Set("Weir-Seq", strconv.FormatUint(e.Seq, 10))
	return m, nil
}

// Alert publishes one of the collector's own records under
// CollectorStream; its id names this collector and the time, so
// collectors never collide.
func (s *JetStream) Alert(ev *event.Event) error {
	ctx, cancel := s.ctx()
	defer cancel()
	e := *ev
	e.Gateway, e.Seq = CollectorStream, uint64(time.Now().UnixNano())
	body, err := json.Marshal(&e)
	if err != nil {
		return err
	}
	m := nats.NewMsg(s.Subject(CollectorStream, e.Kind.String()))
	m.Data = body
	m.Header.Set("Weir-Gateway", CollectorStream)
	_, err = s.js.PublishMsg(ctx, m, jetstream.WithMsgID(CollectorStream+":"+s.opt.Name+":"+strconv.FormatUint(e.Seq, 10)))
	if err != nil {
		return fmt.Errorf("collector: jetstream: publish alert: %w", err)
	}
	return nil
}

// SealStale says whether another collector wrote the gateway's state
// since this collector's check loaded it (Resume reads it afresh at every
// session), or the check never loaded it.
func (s *JetStream) SealStale(gateway string) bool {
	g := s.gw(gateway)
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.checked || (g.loaded && g.rev != g.checkRev)
}

// SaveSeal keeps the check's state for the gateway's next state update.
func (s *JetStream) SaveSeal(gateway string, state []byte, streamSeq uint64) {
	g := s.gw(gateway)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sealNext = &sealCheckpoint{State: state, Stream: streamSeq}
}

// LoadSeal reads the gateway's state afresh, gives restore the check's
// part and feeds it the gateway's records stored after it (all of them
// when none was saved), up to the stream's end as it is now.
func (s *JetStream) LoadSeal(gateway string, restore func([]byte, uint64) error, feed func(SinkRecord, uint64)) error {
	ctx, cancel := s.ctx()
	defer cancel()
	g := s.gw(gateway)
	g.mu.Lock()
	err := s.load(ctx, gateway, g)
	cp := g.seal
	if g.sealNext != nil {
		cp = g.sealNext // this collector's own, not yet stored
	}
	g.checkRev, g.checked = g.rev, true
	g.mu.Unlock()
	if err != nil {
		return err
	}
	var from uint64
	var state []byte
	if cp != nil {
		state, from = cp.State, cp.Stream
	}
	if err := restore(state, from); err != nil {
		return err
	}
	return s.replay(gateway, from, feed)
}

// replay feeds every record of gateway stored after stream position from.
func (s *JetStream) replay(gateway string, from uint64, feed func(SinkRecord, uint64)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.opt.Timeout)
	defer cancel()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{s.opt.SubjectPrefix + "." + strings.ReplaceAll(gateway, ".", "~") + ".>"}}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from+1
	}
	return readStream(ctx, s.js, s.opt.Stream, cfg, func(body []byte, n int, streamSeq uint64) {
		if sr, ok := parseSinkLine(n, body, false); ok {
			feed(sr, streamSeq)
		}
	})
}

// readStream reads a stream with an ordered consumer from cfg's start to
// its end as it is when the read begins.
func readStream(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, fn func(body []byte, n int, streamSeq uint64)) error {
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("collector: jetstream: read stream %s: %w", stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("collector: jetstream: read stream %s: %w", stream, err)
	}
	left := info.NumPending
	for n := 1; left > 0; {
		batch, err := cons.Fetch(int(min(left, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("collector: jetstream: read stream %s: %w", stream, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("collector: jetstream: read stream %s: %w", stream, err)
			}
			fn(m.Data(), n, md.Sequence.Stream)
			n++
			left = md.NumPending
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("collector: jetstream: read stream %s: %w", stream, err)
		}
		if got == 0 {
			if ctx.Err() != nil {
				return fmt.Errorf("collector: jetstream: read stream %s: %w", stream, ctx.Err())
			}
		}
	}
	return nil
}

// ScanJetStream reads every record of a stream the JetStream sink wrote,
// from its first message to its end as it is when the read begins, and
// calls fn for each gateway record as ScanSink does for a JSONL sink (each
// message's JSON rendered again from its record's bytes and compared).
// Line is the message's position in the stream.
func ScanJetStream(ctx context.Context, nc *nats.Conn, stream string, fn func(SinkRecord) error) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("collector: jetstream: %w", err)
	}
	var ferr error
	err = readStream(ctx, js, stream, jetstream.OrderedConsumerConfig{}, func(body []byte, _ int, streamSeq uint64) {
		if ferr != nil {
			return
		}
		if sr, ok := parseSinkLine(int(streamSeq), body, true); ok {
			ferr = fn(sr)
		}
	})
	return errors.Join(err, ferr)
}
