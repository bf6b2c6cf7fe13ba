package ptp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/facebook/time/ptp/protocol"
	"github.com/facebook/time/servo"

	"github.com/weirgw/weir/event"
)

// BuiltinConfig tunes the built-in PTPv2 end-to-end slave.
type BuiltinConfig struct {
	// Interface carries PTP: multicast is joined and time stamps are
	// taken there.
	Interface string `mapstructure:"interface" yaml:"interface"`
	Domain    uint8  `mapstructure:"domain" yaml:"domain"`
	// UnicastMaster, when set (an IPv4 address), is the only master
	// followed: Announce, Sync and Delay_Resp are requested from it by
	// unicast negotiation (IEEE 1588-2019 16.1; a ptp4l master grants them
	// with unicast_listen) and Delay_Req goes to it by unicast. Multicast
	// from it is still taken.
	UnicastMaster string `mapstructure:"unicast_master" yaml:"unicast_master"`
	// UnicastGrantDuration is how long each unicast grant is asked for;
	// it is renewed at half its life.
	UnicastGrantDuration time.Duration `mapstructure:"unicast_grant_duration" yaml:"unicast_grant_duration"`
	// UnicastSyncInterval is the Sync (and Delay_Resp) interval asked for,
	// a power of two seconds.
	UnicastSyncInterval time.Duration `mapstructure:"unicast_sync_interval" yaml:"unicast_sync_interval"`
	// ClockIdentity is this slave's identity ("001122.fffe.334455" or 16
	// hex digits); empty derives it from the interface's MAC, as ptp4l
	// does.
	ClockIdentity string `mapstructure:"clock_identity" yaml:"clock_identity"`
	// Timestamping: auto (kernel software stamps, else user space),
	// software, or user.
	Timestamping string `mapstructure:"timestamping" yaml:"timestamping"`
	// DelayFilterLength is how many path delay measurements the median
	// is taken over.
	DelayFilterLength int `mapstructure:"delay_filter_length" yaml:"delay_filter_length"`
	// FirstStepThreshold: a first offset larger than this is stepped
	// rather than slewed. StepThreshold: later offsets larger than this
	// are stepped too (0: never).
	FirstStepThreshold time.Duration `mapstructure:"first_step_threshold" yaml:"first_step_threshold"`
	StepThreshold      time.Duration `mapstructure:"step_threshold" yaml:"step_threshold"`
	// AdjustSystemClock steers CLOCK_REALTIME itself (needs CAP_SYS_TIME)
	// instead of a software clock private to Weir.
	AdjustSystemClock bool `mapstructure:"adjust_system_clock" yaml:"adjust_system_clock"`
}

// DefaultBuiltin: eth0, domain 0, multicast, software time stamps, a
// median over 10 delays (ptp4l's default delay filter), a first step above
// 20 µs (ptp4l's first_step_threshold) and later steps above 100 ms (an
// offset that large means a new master or a local fault; slewing it at
// 500 ppm would take over three minutes).
func DefaultBuiltin() BuiltinConfig {
	return BuiltinConfig{
		Interface: "eth0", Timestamping: "auto", DelayFilterLength: 10,
		UnicastGrantDuration: time.Minute, UnicastSyncInterval: time.Second,
		FirstStepThreshold: 20 * time.Microsecond, StepThreshold: 100 * time.Millisecond,
	}
}

