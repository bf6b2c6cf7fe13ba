package main

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// errIdle ends a session nobody typed in for console.idle_timeout.
var errIdle = errors.New("idle")

// idleReader reads its source in a goroutine and fails a Read that waits
// longer than the idle timeout, or past ctx. A read deadline would do the
// same on a tty the poller serves, but not on a pipe or a terminal on
// stdin; this works on all. The goroutine stays blocked in the source's
// Read after the session ends until the source is closed (a tty) or the
// process exits (stdin).
type idleReader struct {
	ctx     context.Context
	timeout time.Duration
	data    chan []byte
	done    chan struct{}

	mu      sync.Mutex
	pending []byte
	readErr error // the source's error, once data is drained
	last    error // why the last Read failed
}

func newIdleReader(ctx context.Context, src io.Reader, timeout time.Duration) *idleReader {
	r := &idleReader{ctx: ctx, timeout: timeout, data: make(chan []byte), done: make(chan struct{})}
	go r.pump(src)
	return r
}

func (r *idleReader) pump(src io.Reader) {
	buf := make([]byte, 256)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case r.data <- append([]byte(nil), buf[:n]...):
			case <-r.done:
				return
			}
		}
		if err != nil {
			r.mu.Lock()
			r.readErr = err
			r.mu.Unlock()
			close(r.data)
			return
		}
	}
}

// stop lets the goroutine go once its source's Read returns.
func (r *idleReader) stop() { close(r.done) }

func (r *idleReader) Read(p []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	t := time.NewTimer(r.timeout)
	defer t.Stop()
	select {
	case b, ok := <-r.data:
		if !ok {
			r.mu.Lock()
			err := r.readErr
			r.mu.Unlock()
			return 0, r.fail(err)
		}
		n := copy(p, b)
		r.pending = b[n:]
		return n, nil
	case <-t.C:
		return 0, r.fail(errIdle)
	case <-r.ctx.Done():
		return 0, r.fail(r.ctx.Err())
	}
}

func (r *idleReader) fail(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = err
	return err
}

// err is why reading stopped (nil while it has not).
func (r *idleReader) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}
