//go:build !linux

package spool

import "os"

// preallocate gives f n bytes of real blocks by writing zeros.
func preallocate(f *os.File, n int64) error { return writeZeros(f, n) }
