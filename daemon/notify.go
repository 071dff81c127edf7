package daemon

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/turku-backup/turku-storage/internal/words"
	"github.com/turku-backup/turku-storage/monitor"
)

// notifier speaks systemd's sd_notify protocol (sd_notify(3)) when serve
// runs as a Type=notify unit (NOTIFY_SOCKET set); otherwise it does
// nothing.
type notifier struct {
	log   *slog.Logger
	state *monitor.State
}

func (n notifier) send(lines string) {
	if _, err := sd.SdNotify(false, lines); err != nil {
		n.log.Warn("systemd notification failed", "err", err)
	}
}

// status is the STATUS= line: what `systemctl status` shows.
func (n notifier) status() string {
	c := n.state.Counts()
	return fmt.Sprintf("STATUS=%s; %d checkin and %d restore sessions; %s running, %d waiting; %s spooled",
		words.Count(c.Machines, "machine", ""), c.Checkins, c.Restores, words.Count(c.Running, "backup", ""), c.Waiting, words.Count(c.Spooled, "report", ""))
}

// ready says the SSH listener accepts and the keys are loaded.
func (n notifier) ready() { n.send(sd.SdNotifyReady + "\n" + n.status()) }

// reloading starts a SIGHUP reload; ready ends it. MONOTONIC_USEC lets
// Type=notify-reload units match the two (systemd.service(5)).
func (n notifier) reloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	usec := ts.Nano() / 1000
	n.send(sd.SdNotifyReloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

func (n notifier) stopping() { n.send(sd.SdNotifyStopping) }

// heartbeat is called from the SSH server's accept loop: the watchdog
// ping when the unit has WatchdogSec, and a fresh STATUS= line.
func (n notifier) heartbeat(watchdog bool) {
	if watchdog {
		n.send(sd.SdNotifyWatchdog + "\n" + n.status())
		return
	}
	n.send(n.status())
}

// heartbeatInterval is how often the accept loop beats: half the
// watchdog timeout (sd_watchdog_enabled(3)), else every 10 s for STATUS=.
func heartbeatInterval(watchdog time.Duration) time.Duration {
	if watchdog > 0 {
		return watchdog / 2
	}
	return 10 * time.Second
}
