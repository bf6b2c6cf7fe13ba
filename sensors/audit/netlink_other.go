//go:build !linux

package audit

import (
	"context"
	"errors"

	"github.com/weirgw/weir/event"
)

func openKernel(context.Context, *Reader, *msgQueue) (kernelStream, []event.Event, error) {
	return nil, nil, errors.New("audit: source netlink needs Linux")
}
