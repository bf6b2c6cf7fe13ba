//go:build !unix

package console

import "os"

// flock does nothing where there is no flock(2): Weir runs on Linux; this
// keeps the package building elsewhere, with one console per directory.
func flock(*os.File) error { return nil }
