package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/turku-backup/turku-storage/sshserver"
)

// errShutdownDeadline is why sessions still running when the shutdown
// deadline passes end; the agent reads it.
var errShutdownDeadline = fmt.Errorf("%w deadline passed", sshserver.ErrShutdown)

// shutdown drains the SSH server: running sessions have until timeout,
// then are cancelled with errShutdownDeadline; a second SIGTERM/SIGINT
// cancels them at once. The reports of the last backups (a cancelled one's
// too) then get up to api_timeout to be answered; those still unanswered
// stay spooled for the next start.
func (d *daemon) shutdown(ctx context.Context, timeout time.Duration) {
	d.log.Info("shutting down: no new connections; waiting for running backups", "timeout", timeout)
	base, stopNow := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopNow(nil)
	sctx, cancel := context.WithTimeoutCause(base, timeout, errShutdownDeadline)
	defer cancel()
	if force := d.opts.Signals.Force; force != nil {
		defer context.AfterFunc(force, func() {
			d.log.Warn("second signal: stopping at once", "cause", context.Cause(force))
			stopNow(context.Cause(force))
		})()
	}
	// Said when the deadline fires, not when the cancelled sessions are
	// finally gone.
	defer context.AfterFunc(sctx, func() {
		if errors.Is(context.Cause(sctx), errShutdownDeadline) {
			d.log.Warn("shutdown deadline passed; cancelling running sessions", "timeout", timeout)
		}
	})()
	_ = d.srv.Shutdown(sctx) // its only error is sctx's, logged above
	rctx, rcancel := context.WithTimeout(base, d.w.cfg.APITimeout)
	defer rcancel()
	if err := d.w.reports.Wait(rctx); err != nil {
		d.log.Warn("reports still unanswered at shutdown; kept to resend at the next start", "err", err)
	}
	d.w.reports.Close()
}
