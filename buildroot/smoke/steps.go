package main

import (
	"fmt"
	"time"
)

// steps prints each step with the time since the start and since the
// step before.
type steps struct {
	start, last time.Time
}

func newSteps() *steps {
	now := time.Now()
	return &steps{start: now, last: now}
}

func (s *steps) say(format string, args ...any) {
	now := time.Now()
	fmt.Printf("[%6.1fs %+6.1fs] %s\n", now.Sub(s.start).Seconds(), now.Sub(s.last).Seconds(), fmt.Sprintf(format, args...))
	s.last = now
}