// Validate checks the settings; errors name the key.
func (b BuiltinConfig) Validate() error {
	var errs []error
	if b.Interface == "" {
		errs = append(errs, errors.New("interface: required"))
	}
	if b.UnicastMaster != "" {
		if a, err := netip.ParseAddr(b.UnicastMaster); err != nil || !a.Is4() {
			errs = append(errs, fmt.Errorf("unicast_master: %q is not an IPv4 address", b.UnicastMaster))
		}
	}
	if b.UnicastGrantDuration < 10*time.Second || b.UnicastGrantDuration > time.Hour || b.UnicastGrantDuration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("unicast_grant_duration: %s must be whole seconds in 10s..1h", b.UnicastGrantDuration))
	}
	if d := b.UnicastSyncInterval; d <= 0 || logInterval(logOf(d)) != d || d < time.Second/128 || d > 64*time.Second {
		errs = append(errs, fmt.Errorf("unicast_sync_interval: %s must be a power of two seconds in 1/128s..64s", d))
	}
	if b.ClockIdentity != "" {
		if _, err := parseClockIdentity(b.ClockIdentity); err != nil {
			errs = append(errs, fmt.Errorf("clock_identity: %w", err))
		}
	}
	switch b.Timestamping {
	case "auto", stampSoftware, stampUser:
	case "hardware":
		errs = append(errs, errors.New("timestamping: hardware is not supported by the built-in slave; use linuxptp mode"))
	default:
		errs = append(errs, fmt.Errorf("timestamping: %q (want auto, software or user)", b.Timestamping))
	}
	if b.DelayFilterLength < 1 || b.DelayFilterLength > 1000 {
		errs = append(errs, fmt.Errorf("delay_filter_length: %d must be in 1..1000", b.DelayFilterLength))
	}
	if b.FirstStepThreshold < 0 {
		errs = append(errs, fmt.Errorf("first_step_threshold: %s must not be negative", b.FirstStepThreshold))
	}
	if b.StepThreshold < 0 {
		errs = append(errs, fmt.Errorf("step_threshold: %s must not be negative", b.StepThreshold))
	}
	return errors.Join(errs...)
}

