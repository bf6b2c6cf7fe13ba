package board_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/board"
)

// TestWatchdogOnFIFO opens a FIFO as the watchdog device: each kick is a
// byte on it, and a clean close ends with the magic 'V'. A FIFO takes no
// WDIOC_SETTIMEOUT, which the status notes.
func TestWatchdogOnFIFO(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "watchdog")
	require.NoError(t, syscall.Mkfifo(dev, 0o600))
	r, err := os.OpenFile(dev, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	require.NoError(t, err)
	defer r.Close()

	w, present, err := board.OpenWatchdog(dev, 10*time.Second)
	require.NoError(t, err)
	require.True(t, present)
	require.NoError(t, w.Kick())
	require.NoError(t, w.Kick())
	st := w.Status()
	require.Equal(t, uint64(3), st.Kicks, "the open kicks once, then two kicks")
	require.Contains(t, st.Note, "WDIOC_SETTIMEOUT 10s")
	require.Empty(t, st.Timeout)
	require.NoError(t, w.Close(true))
	require.NoError(t, w.Close(true), "a second close is a no-op")

	var got []byte
	buf := make([]byte, 16)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if n == 0 || err != nil {
			break
		}
	}
	require.Equal(t, "kkkV", string(got))
	require.Error(t, w.Kick(), "kick after close")
}

func TestWatchdogAbsentOrUnusable(t *testing.T) {
	dir := t.TempDir()
	w, present, err := board.OpenWatchdog(filepath.Join(dir, "none"), time.Second)
	require.NoError(t, err, "no device is not an error")
	require.False(t, present)
	require.Nil(t, w)

	_, present, err = board.OpenWatchdog(dir, time.Second) // a directory cannot be written
	require.True(t, present)
	require.ErrorContains(t, err, "board: watchdog "+dir)
}
