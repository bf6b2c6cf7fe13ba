//go:build !linux

package ptp

import (
	"errors"
	"time"
)

type kernelSteer struct{}

var errNoSteer = errors.New("steering the system clock needs Linux")

func (kernelSteer) Step(time.Duration) error   { return errNoSteer }
func (kernelSteer) SetFrequency(float64) error { return errNoSteer }

func hasSysTime() bool { return false }
