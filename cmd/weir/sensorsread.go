package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/sensors/modbus/poll"
	"github.com/weirgw/weir/sensors/serialport"
)

func newSensorsReadCmd(g *globals) *cobra.Command {
	var (
		socket  string
		asJSON  bool
		direct  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "read DEVICE",
		Short: "Read a Modbus device once and print its decoded values and the raw frames (through the running daemon, or --direct)",
		Long: "Reads every register of DEVICE once. By default the running gateway does the read between its polls " +
			"(through the admin socket), so the bus is never shared. With --direct, for when the daemon is not " +
			"running, weir opens the device's bus itself from the configuration; it refuses a line another process " +
			"(the daemon, minicom...) holds, naming that process.",
		Args: argNamed("DEVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			var r *poll.ReadResult
			if direct {
				l, err := g.load(cmd)
				if err != nil {
					return err
				}
				p, err := poll.New(l.Inputs.Modbus, newLogger(l.Log), nil)
				if err != nil {
					return err
				}
				if r, err = p.ReadDirect(ctx, args[0]); err != nil {
					if inUse := (*serialport.InUseError)(nil); errors.As(err, &inUse) {
						return fmt.Errorf("%w: --direct needs the line to itself (without --direct the running daemon does the read)", err)
					}
					return err
				}
			} else {
				socket, err := g.socket(cmd, socket)
				if err != nil {
					return err
				}
				if r, err = gateway.ReadSensor(ctx, socket, args[0]); err != nil {
					return fmt.Errorf("%w (with the daemon stopped, use --direct)", err)
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, r, true)
			}
			printRead(out, r)
			if r.Error != "" {
				return fmt.Errorf("read %s failed: %s", r.Device, r.Error)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "admin socket (default: from the configuration)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&direct, "direct", false, "open the bus directly instead of asking the running daemon")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	return cmd
}

func printRead(w io.Writer, r *poll.ReadResult) {
	printf(w, "device %s  unit %d  on bus %s (%s)", r.Device, r.Unit, r.Bus, r.Line)
	if r.RoundTrip != "" {
		printf(w, "  round trip %s", r.RoundTrip)
	}
	printf(w, "\n")
	for _, v := range r.Values {
		unit := ""
		if v.Unit != "" {
			unit = " " + v.Unit
		}
		printf(w, "  %-24s %s%s\n", v.Name, v.Text, unit)
	}
	printf(w, "requests:\n")
	for _, a := range r.Attempts {
		printf(w, "  %-40s %s", a.Request, a.Verdict)
		if a.Error != "" && a.Verdict != "ok" {
			printf(w, ": %s", a.Error)
		}
		printf(w, "\n")
	}
	printf(w, "frames:\n")
	for _, f := range r.Frames {
		printf(w, "  %s %s  %s\n", f.At.Format("15:04:05.000000"), f.Dir, spacedHex(f.Hex))
	}
	if r.Error != "" {
		printf(w, "error: %s\n", r.Error)
	}
}

func spacedHex(h string) string {
	b := make([]byte, 0, len(h)*3/2)
	for i := 0; i+1 < len(h); i += 2 {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, h[i], h[i+1])
	}
	return string(b)
}
