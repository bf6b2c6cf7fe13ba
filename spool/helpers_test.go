package spool

import "context"

// appendBytes appends normal-class records, the common case in tests.
func (s *Spool) appendBytes(recs [][]byte, cps []Checkpoint) (uint64, error) {
	entries := make([]Entry, len(recs))
	for i, r := range recs {
		entries[i] = Entry{Class: ClassNormal, Data: r}
	}
	return s.Append(context.Background(), entries, cps)
}
