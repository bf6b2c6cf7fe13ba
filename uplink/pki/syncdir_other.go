//go:build !unix

package pki

// syncDir is a no-op where directories cannot be synced.
func syncDir(string) error { return nil }
