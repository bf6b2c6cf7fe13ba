package main

import (
	"fmt"
	"os"
	"testing"
)

// binDir holds the weir-collector binary the tests build once and share
// (collectorBinary); it outlives every test of the package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weir-collector-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
