package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/control"
	"github.com/turku-backup/turku-storage/monitor"
	"github.com/turku-backup/turku-storage/registry"
	"github.com/turku-backup/turku-storage/sshserver"
)

// resendInterval is how often undeliverable reports are retried.
const resendInterval = 5 * time.Minute

func newServeCmd(g *globals) *cobra.Command {
	var shutdownTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the storage unit: SSH server, API refresh and backups",
		Long: `Runs the storage unit daemon:

  - the embedded SSH server on ssh_listen (default :ssh_ping_port), which
    authenticates agents by the keys turku-api assigned to this storage unit;
  - a refresh of those keys (storage_update_config) every
    update_config_interval, and at once on SIGHUP; between refreshes and
    while the API is down, the keys cached in VAR_DIR/machines.json serve;
  - the backups agents ask for, into the configured volumes;
  - the built-in coordinator on coordinator_listen when no api_url is set.

SIGTERM or SIGINT stop accepting connections, let running backups finish
for up to --shutdown-timeout, then cancel them (the working tree is kept for
the next run and the failure is reported); a second SIGTERM or SIGINT
cancels them at once. SIGHUP re-reads the configuration (settings that need
a restart are named in the log and keep their running values) and
refreshes the keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), g, shutdownTimeout)
		},
	}
	cmd.Flags().DurationVar(&shutdownTimeout, "shutdown-timeout", 5*time.Minute, "how long running backups may finish after SIGTERM before they are cancelled")
	return cmd
}

// daemon is one running serve. The engine and the registrar's options are
// replaced on SIGHUP; a session keeps the engine it started with. What
// outlives a reload is held here or in w: the SSH server with its user and
// host keys, the backup slots and the report queue.
type daemon struct {
	g      *globals
	log    *slog.Logger
	w      *wiring
	srv    *sshserver.Server
	engine atomic.Pointer[backup.Engine]
	reg    *registry.Registrar
	// The live state (metrics.go, notify.go, control.go): /metrics, STATUS=
	// and the control socket ctl read it. keysLoaded is closed once the
	// machine keys came from the cache or the API.
	state      *monitor.State
	notify     notifier
	keysLoaded chan struct{}
	keysOnce   sync.Once
	volumes    atomic.Pointer[[]config.Volume] // the current configuration's, for metrics and status
	ctl        *control.Listener
	// hostKeys are advertised to the API for the daemon's life: the keys
	// the SSH server was started with (or ssh_ping_host_keys as read then).
	hostKeys []string
	// cfg is the configuration in force: the one serve started with, or
	// the last a reload accepted (w.cfg stays the first). The orphan
	// purge and status's published read it; status reads
	// max_concurrent_backups from the slots, which enforce it.
	cfg atomic.Pointer[config.Config]
	// expire wakes expireOrphans after each key refresh (orphans.go).
	expire chan struct{}
}

// loadedKeys records that n machines' keys are loaded.
func (d *daemon) loadedKeys(n int) {
	d.state.SetMachines(n)
	d.keysOnce.Do(func() { close(d.keysLoaded) })
}

// errShutdownDeadline is why sessions still running when the shutdown
// deadline passes end; the agent reads it.
var errShutdownDeadline = fmt.Errorf("%w deadline passed", sshserver.ErrShutdown)

// Pull implements sshserver.Puller with the current engine.
func (d *daemon) Pull(ctx context.Context, req sshserver.PullRequest) error {
	return d.engine.Load().Pull(ctx, backup.Request{
		Machine:     req.Machine,
		Credentials: req.Credentials,
		RsyncAddr:   req.RsyncAddr,
		Log:         req.Log,
	})
}

// serveGCPercent is serve's garbage-collection target unless GOGC is set.
// x/crypto allocates a fresh 32 KiB+ buffer for every SSH packet it reads,
// so at the default of 100 a 1 GiB transfer runs the collector ~476 times.
// Measured with 400 (docs/benchmarks.md): tunnel throughput 0.64x -> 0.81x
// of OpenSSH, idle RSS with 10,000 machines 39.8 -> 45.0 MiB.
const serveGCPercent = 400

// freeAfterRefreshAbove is the key set size from which a refresh is
// followed by a collection that returns its garbage to the system: the
// decoded reply of 100,000 machines is some 90 MiB that serveGCPercent
// would otherwise keep resident until the heap grew fourfold (idle RSS
// 350 MiB against a live heap of 86 MiB, docs/benchmarks.md (h)). One
// full collection per update_config_interval costs little at that size;
// below it the garbage is small and left to the collector.
const freeAfterRefreshAbove = 10000

// releaseRefreshGarbage returns a large refresh's garbage to the system.
func releaseRefreshGarbage(machines int) {
	if machines >= freeAfterRefreshAbove {
		debug.FreeOSMemory()
	}
}

func runServe(ctx context.Context, g *globals, shutdownTimeout time.Duration) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	boot, err := g.stderrLogger()
	if err != nil {
		return err
	}
	cfg, err := g.load(boot)
	if err != nil {
		return err
	}
	unlock, err := backup.LockVarDir(cfg.VarDir)
	if err != nil {
		return err
	}
	defer unlock()
	log, closeLog, err := g.daemonLogger(cfg.LogFile)
	if err != nil {
		return err
	}
	defer closeLog()

	w, err := newWiring(cfg, log)
	if err != nil {
		return err
	}
	defer w.Close()
	d := &daemon{g: g, log: log, w: w, keysLoaded: make(chan struct{}), expire: make(chan struct{}, 1)}
	d.volumes.Store(&cfg.Volumes)
	d.cfg.Store(cfg)
	// The report queue is built below; a scrape comes only once the
	// metrics server runs, after it.
	w.monitor = newMonitor(cfg, func() []config.Volume { return *d.volumes.Load() }, func() backup.SpoolUsage { return w.reports.Usage() })
	d.state = w.monitor
	d.state.ConfigLoaded(true, time.Now())
	d.notify = notifier{log: log, state: d.state}
	watchdog, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings unreadable; not pinging it", "err", err)
	}
	signers, err := w.hostSigners()
	if err != nil {
		return err
	}
	d.hostKeys = w.advertisedKeys(signers)
	w.slots = backup.NewSlots(cfg.MaxConcurrentBackups)
	w.reports = backup.NewReports(backup.ReportsOptions{VarDir: cfg.VarDir, API: w.api, Logger: log, SlowAfter: cfg.APITimeout,
		MaxCount: cfg.ReportSpoolMaxCount, MaxBytes: cfg.ReportSpoolMaxBytes, SourceRemoved: w.monitor.SourceRemoved})
	defer w.reports.Close()
	engine, err := w.engine()
	if err != nil {
		return err
	}
	d.engine.Store(engine)
	secureAtStart(ctx, w, engine, log)
	checkVolumes(log, cfg.VarDir, cfg.Volumes, true)
	d.reg = registry.New(w.registrarOptions("", "", d.hostKeys))
	if d.srv, err = d.newSSHServer(cfg, signers, watchdog); err != nil {
		return err
	}
	d.loadCachedKeys()

	if d.ctl, err = control.Listen(cfg.ControlSocket); err != nil {
		return err
	}
	if cfg.ControlSocketLink != "" {
		if err := d.ctl.Link(cfg.ControlSocketLink); err != nil {
			log.Warn("status and restore run from a shell will not find the control socket", "control_socket", cfg.ControlSocket, "err", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.SSHListen)
	if err != nil {
		d.ctl.Close()
		return fmt.Errorf("ssh_listen: %w", err)
	}
	log.Info("serving", "version", versionString(), "ssh_listen", ln.Addr().String(),
		"storage", cfg.Name, "api", apiLabel(cfg.APIURL))
	return d.run(ctx, ln, shutdownTimeout)
}

// newSSHServer builds the SSH server from cfg; its heartbeat pings
// systemd's watchdog when watchdog is set.
func (d *daemon) newSSHServer(cfg *config.Config, signers []gossh.Signer, watchdog time.Duration) (*sshserver.Server, error) {
	return sshserver.New(sshserver.Options{
		HostSigners: signers,
		User:        cfg.SSHPingUser,
		StorageName: cfg.Name,
		Logger:      d.log,
		Puller:      d,
		Observer:    d.state,
		// Beats from the accept loop: the watchdog ping and STATUS=.
		Heartbeat:         func() { d.notify.heartbeat(watchdog > 0) },
		HeartbeatInterval: heartbeatInterval(watchdog),
		// Admission and session limits (docs/operations.md, "Facing the internet").
		MaxStartups:          sshserver.MaxStartups(cfg.SSHMaxStartups),
		PerSourceMaxStartups: cfg.SSHPerSourceMaxStartups,
		TrustedNetworks:      cfg.SSHTrustedNetworks,
		RestoreMaxLifetime:   cfg.RestoreMaxLifetime,
		// Per machine: one key must not starve the others.
		MaxConnectionsPerMachine: cfg.SSHMaxConnectionsPerMachine,
		MaxSessionsPerMachine:    cfg.SSHMaxSessionsPerMachine,
		SessionRequestTimeout:    cfg.SSHSessionRequestTimeout,
		TunnelPorts:              sshserver.PortRange{Min: uint32(cfg.TunnelPortRange.Min), Max: uint32(cfg.TunnelPortRange.Max)},
	})
}

// loadCachedKeys serves the machine keys of the cache until the first
// refresh, so agents are served while the API is down.
func (d *daemon) loadCachedKeys() {
	if c, err := registry.LoadCache(d.w.cachePath()); err == nil {
		d.srv.SetMachines(c.Machines)
		d.keysRefreshed(c.Machines, time.Now())
		d.state.KeysFromCache(c.Updated)
		d.loadedKeys(len(c.Machines))
		d.log.Info("loaded cached machine keys", "machines", len(c.Machines), "updated", c.Updated)
	} else if errors.Is(err, registry.ErrNoCache) {
		// A first start: the refresh that follows at once fills it.
		d.log.Info("no cached machine keys yet; agents are refused until the first refresh succeeds")
	} else {
		d.log.Error("cached machine keys unusable; agents are refused until the first refresh succeeds", "err", err)
	}
}

// run owns every goroutine of the daemon through one errgroup: the SSH
// server, its shutdown, the key refresh loop, the report resender, the
// SIGHUP handler and the built-in coordinator.
func (d *daemon) run(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	kick := make(chan struct{}, 1)   // refresh the keys now
	resend := make(chan struct{}, 1) // resend the spooled reports now
	// gctx ends on SIGTERM/SIGINT; sessions run on until Shutdown's
	// deadline.
	grp, gctx := errgroup.WithContext(ctx)
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
	grp.Go(func() error { seedMonitor(gctx, d.state, d.w.cfg, d.log); return nil })
	grp.Go(func() error { d.readyOnceKeys(gctx); return nil })
	grp.Go(func() error { d.expireOrphans(gctx); return nil })

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
		d.shutdown(ctx, shutdownTimeout)
		return nil
	})
	grp.Go(func() error {
		d.reg.Loop(gctx, d.w.cfg.UpdateConfigInterval, kick, func(res *registry.Result) {
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
	grp.Go(func() error { d.resendLoop(gctx, resend); return nil })
	grp.Go(func() error { d.reloadLoop(gctx, kick); return nil })
	if d.g.onListen != nil {
		d.g.onListen(ln.Addr(), coordAddr)
	}
	err = grp.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		d.log.Info("stopped")
		return nil
	}
	return err
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
	webAddr, err := serveWeb(ctx, grp, d.g.configDir, d.w.cfg, d.state, d.w.history, d.log)
	if err != nil {
		return nil, err
	}
	if d.g.onMetrics != nil && metricsAddr != nil {
		d.g.onMetrics(metricsAddr)
	}
	if d.g.onWeb != nil && webAddr != nil {
		d.g.onWeb(webAddr)
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

// reloadLoop reloads the configuration on each SIGHUP, then pokes kick
// for a key refresh, until ctx ends.
func (d *daemon) reloadLoop(ctx context.Context, kick chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.g.signals.hup:
			d.log.Info("SIGHUP: reloading configuration and refreshing keys")
			d.notify.reloading()
			d.reload()
			d.notify.ready()
			poke(kick)
		}
	}
}

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
	if force := d.g.signals.force; force != nil {
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

// reload re-reads the configuration on SIGHUP. The backup engine and the
// registration are rebuilt from it (running sessions keep the engine they
// started with; all engines share one set of backup slots, resized to
// max_concurrent_backups); settings bound at start are named so the
// operator knows a restart is needed for them. An invalid configuration
// changes nothing but turku_storage_config_last_reload_successful, which
// says so until a reload succeeds.
func (d *daemon) reload() {
	cfg, err := config.Load(d.g.configDir)
	if err != nil {
		d.state.ConfigLoaded(false, time.Now())
		d.log.Error("configuration reload failed; keeping the running configuration", "err", err)
		return
	}
	for _, warn := range cfg.Warnings {
		d.log.Warn("config: " + warn)
	}
	if keys := config.RestartNeeded(d.w.cfg, cfg); len(keys) > 0 {
		d.log.Warn("configuration changed in settings that need a restart; they keep their running values", "keys", keys)
	}
	w := &wiring{cfg: cfg, log: d.log, api: d.w.api, slots: d.w.slots, reports: d.w.reports, monitor: d.w.monitor, history: d.w.history}
	engine, err := w.engine()
	if err != nil {
		d.state.ConfigLoaded(false, time.Now())
		d.log.Error("configuration reload failed; keeping the running configuration", "err", err)
		return
	}
	// The API is told what the SSH server serves: its login name and host
	// keys stay as started until a restart.
	opts := w.registrarOptions("", "", d.hostKeys)
	opts.Storage.SSHPingUser = d.w.cfg.SSHPingUser
	d.w.slots.SetLimit(cfg.MaxConcurrentBackups)
	d.engine.Store(engine)
	d.volumes.Store(&cfg.Volumes)
	d.cfg.Store(cfg)
	d.reg.Update(opts)
	d.state.ConfigLoaded(true, time.Now())
	d.log.Info("configuration reloaded", "files", cfg.Files)
}

func apiLabel(url string) string {
	if url == "" {
		return "built-in coordinator"
	}
	return url
}
