//go:build !linux

package serialport

// lineLock is a no-op off Linux, where Weir does not run; it keeps the
// package building.
type lineLock struct{}

func lockLine(string, string) (*lineLock, error) { return &lineLock{}, nil }

func (*lineLock) release() {}

const uucpLockDir = ""
