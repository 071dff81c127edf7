package daemon

import (
	"context"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
)

// keysRefreshed records the machines a key refresh (or the key cache at
// start) listed: when each was first assigned, the orphans (machines on
// disk it no longer lists) and the departed machines' keys, kept in
// VAR_DIR/history; the monitor and the SSH server are told. Then orphans
// older than orphan_expiry, if set, are purged in the background.
func (d *daemon) keysRefreshed(machines map[string]apiclient.MachineInfo, now time.Time) {
	r := backup.RecordRefresh(d.w.history, d.state, d.w.cfg.VarDir, machines, now, d.log)
	departed := make(map[string]apiclient.MachineInfo, len(r.Departed))
	for uuid, dep := range r.Departed {
		departed[uuid] = apiclient.MachineInfo{UnitName: dep.Unit, SSHPublicKey: dep.Key}
	}
	d.srv.SetDeparted(departed)
	d.log.Debug("assigned machines recorded", "machines", len(r.Assigned), "orphans", len(r.Orphans), "departed", len(r.Departed))
	poke(d.expire)
}

// expireOrphans purges, each time a key refresh pokes d.expire, the
// orphans older than orphan_expiry (as the configuration in force says;
// unset: none), logging each. It runs until ctx ends.
func (d *daemon) expireOrphans(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.expire:
		}
		cfg := d.cfg.Load()
		if cfg.OrphanExpiry <= 0 {
			d.log.Debug("orphan_expiry not set; no orphan purged")
			continue
		}
		backup.PurgeExpired(ctx, PurgeOptions(cfg), d.w.history, cfg.OrphanExpiry, time.Now(), d.log)
		d.log.Debug("expired orphans purged", "orphan_expiry", cfg.OrphanExpiry)
	}
}

// PurgeOptions are the configured volumes and directories as a purge of
// orphans takes them, the key cache saying which machines are assigned.
func PurgeOptions(cfg *config.Config) backup.PurgeOptions {
	return backup.PurgeOptions{VarDir: cfg.VarDir, LockDir: cfg.LockDir, Volumes: BackupVolumes(cfg.Volumes),
		Assigned: RegisteredMachines(cfg)}
}
