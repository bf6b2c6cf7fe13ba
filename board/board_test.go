package board_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/board/boardtest"
)

// openSim opens a sim board with f applied to its configuration and runs
// it until the test ends; tamper events arrive on the returned channel.
func openSim(t *testing.T, f func(*board.Config)) (*board.Board, <-chan board.TamperEvent) {
	t.Helper()
	cfg := board.DefaultConfig()
	cfg.Profile = "sim"
	if f != nil {
		f(&cfg)
	}
	b, err := board.Open(cfg, nil)
	require.NoError(t, err)
	events := make(chan board.TamperEvent, 16)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.Run(ctx, func(ev board.TamperEvent) { events <- ev }) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		require.NoError(t, b.Close())
	})
	return b, events
}

// TestLEDPatternsOnPins sets each pattern and reads it back from the
// simulated pin by watching its level, as a technician watches the LED.
func TestLEDPatternsOnPins(t *testing.T) {
	for _, active := range []board.Level{board.High, board.Low} {
		t.Run(string(active), func(t *testing.T) {
			b, _ := openSim(t, func(c *board.Config) { c.LEDs.Active = active })
			on := gpio.Level(active == board.High)
			pins := map[board.LED]string{board.LEDPower: "power_led", board.LEDLink: "link_led",
				board.LEDSpool: "spool_led", board.LEDAlert: "alert_led"}
			want := map[board.LED]board.Pattern{board.LEDPower: board.On, board.LEDLink: board.Fast,
				board.LEDSpool: board.Slow, board.LEDAlert: board.Off}
			for l, p := range want {
				b.SetLED(l, p, "test")
			}
			var wg sync.WaitGroup
			got := make(map[board.LED]board.Pattern)
			var mu sync.Mutex
			for l := range want {
				wg.Go(func() {
					p := boardtest.Watch(b.Sim().Pin(pins[l]), on, 0)
					mu.Lock()
					got[l] = p
					mu.Unlock()
				})
			}
			wg.Wait()
			require.Equal(t, want, got)
			st := b.Status()
			require.Len(t, st.LEDs, 4)
			require.Equal(t, "link", st.LEDs[1].Name)
			require.Equal(t, board.Fast, st.LEDs[1].Pattern)
		})
	}
}

// TestTamperDebounced: a bouncing contact makes one event per opening and
// one per closing.
func TestTamperDebounced(t *testing.T) {
	b, events := openSim(t, func(c *board.Config) { c.Tamper.Debounce = 30 * time.Millisecond })
	pin := b.Sim().Pin("tamper")
	bounce := func(final gpio.Level) {
		for _, l := range []gpio.Level{final, !final, final, !final, final} {
			pin.EdgesChan <- l
			time.Sleep(2 * time.Millisecond)
		}
	}
	bounce(gpio.High) // open_level high: opened
	ev := <-events
	require.True(t, ev.Open)
	require.False(t, ev.AtStart)
	require.Equal(t, uint64(1), ev.Openings)
	bounce(gpio.Low)
	ev = <-events
	require.False(t, ev.Open)
	require.Equal(t, uint64(1), ev.Closings)
	select {
	case ev := <-events:
		t.Fatalf("one opening and one closing made a third event: %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}
	st := b.Status().Tamper
	require.NotNil(t, st)
	require.Equal(t, "sim-tamper", st.Pin)
	require.False(t, st.Open)
	require.Equal(t, uint64(1), st.Openings)
	require.Equal(t, uint64(1), st.Closings)
}

// TestTamperPolarity: with open_level low, the low level is the opening.
func TestTamperPolarity(t *testing.T) {
	b, events := openSim(t, func(c *board.Config) { c.Tamper.OpenLevel = board.Low; c.Tamper.Pull = "down" })
	require.False(t, b.TamperOpen())
	b.Sim().Pin("tamper").EdgesChan <- gpio.Low
	ev := <-events
	require.True(t, ev.Open)
	require.True(t, b.TamperOpen())
}

// TestSimDir drives the tamper input through <dir>/tamper and reads the
// LEDs from <dir>/leds, as the demo does.
func TestSimDir(t *testing.T) {
	dir := t.TempDir()
	b, events := openSim(t, func(c *board.Config) { c.Sim.Dir = dir })
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tamper"), []byte("open\n"), 0o600))
	select {
	case ev := <-events:
		require.True(t, ev.Open)
	case <-time.After(5 * time.Second):
		t.Fatal("writing open to the sim's tamper file made no event")
	}
	b.SetLED(board.LEDLink, board.Fast, "down")
	leds, err := os.ReadFile(filepath.Join(dir, "leds"))
	require.NoError(t, err)
	require.Contains(t, string(leds), "link fast\n")
}

func TestPinsOfMissingHardware(t *testing.T) {
	if _, err := os.Stat("/dev/gpiochip0"); err == nil {
		t.Skip("this host has GPIO chips; the test wants one without")
	}
	cfg := board.DefaultConfig()
	cfg.Profile = "raspberrypi4"
	_, err := board.Open(cfg, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "board: pins.power_led: GPIO5: no GPIO chip gpiochip0 on this host")
	cfg.Profile = "generic"
	cfg.Pins = board.Pins{Tamper: "DOOR"}
	_, err = board.Open(cfg, nil)
	require.ErrorContains(t, err, "board: pins.tamper: DOOR: no GPIO line of that name on this host")
	cfg.Pins = board.Pins{AlertLED: "led:red"}
	_, err = board.Open(cfg, nil)
	require.ErrorContains(t, err, "board: pins.alert_led: led:red: no such LED in /sys/class/leds")
}
