package seal

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeysEvolveAndForget(t *testing.T) {
	dir := t.TempDir()
	pub0, err := Provision(dir)
	require.NoError(t, err)
	_, err = Provision(dir)
	require.Error(t, err, "a second provisioning must not replace the key")

	k, err := OpenKeys(dir, 0, nil, false)
	require.NoError(t, err)
	require.Equal(t, uint64(0), k.Epoch())
	require.Equal(t, pub0, k.Public())
	seed0 := bytes.Clone(k.priv.Seed())

	next, err := k.Prepare()
	require.NoError(t, err)
	sig := k.Sign([]byte("head 0"))
	require.True(t, ed25519.Verify(pub0, []byte("head 0"), sig))
	require.NoError(t, k.Advance())
	require.Equal(t, uint64(1), k.Epoch())
	require.Equal(t, next, k.Public())

	// Epoch 0's private key is nowhere in the directory any more.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.False(t, bytes.Contains(b, seed0), "%s still holds epoch 0's key", e.Name())
	}
	require.NoFileExists(t, filepath.Join(dir, nextFile))
}

// Each place a kill can land in a seal's steps: after Prepare, after the
// seal is spooled, after the old key is zeroed.
func TestKeysRecoverFromKills(t *testing.T) {
	t.Run("prepared, seal not spooled", func(t *testing.T) {
		dir := t.TempDir()
		pub0, _ := Provision(dir)
		k, _ := OpenKeys(dir, 0, nil, false)
		_, err := k.Prepare()
		require.NoError(t, err)
		k, err = OpenKeys(dir, 0, nil, false)
		require.NoError(t, err)
		require.Equal(t, uint64(0), k.Epoch(), "the epoch was not sealed: it seals again")
		require.Equal(t, pub0, k.Public())
		require.NoFileExists(t, filepath.Join(dir, nextFile))
	})
	t.Run("seal spooled, key not erased", func(t *testing.T) {
		dir := t.TempDir()
		Provision(dir)
		k, _ := OpenKeys(dir, 0, nil, false)
		next, err := k.Prepare()
		require.NoError(t, err)
		k, err = OpenKeys(dir, 0, next, true)
		require.NoError(t, err)
		require.Equal(t, uint64(1), k.Epoch())
		require.Equal(t, next, k.Public())
	})
	t.Run("key zeroed, not replaced", func(t *testing.T) {
		dir := t.TempDir()
		Provision(dir)
		k, _ := OpenKeys(dir, 0, nil, false)
		next, err := k.Prepare()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, keyFile), make([]byte, keyFileSize), 0o600))
		k, err = OpenKeys(dir, 0, next, true)
		require.NoError(t, err)
		require.Equal(t, uint64(1), k.Epoch())
		require.Equal(t, next, k.Public())
	})
	t.Run("sealed but the next key is lost", func(t *testing.T) {
		dir := t.TempDir()
		Provision(dir)
		k, _ := OpenKeys(dir, 0, nil, false)
		next, _ := k.Prepare()
		require.NoError(t, os.Remove(filepath.Join(dir, nextFile)))
		_, err := OpenKeys(dir, 0, next, true)
		require.ErrorIs(t, err, ErrNewChain)
	})
	t.Run("damaged key", func(t *testing.T) {
		dir := t.TempDir()
		Provision(dir)
		b, _ := os.ReadFile(filepath.Join(dir, keyFile))
		b[12] ^= 1
		require.NoError(t, os.WriteFile(filepath.Join(dir, keyFile), b, 0o600))
		_, err := OpenKeys(dir, 0, nil, false)
		require.ErrorContains(t, err, "checksum")
	})
}

func TestKeysOfANewChain(t *testing.T) {
	dir := t.TempDir()
	Provision(dir)
	_, err := OpenKeys(dir, 7, make([]byte, 32), true)
	require.ErrorIs(t, err, ErrNewChain)
	k, err := OpenKeys(dir, 0, nil, false)
	require.NoError(t, err)
	require.Equal(t, uint64(0), k.Epoch())
}
