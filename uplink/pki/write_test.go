package pki

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteAtomic(t *testing.T) {
	tests := []struct {
		name     string
		existing bool
		force    bool
		mode     fs.FileMode
		wantErr  bool
	}{
		{name: "new key", mode: 0o600},
		{name: "new cert", mode: 0o644},
		{name: "existing without force", existing: true, mode: 0o600, wantErr: true},
		{name: "existing with force", existing: true, force: true, mode: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.pem")
			if tt.existing {
				require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
			}
			err := writeAtomic(file{path: path, data: []byte("new"), mode: tt.mode}, tt.force)
			got, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			if tt.wantErr {
				require.ErrorIs(t, err, fs.ErrExist)
				require.ErrorContains(t, err, "pki: "+path+": file already exists")
				require.Equal(t, "old", string(got))
			} else {
				require.NoError(t, err)
				require.Equal(t, "new", string(got))
				requireMode(t, path, tt.mode)
			}
			requireNoTemp(t, dir)
		})
	}
}

func TestPlaceNewRace(t *testing.T) {
	// A file that appears after refuseExisting looked is still not replaced.
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	tmp := filepath.Join(dir, ".key.pem.tmp1")
	require.NoError(t, os.WriteFile(tmp, []byte("new"), 0o600))
	require.NoError(t, os.WriteFile(path, []byte("theirs"), 0o600))
	require.ErrorIs(t, placeNew(tmp, path), fs.ErrExist)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "theirs", string(got))

	require.NoError(t, os.Remove(path))
	require.NoError(t, placeNew(tmp, path))
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "new", string(got))
	_, err = os.Stat(tmp)
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestWriteFilesRollback(t *testing.T) {
	// When the certificate cannot be written, the key written before it is
	// removed again.
	dir := t.TempDir()
	key := filepath.Join(dir, "k.pem")
	cert := filepath.Join(dir, "missing", "c.pem")
	err := writeFiles(false,
		file{path: key, data: []byte("key"), mode: 0o600},
		file{path: cert, data: []byte("cert"), mode: 0o644},
	)
	require.ErrorContains(t, err, "pki: write "+cert)
	_, err = os.Stat(key)
	require.ErrorIs(t, err, fs.ErrNotExist)
	requireNoTemp(t, dir)
}
