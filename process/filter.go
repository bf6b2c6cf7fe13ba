package process

import (
	"strings"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

// filter is drop (the records m matches) or keep (only those).
type filter struct {
	m     *match.Matcher
	keep  bool
	allow bool
}

func newFilter(c *FilterConfig, keep bool, errs *[]error) processor {
	return &filter{m: matchErrs(c.Match, errs), keep: keep, allow: c.AllowCritical}
}

func (f *filter) apply(e *event.Event) verdict {
	if f.m.Match(e) == f.keep || !f.allow && Critical(e) {
		return pass
	}
	return drop
}

// sampler keeps 1 in every, or per each interval, per key.
type sampler struct {
	m        *match.Matcher
	every    uint64
	per      uint64
	interval int64
	key      string
	maxKeys  int
	allow    bool
	counts   map[string]*sampleCount
	overflow sampleCount
}

type sampleCount struct {
	n     uint64
	start int64 // the interval's start, record time
}

const defaultMaxKeys = 10000

func newSampler(c *SampleConfig, errs *[]error) processor {
	s := &sampler{m: matchErrs(c.Match, errs), key: c.Key, maxKeys: c.MaxKeys, allow: c.AllowCritical,
		counts: map[string]*sampleCount{}}
	switch {
	case c.Every < 0:
		*errs = append(*errs, keyErr("every", "%d is negative", c.Every))
	case c.Per < 0:
		*errs = append(*errs, keyErr("per", "%d is negative", c.Per))
	case c.Every > 0 && (c.Per > 0 || c.Interval > 0):
		*errs = append(*errs, keyErr("every", "with per/interval: give one in every, or per and interval"))
	case c.Every > 0:
		s.every = uint64(c.Every)
	case c.Per > 0 && c.Interval <= 0:
		*errs = append(*errs, keyErr("interval", "per %d needs an interval above 0 (\"1m\")", c.Per))
	case c.Per > 0:
		s.per, s.interval = uint64(c.Per), int64(c.Interval)
	default:
		*errs = append(*errs, keyErr("every", "missing: keep 1 in every N, or per N records each interval"))
	}
	if c.MaxKeys < 0 {
		*errs = append(*errs, keyErr("max_keys", "%d is negative", c.MaxKeys))
	}
	if s.maxKeys == 0 {
		s.maxKeys = defaultMaxKeys
	}
	return s
}

func (s *sampler) apply(e *event.Event) verdict {
	if !s.m.Match(e) || !s.allow && Critical(e) {
		return pass
	}
	k := e.Source
	if s.key != "" {
		k = ""
		if f := fieldOf(e, s.key); f != nil {
			k = f.Value.Str
			if f.Value.Type != event.TypeString && f.Value.Type != event.TypeBytes {
				k = f.Value.String()
			}
		}
	}
	c := s.counts[k]
	if c == nil {
		if len(s.counts) >= s.maxKeys {
			c = &s.overflow
		} else {
			c = &sampleCount{start: e.Time}
			s.counts[strings.Clone(k)] = c
		}
	}
	if s.every > 0 {
		c.n++
		if c.n == 1 {
			return pass
		}
		if c.n == s.every {
			c.n = 0
		}
		return drop
	}
	if e.Time-c.start >= s.interval || e.Time < c.start {
		c.start, c.n = e.Time, 0
	}
	c.n++
	if c.n <= s.per {
		return pass
	}
	return drop
}

// fieldOf is e's first field named key.
func fieldOf(e *event.Event, key string) *event.Field {
	for i := range e.Fields {
		if e.Fields[i].Key == key {
			return &e.Fields[i]
		}
	}
	return nil
}
