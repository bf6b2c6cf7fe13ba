// Command weir-sim is a simulated Modbus RTU sensor for demos and bench
// work: a pumping station's flow meter (the modbustest slave) answering on
// a serial line, e.g. one end of a socat pty pair, its values drifting.
//
//	weir-sim --device /dev/pts/7 --baud 19200 --unit 7
//
// Holding registers: 0-1 flow (float32, m3/h, ABCD), 2 level (uint16, mm),
// 3-4 total volume (uint32, m3, CDAB), 5 status bitfield (bit 0 running);
// coil 0 pump on.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/sensors/serialport"
)

func main() {
	device := flag.String("device", "", "serial line to answer on")
	baud := flag.Int("baud", 19200, "baud rate (8E1)")
	unit := flag.Int("unit", 7, "Modbus unit id")
	flag.Parse()
	if err := run(*device, *baud, byte(*unit)); err != nil {
		fmt.Fprintln(os.Stderr, "weir-sim:", err)
		os.Exit(1)
	}
}

func run(device string, baud int, unit byte) error {
	cfg := serialport.DefaultConfig()
	cfg.Device, cfg.Baud = device, baud
	p, err := serialport.Open(cfg, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := modbustest.New(unit, 16)
	go drift(ctx, s)
	fmt.Printf("weir-sim: unit %d answering on %s at %d baud\n", unit, device, baud)
	if err := s.ServeRTU(ctx, p); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// drift moves the simulated readings every 100 ms.
func drift(ctx context.Context, s *modbustest.Slave) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	var total uint32
	for {
		el := time.Since(start).Seconds()
		flow := float32(12 + 2*math.Sin(el/3))
		bits := math.Float32bits(flow)
		total += 1
		s.Lock()
		s.Holding[0], s.Holding[1] = uint16(bits>>16), uint16(bits)
		s.Holding[2] = uint16(1200 + 40*math.Cos(el/5))
		s.Holding[3], s.Holding[4] = uint16(total), uint16(total>>16) // CDAB
		s.Holding[5] = 1
		s.Coils[0] = true
		s.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
