// Package runprof starts and writes the pprof CPU and block profiles that
// `weir run` and `weir-collector run` take with --cpuprofile and
// --blockprofile, for `make bench`'s profiles of both ends of the path.
package runprof
