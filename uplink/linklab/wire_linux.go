package linklab

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// openTUN creates the TUN interface Iface in namespace ns (the interface
// lives where the ioctl runs) and returns its packet file.
func openTUN(ns Namespace) (*os.File, error) {
	var f *os.File
	err := ns.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		req, err := unix.NewIfreq(Iface)
		if err != nil {
			unix.Close(fd)
			return err
		}
		req.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, req); err != nil {
			unix.Close(fd)
			return fmt.Errorf("create tun %s: %w", Iface, err)
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return err
		}
		f = os.NewFile(uintptr(fd), "tun:"+ns.Name) // non-blocking: served by the runtime's poller
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("linklab: tun in %s: %w", ns.Name, err)
	}
	return f, nil
}

// wire joins two TUN devices, holding each packet for a fixed delay each
// way: a line with latency, which veth cannot have and netem (absent from
// this kernel) would otherwise give. With a rate, each way is also a
// bottleneck sending that many bytes/s from a drop-tail queue of queue
// bytes.
type wire struct {
	a, b  *os.File
	delay time.Duration
	rate  int64
	queue int
	wg    sync.WaitGroup
}

// wireQueue bounds the packets held per direction (a router's buffer);
// past it packets are dropped, as a full queue drops them.
const wireQueue = 8192

func startWire(a, b *os.File, delay time.Duration, rate int64, queue int) *wire {
	w := &wire{a: a, b: b, delay: delay, rate: rate, queue: queue}
	w.wg.Add(4)
	for _, d := range [][2]*os.File{{a, b}, {b, a}} {
		q := make(chan heldPacket, wireQueue)
		go w.read(d[0], q)
		go w.write(q, d[1])
	}
	return w
}

type heldPacket struct {
	due time.Time
	b   []byte
}

func (w *wire) read(from *os.File, q chan<- heldPacket) {
	defer w.wg.Done()
	defer close(q)
	buf := make([]byte, 65536)
	var busy time.Time // when the bottleneck has sent what it holds
	for {
		n, err := from.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			continue
		}
		sent := time.Now()
		if w.rate > 0 {
			busy = later(busy, sent)
			if float64(n)+busy.Sub(sent).Seconds()*float64(w.rate) > float64(w.queue) {
				continue // the queue is full: tail drop
			}
			busy = busy.Add(time.Duration(float64(n) / float64(w.rate) * float64(time.Second)))
			sent = busy
		}
		p := heldPacket{due: sent.Add(w.delay), b: append([]byte(nil), buf[:n]...)}
		select {
		case q <- p:
		default: // queue full: tail drop
		}
	}
}

func (w *wire) write(q <-chan heldPacket, to *os.File) {
	defer w.wg.Done()
	for p := range q {
		if d := time.Until(p.due); d > 0 {
			time.Sleep(d)
		}
		_, _ = to.Write(p.b) // a closed device or a full kernel queue loses the packet
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (w *wire) Close() error {
	err := errors.Join(w.a.Close(), w.b.Close())
	w.wg.Wait()
	return err
}

// makeWire creates the TUN pair and starts the wire between them.
func (l *Lab) makeWire() error {
	a, err := openTUN(l.Gateway)
	if err != nil {
		return err
	}
	b, err := openTUN(l.Collector)
	if err != nil {
		a.Close()
		return err
	}
	l.wire = startWire(a, b, l.delay, l.rate, l.queue)
	return nil
}
