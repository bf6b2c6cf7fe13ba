//go:build !linux

package gateway

// monotonicUsec: systemd is Linux's; elsewhere there is nobody to tell.
func monotonicUsec() (uint64, bool) { return 0, false }
