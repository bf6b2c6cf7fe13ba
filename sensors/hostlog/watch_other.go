//go:build !unix

package hostlog

func isNotDir(error) bool { return false }
