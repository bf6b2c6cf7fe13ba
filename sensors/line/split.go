package line

import "github.com/weirgw/weir/event"

// lineState is the line being assembled across reads.
type lineState struct {
	line []byte
	part int  // pieces of the current line already emitted (overlong)
	cr   bool // lf, crlf: a "\r" seen, not yet known to be (part of) a terminator
}

// take splits p into lines, appending their records to batch. Lines end at
// the configured terminator; with lf a "\r" before the "\n" is dropped and
// with cr a "\n" after the "\r" (instruments that send "\r\n" anyway).
// Empty lines carry nothing and make no record. With lf and crlf a "\r"
// waits for the next byte before it joins the line, so a line of exactly
// max_line_length ended by "\r\n" is not cut as overlong.
func (s *Sensor) take(st *lineState, p []byte, batch []event.Event, at stamp) []event.Event {
	for _, b := range p {
		switch s.cfg.Terminator {
		case TermLF:
			if st.cr {
				st.cr = false
				if b == '\n' {
					batch = s.endLine(st, batch, at)
					continue
				}
				batch = s.addByte(st, batch, '\r', at)
			}
			switch b {
			case '\r':
				st.cr = true
				continue
			case '\n':
				batch = s.endLine(st, batch, at)
				continue
			}
		case TermCR:
			if b == '\r' {
				batch = s.endLine(st, batch, at)
				st.cr = true
				continue
			}
			if b == '\n' && st.cr && len(st.line) == 0 && st.part == 0 {
				st.cr = false
				continue
			}
			st.cr = false
		case TermCRLF:
			if st.cr {
				st.cr = false
				if b == '\n' {
					batch = s.endLine(st, batch, at)
					continue
				}
				batch = s.addByte(st, batch, '\r', at)
			}
			if b == '\r' {
				st.cr = true
				continue
			}
		}
		batch = s.addByte(st, batch, b, at)
	}
	return batch
}

// addByte appends b to the line, first emitting the line as an overlong
// piece if it is full.
func (s *Sensor) addByte(st *lineState, batch []event.Event, b byte, at stamp) []event.Event {
	if len(st.line) >= s.cfg.MaxLineLength {
		st.part++
		batch = append(batch, s.record(st.line, lineFlags{overlong: true, part: st.part}, at))
		st.line = st.line[:0]
	}
	st.line = append(st.line, b)
	return batch
}

// endLine emits the line at a terminator.
func (s *Sensor) endLine(st *lineState, batch []event.Event, at stamp) []event.Event {
	return s.finish(st, batch, at, false)
}

// cutLine emits what was read of a line whose terminator will never come
// (shutdown, port reopened), flagged partial.
func (s *Sensor) cutLine(st *lineState, batch []event.Event, at stamp) []event.Event {
	if st.cr && s.cfg.Terminator != TermCR { // with cr, st.cr is a terminator already taken
		batch = s.addByte(st, batch, '\r', at)
	}
	st.cr = false
	return s.finish(st, batch, at, true)
}

func (s *Sensor) finish(st *lineState, batch []event.Event, at stamp, partial bool) []event.Event {
	if len(st.line) == 0 && st.part == 0 {
		return batch
	}
	fl := lineFlags{partial: partial}
	if st.part > 0 {
		fl.overlong, fl.part = true, st.part+1
	}
	batch = append(batch, s.record(st.line, fl, at))
	st.line, st.part = st.line[:0], 0
	return batch
}
