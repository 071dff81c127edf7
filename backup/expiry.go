package backup

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/monitor"
)

// RecordRefresh records the machines a key refresh (or the key cache at
// start) listed, in the history (history.RecordRefresh: when each was
// first assigned, the orphans on disk, the departed machines' keys), and
// tells state the machines assigned and the orphans. What cannot be read
// or written is logged.
func RecordRefresh(store *history.Store, state *monitor.State, varDir string, machines map[string]apiclient.MachineInfo, now time.Time, log *slog.Logger) history.Refreshed {
	l := history.Listing{Machines: make(map[string]history.Listed, len(machines))}
	for uuid, m := range machines {
		l.Machines[uuid] = history.Listed{Unit: m.UnitName, Key: m.SSHPublicKey}
	}
	links, err := MachineLinks(varDir)
	if err != nil {
		l.DiskErr = err
		log.Error("reading the machines on disk for orphans failed", "err", err)
	}
	for uuid := range links {
		l.OnDisk = append(l.OnDisk, uuid)
	}
	r, err := store.RecordRefresh(l, now)
	if err != nil {
		log.Error("recording the assigned machines failed", "err", err)
	}
	assigned := make(map[string]monitor.Assignment, len(r.Assigned))
	for uuid, a := range r.Assigned {
		assigned[uuid] = monitor.Assignment{Unit: a.Unit, Since: a.Since}
	}
	state.SetAssigned(assigned)
	orphans := make(map[string]monitor.Orphan, len(r.Orphans))
	for uuid, o := range r.Orphans {
		orphans[uuid] = monitor.Orphan{Unit: o.Unit, Since: o.Since}
	}
	state.SetOrphans(orphans)
	return r
}

// PurgeExpired purges the orphans older than expiry at now (orphan_expiry),
// logging each, unless most machines here are orphans or none is
// assigned: a unit renamed, or a coordinator that lost its machines,
// orphans everything at once, and that is for the operator to purge, not
// a timer.
func PurgeExpired(ctx context.Context, opts PurgeOptions, store *history.Store, expiry time.Duration, now time.Time, log *slog.Logger) {
	orphans, err := Orphans(opts.VarDir, store)
	if err != nil {
		log.Error("listing orphans for orphan_expiry failed", "err", err)
		return
	}
	if len(orphans) == 0 {
		return
	}
	assigned, err := opts.Assigned()
	links, lerr := MachineLinks(opts.VarDir)
	if err != nil || lerr != nil || len(assigned) == 0 || 2*len(orphans) > len(links) {
		log.Warn("orphan_expiry: not purging automatically: most machines here are orphans, or none is assigned; purge them by hand with turku-storage orphans purge",
			"orphans", len(orphans), "machines_on_disk", len(links), "assigned", len(assigned), "err", errors.Join(err, lerr))
		return
	}
	for _, o := range orphans {
		if ctx.Err() != nil || now.Sub(o.Since) <= expiry {
			continue
		}
		p, err := PurgeMachine(opts, o.UUID)
		if err != nil {
			log.Error("purging an expired orphan failed", "machine", o.UUID, "unit", o.Unit, "since", o.Since, "err", err)
			continue
		}
		log.Warn("expired orphan purged (orphan_expiry)", "machine", o.UUID, "unit", o.Unit, "since", o.Since,
			"orphan_expiry", expiry, "dir", p.Dir, "bytes", p.Usage.Bytes)
	}
}
