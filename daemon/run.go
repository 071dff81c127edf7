package daemon

import (
	"context"
	"errors"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/turku-backup/turku-storage/registry"
	"github.com/turku-backup/turku-storage/sshserver"
)

// resendInterval is how often undeliverable reports are retried.
const resendInterval = 5 * time.Minute

// run owns every goroutine of the daemon through one errgroup: the SSH
// server, its shutdown, the key refresh loop, the report resender, the
// SIGHUP handler and the built-in coordinator.
func (d *daemon) run(ctx context.Context, ln net.Listener) error {
	// gctx ends on SIGTERM/SIGINT; sessions run on until Shutdown's
	// deadline.
	grp, gctx := errgroup.WithContext(ctx)
	kick := make(chan struct{}, 1) // refresh the keys now
	d.w.machinesChanged = func() { poke(kick) }
	// abort closes what run was handed when a listener fails to start.
	abort := func(err error) error {
		ln.Close()
		d.ctl.Close()
		return err
	}
	coordAddr, err := d.serveHTTP(gctx, grp)
	if err != nil {
		return abort(err)
	}
	// The control socket answers until the last session is gone, so
	// status shows the backups a shutdown waits for.
	ctlCtx, stopControl := context.WithCancel(context.WithoutCancel(ctx))
	defer stopControl()
	// status shows the bound the slots enforce, which a reload sets.
	published := func() *bool { return d.cfg.Load().Published }
	if err := d.w.serveControl(ctlCtx, grp, d.ctl, d.state, d.w.slots.Limit, published); err != nil {
		return abort(err)
	}
	grp.Go(func() error {
		defer stopControl() // Serve returns once the last session is gone
		err := d.srv.Serve(context.WithoutCancel(ctx), ln)
		if errors.Is(err, sshserver.ErrServerClosed) {
			return nil
		}
		return err
	})
	grp.Go(func() error {
		<-gctx.Done()
		d.notify.stopping()
		d.shutdown(ctx, d.opts.ShutdownTimeout)
		return nil
	})
	d.loops(gctx, grp, kick)
	if d.opts.OnListen != nil {
		d.opts.OnListen(ln.Addr(), coordAddr)
	}
	err = grp.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		d.log.Info("stopped")
		return nil
	}
	return err
}

// loops starts under grp, until ctx ends, the daemon's background work:
// seeding the live state, READY=1, the orphan purge, the key refresh loop
// (at once and whenever kick is poked), the report resender and the
// SIGHUP handler.
func (d *daemon) loops(ctx context.Context, grp *errgroup.Group, kick chan struct{}) {
	resend := make(chan struct{}, 1) // resend the spooled reports now
	grp.Go(func() error { seedMonitor(ctx, d.state, d.w.cfg, d.log); return nil })
	grp.Go(func() error { d.readyOnceKeys(ctx); return nil })
	grp.Go(func() error { d.expireOrphans(ctx); return nil })
	grp.Go(func() error {
		d.reg.Loop(ctx, d.w.cfg.UpdateConfigInterval, kick, func(res *registry.Result) {
			d.srv.SetMachines(res.Machines)
			d.keysRefreshed(res.Machines, time.Now())
			d.state.KeyRefreshed(time.Now())
			d.loadedKeys(len(res.Machines))
			// The API answers again: what it could not take goes now.
			poke(resend)
			releaseRefreshGarbage(len(res.Machines))
		})
		return nil
	})
	grp.Go(func() error { d.resendLoop(ctx, resend); return nil })
	grp.Go(func() error { d.reloadLoop(ctx, kick); return nil })
}

// serveHTTP starts the HTTP servers under grp until ctx ends: the
// built-in coordinator first (when its address is taken, nothing else has
// started yet), /metrics and the dashboard, each when configured. It
// returns the coordinator's address, nil without one.
func (d *daemon) serveHTTP(ctx context.Context, grp *errgroup.Group) (net.Addr, error) {
	coordAddr, err := d.w.serveCoordinator(ctx, grp)
	if err != nil {
		return nil, err
	}
	metricsAddr, err := serveMetrics(ctx, grp, d.w.cfg.MetricsListen, d.state, d.log)
	if err != nil {
		return nil, err
	}
	webAddr, err := serveWeb(ctx, grp, d.opts.ConfigDir, d.w.cfg, d.state, d.w.history, d.log)
	if err != nil {
		return nil, err
	}
	if d.opts.OnMetrics != nil && metricsAddr != nil {
		d.opts.OnMetrics(metricsAddr)
	}
	if d.opts.OnWeb != nil && webAddr != nil {
		d.opts.OnWeb(webAddr)
	}
	return coordAddr, nil
}

// readyOnceKeys sends READY=1 once the machine keys are loaded, from the
// cache or the first refresh (the listener is bound before run), unless
// ctx ends first.
func (d *daemon) readyOnceKeys(ctx context.Context) {
	select {
	case <-d.keysLoaded:
		d.notify.ready()
	case <-ctx.Done():
	}
}

// poke wakes the loop waiting on c, unless it is already due to wake.
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// resendLoop resends the spooled reports at start, every
// resendInterval and when resend is poked, until ctx ends.
func (d *daemon) resendLoop(ctx context.Context, resend <-chan struct{}) {
	t := time.NewTicker(resendInterval)
	defer t.Stop()
	for {
		if err := d.w.reports.Resend(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("resending spooled reports failed", "err", err)
		}
		d.log.Debug("report spool checked")
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-resend:
		}
	}
}
