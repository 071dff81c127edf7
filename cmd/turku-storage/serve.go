package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
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
the next run and the failure is reported). SIGHUP re-reads the
configuration (settings that need a restart are named in the log) and
refreshes the keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), g, shutdownTimeout)
		},
	}
	cmd.Flags().DurationVar(&shutdownTimeout, "shutdown-timeout", 5*time.Minute, "how long running backups may finish after SIGTERM before they are cancelled")
	return cmd
}

// daemon is one running serve. The engine and registrar are replaced on
// SIGHUP; a session keeps the engine it started with.
type daemon struct {
	g      *globals
	log    *slog.Logger
	w      *wiring
	srv    *sshserver.Server
	engine atomic.Pointer[backup.Engine]
	reg    *registry.Registrar
}

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
	d := &daemon{g: g, log: log, w: w}
	signers, err := w.hostSigners()
	if err != nil {
		return err
	}
	engine, err := w.engine()
	if err != nil {
		return err
	}
	d.engine.Store(engine)
	if d.reg, err = w.registrar("", ""); err != nil {
		return err
	}
	d.srv, err = sshserver.New(sshserver.Options{
		HostSigners: signers,
		User:        cfg.SSHPingUser,
		StorageName: cfg.Name,
		Logger:      log,
		Puller:      d,
		// Admission and session limits (docs/operations.md, "Facing the internet").
		MaxStartups:          sshserver.MaxStartups(cfg.SSHMaxStartups),
		PerSourceMaxStartups: cfg.SSHPerSourceMaxStartups,
		TrustedNetworks:      cfg.SSHTrustedNetworks,
		RestoreMaxLifetime:   cfg.RestoreMaxLifetime,
	})
	if err != nil {
		return err
	}
	if c, err := registry.LoadCache(w.cachePath()); err == nil {
		d.srv.SetMachines(c.Machines)
		log.Info("loaded cached machine keys", "machines", len(c.Machines), "updated", c.Updated)
	} else if errors.Is(err, registry.ErrNoCache) {
		log.Warn("no cached machine keys yet; agents are refused until the first refresh succeeds")
	} else {
		log.Error("cached machine keys unusable; agents are refused until the first refresh succeeds", "err", err)
	}

	ln, err := net.Listen("tcp", cfg.SSHListen)
	if err != nil {
		return fmt.Errorf("ssh_listen: %w", err)
	}
	log.Info("serving", "version", versionString(), "ssh_listen", ln.Addr().String(),
		"storage", cfg.Name, "api", apiLabel(cfg.APIURL))
	return d.run(ctx, ln, shutdownTimeout)
}

// run owns every goroutine of the daemon through one errgroup: the SSH
// server, its shutdown, the key refresh loop, the report resender, the
// SIGHUP handler and the built-in coordinator.
func (d *daemon) run(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	kick := make(chan struct{}, 1)

	// gctx ends on SIGTERM/SIGINT; sessions get their own context that
	// survives it until the shutdown deadline.
	grp, gctx := errgroup.WithContext(ctx)
	sessions, cancelSessions := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelSessions(errors.New("shutdown"))
	d.w.machinesChanged = func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	// The coordinator first: when its address is taken, nothing else has
	// started yet.
	coordAddr, err := d.w.serveCoordinator(gctx, grp)
	if err != nil {
		ln.Close()
		return err
	}

	grp.Go(func() error {
		return d.srv.Serve(sessions, ln)
	})
	grp.Go(func() error {
		<-gctx.Done()
		d.log.Info("shutting down: no new connections; waiting for running backups", "timeout", shutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		// Said when the deadline fires, not when the cancelled sessions
		// are finally gone.
		stopWarn := context.AfterFunc(sctx, func() {
			if errors.Is(sctx.Err(), context.DeadlineExceeded) {
				d.log.Warn("shutdown deadline passed; cancelling running sessions", "timeout", shutdownTimeout)
			}
		})
		defer stopWarn()
		if err := d.srv.Shutdown(sctx); err != nil {
			cancelSessions(errors.New("shutdown deadline passed"))
		}
		return nil
	})
	grp.Go(func() error {
		d.reg.Loop(gctx, d.w.cfg.UpdateConfigInterval, kick, func(res *registry.Result) {
			d.srv.SetMachines(res.Machines)
		})
		return nil
	})
	grp.Go(func() error {
		t := time.NewTicker(resendInterval)
		defer t.Stop()
		for {
			if err := d.engine.Load().ResendReports(gctx); err != nil && gctx.Err() == nil {
				d.log.Warn("resending spooled reports failed", "err", err)
			}
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	grp.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				d.log.Info("SIGHUP: reloading configuration and refreshing keys")
				d.reload()
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		}
	})
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

// reload re-reads the configuration on SIGHUP. The backup engine and the
// registration are rebuilt from it (running sessions keep the engine they
// started with); settings bound at start are named so the operator knows a
// restart is needed for them. An invalid configuration changes nothing.
func (d *daemon) reload() {
	cfg, err := config.Load(d.g.configDir)
	if err != nil {
		d.log.Error("configuration reload failed; keeping the running configuration", "err", err)
		return
	}
	for _, warn := range cfg.Warnings {
		d.log.Warn("config: " + warn)
	}
	if keys := restartKeys(d.w.cfg, cfg); len(keys) > 0 {
		d.log.Warn("configuration changed in settings that need a restart; they keep their running values", "keys", keys)
	}
	w := &wiring{cfg: cfg, log: d.log, api: d.w.api}
	engine, err := w.engine()
	if err != nil {
		d.log.Error("configuration reload failed; keeping the running configuration", "err", err)
		return
	}
	opts, err := w.registrarOptions("", "")
	if err != nil {
		d.log.Error("configuration reload failed; keeping the running configuration", "err", err)
		return
	}
	d.engine.Store(engine)
	d.reg.Update(opts)
	d.log.Info("configuration reloaded", "files", cfg.Files)
}

// restartKeys lists the settings that differ between a and b and are bound
// at start (listeners, keys, identity, logging).
func restartKeys(a, b *config.Config) []string {
	var out []string
	diff := func(key string, same bool) {
		if !same {
			out = append(out, key)
		}
	}
	diff("name", a.Name == b.Name)
	diff("secret", a.Secret == b.Secret)
	diff("api_url", a.APIURL == b.APIURL)
	diff("api_ca_file", a.APICAFile == b.APICAFile)
	diff("api_timeout", a.APITimeout == b.APITimeout)
	diff("ssh_listen", a.SSHListen == b.SSHListen)
	diff("ssh_host_key_files", slices.Equal(a.SSHHostKeyFiles, b.SSHHostKeyFiles))
	diff("ssh_ping_user", a.SSHPingUser == b.SSHPingUser)
	diff("log_file", a.LogFile == b.LogFile)
	diff("update_config_interval", a.UpdateConfigInterval == b.UpdateConfigInterval)
	diff("coordinator_listen", a.CoordinatorListen == b.CoordinatorListen)
	diff("coordinator_tls_cert", a.CoordinatorTLSCert == b.CoordinatorTLSCert)
	diff("coordinator_tls_key", a.CoordinatorTLSKey == b.CoordinatorTLSKey)
	diff("machine_registration_secret", a.MachineRegistrationSecret == b.MachineRegistrationSecret)
	return out
}

func apiLabel(url string) string {
	if url == "" {
		return "built-in coordinator"
	}
	return url
}
