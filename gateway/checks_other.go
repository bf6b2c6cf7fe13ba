//go:build !unix

package gateway

import "errors"

var errUnknown = errors.New("not known on this platform")

func accessible(string, bool) error { return nil }

func freeSpace(string) (uint64, error) { return 0, errUnknown }
