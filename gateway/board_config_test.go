package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/board"
)

func TestLoadBoard(t *testing.T) {
	l, err := Load(writeConfig(t, "gateway: {id: gw}"), true)
	require.NoError(t, err)
	require.Nil(t, l.Board, "no board unless configured")

	l, err = Load(writeConfig(t, `
board:
  profile: raspberrypi4
  pins: {tamper: GPIO21, alert_led: none}
  tamper: {debounce: 20ms}
  watchdog: {timeout: 15s}
`), true)
	require.NoError(t, err)
	want := board.DefaultConfig()
	want.Profile = "raspberrypi4"
	want.Pins = board.Pins{Tamper: "GPIO21", AlertLED: "none"}
	want.Tamper.Debounce = 20 * time.Millisecond
	want.Watchdog.Timeout = 15 * time.Second
	require.Equal(t, &want, l.Board)

	// The printed configuration loads back to the same one.
	out, err := yaml.Marshal(l.Redacted().Map())
	require.NoError(t, err)
	again, err := Load(writeConfig(t, string(out)), true)
	require.NoError(t, err, "printed:\n%s", out)
	require.Equal(t, l.Board, again.Board)
}

func TestLoadBoardErrors(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"board: {}", "board.profile: empty; one of beaglebone-black, generic, raspberrypi4, sim"},
		{"board: {profile: raspberrypi5}", `board.profile: "raspberrypi5" is not a known board`},
		{"board: {profile: raspberrypi4, pins: {tamper: GPIO40}}", `board.pins.tamper: "GPIO40" is not a GPIO of the raspberrypi4 header`},
		{"board: {profile: beaglebone-black, pins: {rs485_de: P9_99}}", `board.pins.rs485_de: "P9_99" is not a GPIO`},
		{"board: {profile: sim, pins: {door: x}}", "board.pins: unknown key `door`"},
		{"board: {profile: sim, watchdog: {interval: 1m}}", "board.watchdog.interval: 1m0s out of range"},
		{"board: {profile: sim, tamper: {debounce: soon}}", "debounce"},
	} {
		t.Run(c.body, func(t *testing.T) {
			_, err := Load(writeConfig(t, c.body), true)
			require.ErrorContains(t, err, c.want)
		})
	}
}
