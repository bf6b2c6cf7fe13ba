//go:build !linux

package ptp4ltest

import (
	"context"
	"testing"
)

func HoldHostClock(_ context.Context, t testing.TB) {
	t.Skip("ptp4ltest: ptp4l slaves need Linux")
}
