package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

type options struct {
	kernel, initrd string // the board's kernel and base initramfs
	weir           string // a weir for this host: passwd --stdin
	collector, sim string // weir-collector and weir-sim for this host
	work           string // where the run's files and logs go
	cuts           int    // power cuts after the first boot
	seed           uint64 // for the cuts' moments; 0: from the clock
	bootTimeout    time.Duration
	smp            int
}

func main() {
	var o options
	flag.StringVar(&o.kernel, "kernel", "", "the board's kernel (Debian's arm64 vmlinuz)")
	flag.StringVar(&o.initrd, "initrd", "", "the board's initramfs (buildroot/smoke/initramfs.sh)")
	flag.StringVar(&o.weir, "weir", "bin/weir", "weir for this host (weir passwd --stdin)")
	flag.StringVar(&o.collector, "collector", "bin/weir-collector", "weir-collector for this host")
	flag.StringVar(&o.sim, "sim", "bin/weir-sim", "weir-sim for this host (the Modbus device)")
	flag.StringVar(&o.work, "work", "", "directory for the run's files and logs (default: a new one in /tmp)")
	flag.IntVar(&o.cuts, "cuts", 10, "power cuts after the first boot")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the cuts' moments (0: from the clock; printed, to run the same cuts again)")
	flag.DurationVar(&o.bootTimeout, "boot-timeout", 3*time.Minute, "from power on to the console's login prompt")
	flag.IntVar(&o.smp, "smp", 2, "the board's CPUs")
	flag.Parse()
	if o.kernel == "" || o.initrd == "" {
		fmt.Fprintln(os.Stderr, "smoke: -kernel and -initrd are required (make image-smoke gives them)")
		os.Exit(2)
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "image-smoke: FAILED: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	var err error
	if o.work == "" {
		if o.work, err = os.MkdirTemp("", "weir-image-smoke."); err != nil {
			return err
		}
	} else if err = os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	for _, p := range []*string{&o.kernel, &o.initrd, &o.weir, &o.collector, &o.sim} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	s := &smoke{opt: o, steps: newSteps(), rng: rand.New(rand.NewPCG(o.seed, o.seed^0x5eed))}
	defer s.cleanup()
	s.steps.say("work directory %s (console, QEMU, gateway-side logs), seed %d", o.work, o.seed)
	if err := s.prepare(ctx); err != nil {
		return err
	}
	if err := s.firstBoot(ctx); err != nil {
		return err
	}
	if err := s.powerCuts(ctx); err != nil {
		return err
	}
	return s.finish(ctx)
}
