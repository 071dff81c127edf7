package daemon

import (
	"context"
	"time"

	"github.com/turku-backup/turku-storage/config"
)

// reloadLoop reloads the configuration on each SIGHUP, then pokes kick
// for a key refresh, until ctx ends.
func (d *daemon) reloadLoop(ctx context.Context, kick chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.opts.Signals.Hup:
			d.log.Info("SIGHUP: reloading configuration and refreshing keys")
			d.notify.reloading()
			d.reload()
			d.notify.ready()
			poke(kick)
		}
	}
}

// reload re-reads the configuration on SIGHUP. The backup engine and the
// registration are rebuilt from it (running sessions keep the engine they
// started with; all engines share one set of backup slots, resized to
// max_concurrent_backups); settings bound at start are named so the
// operator knows a restart is needed for them. An invalid configuration
// changes nothing but turku_storage_config_last_reload_successful, which
// says so until a reload succeeds.
func (d *daemon) reload() {
	cfg, err := config.Load(d.opts.ConfigDir)
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
	w := &Wiring{cfg: cfg, log: d.log, version: d.w.version, api: d.w.api, slots: d.w.slots, reports: d.w.reports, monitor: d.w.monitor, history: d.w.history}
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
	d.cfg.Store(cfg)
	d.reg.Update(opts)
	d.state.ConfigLoaded(true, time.Now())
	d.log.Info("configuration reloaded", "files", cfg.Files)
}