// parseClockIdentity reads "001122.fffe.334455" (as pmc prints) or 16 hex
// digits.
func parseClockIdentity(s string) (protocol.ClockIdentity, error) {
	h := strings.ReplaceAll(s, ".", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 8 {
		return 0, fmt.Errorf("%q is not 8 octets in hex", s)
	}
	v, _ := strconv.ParseUint(h, 16, 64)
	return protocol.ClockIdentity(v), nil
}

// steerer moves the disciplined clock.
type steerer interface {
	Step(time.Duration) error
	SetFrequency(ppb float64) error
}

type softSteer struct{ *softClock }

func (s softSteer) Step(d time.Duration) error     { s.softClock.Step(d); return nil }
func (s softSteer) SetFrequency(ppb float64) error { s.softClock.SetFrequency(ppb); return nil }

// PI servo gains for software time stamps (see newServoLoop).
const (
	softwareKp = 0.1
	softwareKi = 0.008
)

// freqEstimate is how far apart the PI servo wants its first two samples
// (0.016 / ki seconds, in facebook/time's servo as in linuxptp's).
const freqEstimate = time.Duration(0.016 / softwareKi * float64(time.Second))

// maxFreqPPB bounds the servo's frequency correction: 500 ppm, the
// kernel's own limit for CLOCK_REALTIME and far beyond any crystal.
const maxFreqPPB = 500_000

// Builtin is a PTPv2 end-to-end slave over UDP/IPv4 that disciplines a
// software clock (or, if configured, the system clock).
type Builtin struct {
	*published
	cfg   BuiltinConfig
	clock *softClock
	steer steerer
	// inNamespace runs what opens the sockets and reads the interface:
	// tests run the slave in a network namespace; otherwise it just calls.
	inNamespace func(func() error) error
	// onSample, when set, sees every measurement (tests and benchmarks).
	onSample func(builtinSample)
	extra    atomic.Pointer[builtinStatus]
}

// builtinSample is one measurement as the servo loop handled it.
type builtinSample struct {
	at         time.Time     // local
	offset     time.Duration // disciplined clock − master, as measured
	delay      time.Duration
	correction time.Duration // disciplined − local at the Sync's arrival
	locked     bool          // the servo was locked and took the sample
}

// builtinStatus is what the run loop publishes beside the sample.
type builtinStatus struct {
	servo, stamping string
	messages        map[string]uint64
}

func newBuiltin(c Config, local LocalClock) *Builtin {
	b := &Builtin{published: newPublished(ModeBuiltin, event.TimePTP, c.Holdover), cfg: c.Builtin, clock: newSoftClock(local)}
	b.inNamespace = func(f func() error) error { return f() }
	b.steer = softSteer{b.clock}
	if c.Builtin.AdjustSystemClock {
		b.steer = kernelSteer{}
	}
	b.extra.Store(&builtinStatus{})
	return b
}

// Now is one local clock read, one atomic load for the correction and one
// for the synchronisation state.
func (b *Builtin) Now() (time.Time, event.Quality) {
	local, now := b.clock.Now()
	state, bound := b.hold.At(b.p.Load().sync, local)
	return now, event.Quality{Source: event.TimePTP, State: state, ErrorBound: bound}
}

// Status adds the software clock's correction to the published view.
func (b *Builtin) Status() Status {
	st := b.published.Status()
	local := b.clock.local.Now()
	st.CorrectionNS = int64(b.clock.Correction(local))
	st.FrequencyPPB = b.clock.Frequency()
	x := b.extra.Load()
	st.Servo, st.Timestamping, st.Messages = x.servo, x.stamping, x.messages
	return st
}

// Run follows the best master until ctx is done. Failing to open the
// sockets (interface missing or down) is retried: the clock stays
// free-running meanwhile and Status says why.
func (b *Builtin) Run(ctx context.Context) error {
	if b.cfg.AdjustSystemClock && !hasSysTime() {
		return fmt.Errorf("ptp: clock.builtin.adjust_system_clock: the process lacks CAP_SYS_TIME")
	}
	for {
		err := b.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		b.observe(Sample{At: b.clock.local.Now()}, Status{Error: err.Error()})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}

func (b *Builtin) identity() (protocol.PortIdentity, error) {
	if b.cfg.ClockIdentity != "" {
		id, err := parseClockIdentity(b.cfg.ClockIdentity)
		return protocol.PortIdentity{ClockIdentity: id, PortNumber: 1}, err
	}
	ifi, err := net.InterfaceByName(b.cfg.Interface)
	if err != nil {
		return protocol.PortIdentity{}, fmt.Errorf("ptp: builtin: interface %s: %w", b.cfg.Interface, err)
	}
	id, err := protocol.NewClockIdentity(ifi.HardwareAddr)
	if err != nil {
		return protocol.PortIdentity{}, fmt.Errorf("ptp: builtin: clock identity from %s: %w (set clock.builtin.clock_identity)", b.cfg.Interface, err)
	}
	return protocol.PortIdentity{ClockIdentity: id, PortNumber: 1}, nil
}

// reader feeds one socket's datagrams to the loop until the socket closes.
func reader(ctx context.Context, read func([]byte) (packet, error), out chan<- packet) {
	buf := make([]byte, 1500)
	for {
		p, err := read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // a failing socket must not spin
			continue
		}
		p.b = append([]byte(nil), p.b...)
		select {
		case out <- p:
		case <-ctx.Done():
			return
		}
	}
}

func (b *Builtin) run(ctx context.Context) error {
	var self protocol.PortIdentity
	var tr *transport
	if err := b.inNamespace(func() error {
		var err error
		if self, err = b.identity(); err != nil {
			return err
		}
		if tr, err = openTransport(ctx, b.cfg); err != nil {
			return fmt.Errorf("ptp: builtin: %w", err)
		}
		return nil
	}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer tr.close()
	var only netip.Addr
	if b.cfg.UnicastMaster != "" {
		only = netip.MustParseAddr(b.cfg.UnicastMaster)
	}
	s := newSlave(self, b.cfg.Domain, only, b.cfg.DelayFilterLength, uint16(rand.Uint32()))
	if only.IsValid() {
		s.uni = newUnicastState(b.cfg.UnicastGrantDuration, b.cfg.UnicastSyncInterval)
		s.fm.minInterval = logInterval(unicastAnnounceLog)
	}
	loop := newServoLoop(b, s, tr.stamping)

	pkts := make(chan packet, 64)
	go reader(ctx, tr.readEvent, pkts)
	go reader(ctx, tr.readGeneral, pkts)
	context.AfterFunc(ctx, tr.unblock)

	delayTimer := time.NewTimer(time.Second)
	defer delayTimer.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-pkts:
			local := b.clock.local.FromKernel(p.at)
			if m := s.handle(p.b, p.event, b.clock.correct(local), local, p.from.Unmap()); m != nil {
				loop.measured(m)
			}
		case <-delayTimer.C:
			if req := s.delayRequest(); req != nil {
				if t3, err := tr.send(req); err == nil {
					s.sent(b.clock.correct(b.clock.local.FromKernel(t3)))
				} else {
					loop.lastErr = err.Error()
				}
			}
			// IEEE 1588 9.5.11.2: uniformly random up to twice the
			// master's logMinDelayReqInterval, so slaves do not bunch.
			delayTimer.Reset(time.Duration(rand.Int64N(int64(2*s.delayInterval())) + 1))
		case <-tick.C:
			if req := s.unicastRequest(b.clock.local.Now()); req != nil {
				if err := tr.sendGeneral(req, netip.AddrPortFrom(only, 320)); err != nil {
					loop.lastErr = fmt.Sprintf("unicast request to %s: %v", only, err)
				}
			}
			if r := s.unicastRefused(); len(r) > 0 {
				loop.lastErr = fmt.Sprintf("unicast_master %s refused %s", only, strings.Join(r, ", "))
			} else if strings.HasPrefix(loop.lastErr, "unicast_master") {
				loop.lastErr = ""
			}
			loop.idle()
		}
	}
}

