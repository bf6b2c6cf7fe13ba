package runprof

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// --cpuprofile and --blockprofile leave both profiles behind,
// each a gzipped pprof protobuf; a file that cannot be made is an error
// before the run starts.
func TestRunProfiles(t *testing.T) {
	dir := t.TempDir()
	cpu, block := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "block.pprof")
	end, err := Start(cpu, block)
	require.NoError(t, err)
	ch := make(chan int)
	go func() { ch <- 1 }()
	<-ch
	end(slog.New(slog.DiscardHandler))
	for _, p := range []string{cpu, block} {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.Greater(t, len(b), 2, p)
		require.Equal(t, []byte{0x1f, 0x8b}, b[:2], "%s is not gzipped", p)
	}

	_, err = Start(filepath.Join(dir, "missing", "cpu.pprof"), "")
	require.ErrorContains(t, err, "--cpuprofile")
}
