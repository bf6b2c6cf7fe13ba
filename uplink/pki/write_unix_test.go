//go:build unix

package pki

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestModesIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	dir := newPKI(t)
	certPath, keyPath, err := IssueGateway(dir, "gw1", testOpts())
	require.NoError(t, err)
	requireMode(t, filepath.Join(dir, CACertFile), 0o644)
	requireMode(t, certPath, 0o644)
	requireMode(t, keyPath, 0o600)
}