// servoLoop turns measurements into steering and published samples.
type servoLoop struct {
	b        *Builtin
	s        *slave
	pi       *servo.PiServo
	pcfg     *servo.PiServoCfg // the servo's gains, read again on SyncInterval
	interval time.Duration
	stamping string
	state    servo.State
	lastMeas time.Time // local time of the last measurement
	first    time.Time // local time of the servo's first sample
	lastErr  string
	offset   time.Duration
	delay    time.Duration
}

func newServoLoop(b *Builtin, s *slave, stamping string) *servoLoop {
	cfg := servo.DefaultServoConfig()
	cfg.FirstUpdate = true
	cfg.FirstStepThreshold = int64(b.cfg.FirstStepThreshold)
	cfg.StepThreshold = int64(b.cfg.StepThreshold)
	pcfg := servo.DefaultPiServoCfg()
	// facebook/time's defaults (kp 0.7, ki 0.3) suit hardware stamps;
	// software stamps carry microseconds of jitter that such gains pass
	// straight into the clock. linuxptp uses kp 0.1, ki 0.001 for software
	// stamps; ki 0.008 makes the first frequency estimate take 2 s, not 16.
	pcfg.PiKpScale, pcfg.PiKiScale = softwareKp, softwareKi
	pi := servo.NewPiServo(cfg, pcfg, 0)
	pi.SetMaxFreq(maxFreqPPB)
	servo.NewPiServoFilter(pi, servo.DefaultPiServoFilterCfg())
	l := &servoLoop{b: b, s: s, pi: pi, pcfg: pcfg, stamping: stamping}
	l.setInterval(time.Second)
	return l
}

// softwareGains puts the software-stamp gains back: the servo's resets
// (Unlock, its spike filter giving up) restore facebook/time's hardware
// gains (makePiFast).
func (l *servoLoop) softwareGains() {
	l.pcfg.PiKpScale, l.pcfg.PiKiScale = softwareKp, softwareKi
	l.pi.SyncInterval(l.interval.Seconds())
}

