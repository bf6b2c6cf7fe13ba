package gateway

import (
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier speaks systemd's notify protocol (datagrams to NOTIFY_SOCKET)
// when the gateway runs under a unit with Type=notify: READY=1 once the
// spool is open and the sources run, WATCHDOG=1 on each healthy check
// when the unit sets WatchdogSec, STATUS= lines, RELOADING=1 while a
// reload runs (READY=1 again after it), STOPPING=1.
type notifier struct {
	on       bool
	watchdog time.Duration // WatchdogSec, when set for this process
	log      *slog.Logger
	once     sync.Once // the first failure is logged, not every ping's
}

func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{on: os.Getenv("NOTIFY_SOCKET") != "", log: log}
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings not understood; not pinging it", "err", err)
	}
	n.watchdog = d
	return n
}

func (n *notifier) send(state string) {
	if n == nil || !n.on {
		return
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.once.Do(func() { n.log.Warn("systemd notify failed", "socket", os.Getenv("NOTIFY_SOCKET"), "err", err) })
	}
}

// reloading tells systemd a reload started; READY=1 ends it.
func (n *notifier) reloading() {
	msg := "RELOADING=1"
	if us, ok := monotonicUsec(); ok {
		msg += "\nMONOTONIC_USEC=" + strconv.FormatUint(us, 10)
	}
	n.send(msg)
}
