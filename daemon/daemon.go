package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	gossh "golang.org/x/crypto/ssh"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/control"
	"github.com/turku-backup/turku-storage/monitor"
	"github.com/turku-backup/turku-storage/registry"
	"github.com/turku-backup/turku-storage/sshserver"
)

// Options are what serve's command line and the process hand Run.
type Options struct {
	// Config is the configuration serve starts with, its warnings already
	// logged; ConfigDir is where a reload reads it again (and what the
	// dashboard's restore command line names unless it is the default).
	Config    *config.Config
	ConfigDir string
	// Version is the build's, logged at start, sent as the API client's
	// User-Agent and shown by status.
	Version string
	// OpenLog opens the long-running logger from log_file once VAR_DIR is
	// locked; the function it returns closes it.
	OpenLog func(logFile string) (*slog.Logger, func(), error)
	// ShutdownTimeout is how long running backups may finish after
	// SIGTERM before they are cancelled (--shutdown-timeout).
	ShutdownTimeout time.Duration
	// Signals are the process's SIGHUP and second-signal routes
	// (RouteSignals); the first SIGTERM/SIGINT ends Run's context.
	Signals Signals
	// OnListen, when set (tests), is told the SSH server's and the
	// built-in coordinator's (nil without one) addresses once serve runs;
	// OnMetrics and OnWeb, before it, the metrics listener's and the
	// dashboard's.
	OnListen  func(ssh, coordinator net.Addr)
	OnMetrics func(net.Addr)
	OnWeb     func(net.Addr)
}

// daemon is one running serve. The engine and the registrar's options are
// replaced on SIGHUP; a session keeps the engine it started with. What
// outlives a reload is held here or in w: the SSH server with its user and
// host keys, the backup slots and the report queue.
type daemon struct {
	opts   Options
	log    *slog.Logger
	w      *Wiring
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
	ctl        *control.Listener
	// hostKeys are advertised to the API for the daemon's life: the keys
	// the SSH server was started with (or ssh_ping_host_keys as read then).
	hostKeys []string
	// cfg is the configuration in force: the one serve started with, or
	// the last a reload accepted (w.cfg stays the first). The orphan
	// purge, the volumes of metrics and status, and status's published
	// read it; status reads
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

// Pull implements sshserver.Puller with the current engine.
func (d *daemon) Pull(ctx context.Context, req sshserver.PullRequest) error {
	return d.engine.Load().Pull(ctx, req)
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

// SetGCPercent sets serve's garbage-collection target (serveGCPercent)
// unless GOGC is set.
func SetGCPercent() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}

// Run is serve: it locks VAR_DIR, opens the long-running log, wires the
// unit together from opts.Config and serves until ctx ends (the first
// SIGTERM/SIGINT), then drains as shutdown says. It returns nil after a
// stop by ctx.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	unlock, err := backup.LockVarDir(cfg.VarDir)
	if err != nil {
		return err
	}
	defer unlock()
	log, closeLog, err := opts.OpenLog(cfg.LogFile)
	if err != nil {
		return err
	}
	defer closeLog()

	w, err := NewWiring(cfg, log, opts.Version)
	if err != nil {
		return err
	}
	defer w.Close()
	d := &daemon{opts: opts, log: log, w: w, keysLoaded: make(chan struct{}), expire: make(chan struct{}, 1)}
	d.cfg.Store(cfg)
	// The report queue is built in start; a scrape comes only once the
	// metrics server runs, after it.
	w.monitor = newMonitor(cfg, func() []config.Volume { return d.cfg.Load().Volumes }, func() backup.SpoolUsage { return w.reports.Usage() })
	d.state = w.monitor
	d.state.ConfigLoaded(true, time.Now())
	d.notify = notifier{log: log, state: d.state}
	defer func() {
		if w.reports != nil {
			w.reports.Close()
		}
	}()
	ln, err := d.start(ctx)
	if err != nil {
		return err
	}
	log.Info("serving", "version", opts.Version, "ssh_listen", ln.Addr().String(),
		"storage", cfg.Name, "api", apiLabel(cfg.APIURL))
	return d.run(ctx, ln)
}

// start builds what serves (the host keys, the report queue, the engine,
// the registrar, the SSH server with the cached keys, the control socket)
// and binds ssh_listen.
func (d *daemon) start(ctx context.Context) (net.Listener, error) {
	cfg, w, log := d.w.cfg, d.w, d.log
	watchdog, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings unreadable; not pinging it", "err", err)
	}
	signers, err := w.hostSigners()
	if err != nil {
		return nil, err
	}
	d.hostKeys = w.advertisedKeys(signers)
	w.slots = backup.NewSlots(cfg.MaxConcurrentBackups)
	w.reports = backup.NewReports(backup.ReportsOptions{VarDir: cfg.VarDir, API: w.api, Logger: log, SlowAfter: cfg.APITimeout,
		MaxCount: cfg.ReportSpoolMaxCount, MaxBytes: cfg.ReportSpoolMaxBytes, SourceRemoved: w.monitor.SourceRemoved})
	engine, err := w.engine()
	if err != nil {
		return nil, err
	}
	d.engine.Store(engine)
	secureAtStart(ctx, w, engine, log)
	CheckVolumes(log, cfg.VarDir, cfg.Volumes, true)
	d.reg = registry.New(w.registrarOptions("", "", d.hostKeys))
	if d.srv, err = d.newSSHServer(cfg, signers, watchdog); err != nil {
		return nil, err
	}
	d.loadCachedKeys()

	if d.ctl, err = control.Listen(cfg.ControlSocket); err != nil {
		return nil, err
	}
	if cfg.ControlSocketLink != "" {
		if err := d.ctl.Link(cfg.ControlSocketLink); err != nil {
			log.Warn("status and restore run from a shell will not find the control socket", "control_socket", cfg.ControlSocket, "err", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.SSHListen)
	if err != nil {
		d.ctl.Close()
		return nil, fmt.Errorf("ssh_listen: %w", err)
	}
	return ln, nil
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
		// Addresses that logged in within a day, kept across restarts.
		KnownSourcesFile:   filepath.Join(HistoryDir(cfg), "known-sources"),
		RestoreMaxLifetime: cfg.RestoreMaxLifetime,
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

func apiLabel(url string) string {
	if url == "" {
		return "built-in coordinator"
	}
	return url
}