func (l *servoLoop) setInterval(d time.Duration) {
	if d != l.interval {
		l.interval = d
		l.pi.SyncInterval(d.Seconds())
	}
}

// measured runs the servo on one offset: step on a jump, otherwise set the
// frequency; a spike (an offset far outside recent spread, as a
// scheduling hiccup makes with software stamps) is skipped.
func (l *servoLoop) measured(m *measurement) {
	l.setInterval(l.s.syncInterval())
	l.lastMeas = m.local
	l.offset, l.delay = m.offset, m.delay
	spikes := l.s.counts[msgSpike]
	if l.b.onSample != nil {
		// Taken before this sample's steering: the correction that was
		// in force when the Sync arrived.
		defer func(corr time.Duration) {
			l.b.onSample(builtinSample{at: m.local, offset: m.offset, delay: m.delay, correction: corr,
				locked: l.state == servo.StateLocked && l.s.counts[msgSpike] == spikes})
		}(l.b.clock.Correction(m.local))
	}
	offset := int64(m.offset)
	if l.pi.IsSpike(offset) {
		l.s.counts[msgSpike]++
		if l.pi.GetState() == servo.StateInit {
			l.s.counts[msgServoReset]++
			l.softwareGains() // the filter gave up and reset the servo
		}
		l.publish(false)
		return
	}
	if l.pi.GetState() == servo.StateJump && m.local.Sub(l.first) < freqEstimate {
		// The servo estimates the frequency from two samples this far
		// apart; one sooner it would refuse (and log so through logrus).
		l.publish(false)
		return
	}
	ppb, state := l.pi.Sample(offset, uint64(m.local.UnixNano()))
	if state == servo.StateInit && l.pi.GetState() == servo.StateJump {
		l.first = m.local // the first of the two
	}
	l.state = state
	var err error
	switch state {
	case servo.StateJump:
		err = errors.Join(l.b.steer.SetFrequency(-ppb), l.b.steer.Step(-m.offset))
		l.s.forget()
	case servo.StateLocked:
		err = l.b.steer.SetFrequency(-ppb)
		l.pi.UnsetFirstUpdate()
	}
	if err != nil {
		l.lastErr = fmt.Sprintf("steering the clock: %v", err)
	}
	l.publish(state == servo.StateLocked)
}

// idle notices a master gone silent: no measurement for three Sync
// intervals (at least 2 s), or no master at all, is a sample without sync.
func (l *servoLoop) idle() {
	now := l.b.clock.local.Now()
	l.s.choose(now)
	silent := max(3*l.s.syncInterval(), 2*time.Second)
	if l.s.master == nil || l.lastMeas.IsZero() || now.Sub(l.lastMeas) > silent {
		if l.s.master == nil && l.state == servo.StateLocked {
			// Keep the last frequency (holdover) but relearn the offset
			// from scratch with the next master.
			l.pi.Unlock()
			l.softwareGains()
			l.state = servo.StateHoldover
		}
		l.publish(false)
	}
}

func (l *servoLoop) publish(synced bool) {
	st := Status{PortState: "LISTENING", Error: l.lastErr}
	if m := l.s.master; m != nil {
		st.Grandmaster = m.last.GrandmasterIdentity.String()
		st.GrandmasterPresent = true
		st.PortState = "UNCALIBRATED"
		if l.state == servo.StateLocked {
			st.PortState = "SLAVE"
		}
	}
	st.OffsetNS, st.PathDelayNS = int64(l.offset), int64(l.delay)
	l.b.extra.Store(&builtinStatus{servo: l.state.String(), stamping: l.stamping, messages: maps.Clone(l.s.counts)})
	l.b.observe(Sample{
		At:     l.b.clock.local.Now(),
		Synced: synced && l.s.master != nil,
		Offset: l.offset,
		// What is left after correction, plus the worst case of path
		// asymmetry: all of the delay one way.
		Bound: int64(l.offset.Abs() + l.delay),
	}, st)
}
