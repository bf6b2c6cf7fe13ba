// Command vulnfixture decodes a zstd frame the way the collector does, with
// a github.com/klauspost/compress release that has advisory GO-2026-6865:
// scripts/test-vuln.sh checks that govulncheck reports it as reachable.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer dec.Close()
	out, err := dec.DecodeAll(in, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
