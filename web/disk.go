package web

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/turku-backup/turku-storage/backup"
)

// diskMachine is what the disk says of one machine: its directory's name
// links, and per source its snapshots and the bytes they hold.
type diskMachine struct {
	Names   []string
	Sources map[string]diskSource
	Err     string
}

type diskSource struct {
	Snapshots int
	Newest    time.Time
	// Bytes is the source's usage ledger (backup.MachineUsage), -1 when
	// unknown.
	Bytes int64
}

// diskCache holds what the disk said of every machine, so a page lists
// 10,000 machines without reading 10,000 directories. It is read once at
// start and every rescan interval, and a machine again as soon as a
// backup of it finished.
type diskCache struct {
	varDir string
	loc    *time.Location
	log    *slog.Logger

	mu       sync.Mutex // guards the fields below
	machines map[string]diskMachine
	read     time.Time // when the last full read finished; zero: none yet
}

func newDiskCache(varDir string, loc *time.Location, log *slog.Logger) *diskCache {
	return &diskCache{varDir: varDir, loc: loc, log: log, machines: map[string]diskMachine{}}
}

// snapshot returns the machines as last read and when.
func (c *diskCache) snapshot() (map[string]diskMachine, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.machines, c.read
}

// readAll reads every machine under VAR_DIR/machines, through the
// snapshot index (backup.Summaries): only the directories that changed
// since it was written, and serve keeps it up to date for check and
// snapshots.
func (c *diskCache) readAll(ctx context.Context) error {
	inv, err := backup.Summaries(ctx, c.varDir, backup.IndexOptions{Location: c.loc, Log: c.log})
	if err != nil {
		return err
	}
	next := make(map[string]diskMachine, len(inv))
	for _, m := range inv {
		dm := diskMachine{Names: m.Names, Sources: map[string]diskSource{}}
		if m.Err != nil {
			dm.Err = m.Err.Error()
		}
		for _, src := range m.Sources {
			dm.Sources[src.Name] = sourceOnDisk(src.Name, src.Count, src.Newest, m.Usage)
		}
		next[m.UUID] = dm
	}
	c.mu.Lock()
	c.machines, c.read = next, time.Now()
	c.mu.Unlock()
	return nil
}

// readMachine reads one machine again, keeping its name links.
func (c *diskCache) readMachine(uuid string) {
	dir := filepath.Join(backup.MachinesDir(c.varDir), uuid)
	dm := diskMachine{Sources: map[string]diskSource{}}
	names, err := backup.ListSources(dir)
	if err != nil {
		return // not placed yet, or gone: the next full read says so
	}
	usage, _ := backup.MachineUsage(dir)
	for _, n := range names {
		snaps, err := backup.ListSnapshots(dir, n, c.loc)
		if err != nil {
			dm.Err = err.Error()
		}
		dm.Sources[n] = sourceOnDisk(n, len(snaps), backup.SourceOnDisk{Snapshots: snaps}.Newest(), usage)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	dm.Names = c.machines[uuid].Names
	// Copy on write: readers hold the map they were given.
	next := make(map[string]diskMachine, len(c.machines)+1)
	for k, v := range c.machines {
		next[k] = v
	}
	next[uuid] = dm
	c.machines = next
}

// sourceOnDisk is source name as the cache keeps it: count snapshots,
// the newest (nil: none) and its bytes in usage.
func sourceOnDisk(name string, count int, newest *backup.Snapshot, usage backup.SnapshotUsage) diskSource {
	ds := diskSource{Snapshots: count, Bytes: -1}
	if newest != nil {
		ds.Newest = newest.SyncFinish
	}
	if b, ok := usage.Sources[name]; ok {
		ds.Bytes = b
	}
	return ds
}

// keepFresh reads everything now and every rescan, and each machine
// whose backup finished, until ctx ends. Finished backups are noticed by
// state's outcome count, looked at every second.
func (c *diskCache) keepFresh(ctx context.Context, state State, rescan time.Duration) {
	// The outcome count and each machine's newest attempt are taken
	// before the disk is read: a backup that finishes during the read
	// changes them, and its machine is read again at the next tick.
	full := func() (int64, map[string]time.Time) {
		n, seen := state.Outcomes(), lastAttempts(state)
		start := time.Now()
		if err := c.readAll(ctx); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("dashboard: reading the snapshots on disk failed", "err", err)
			}
		} else {
			c.log.Debug("dashboard: read the snapshots on disk", "duration", time.Since(start))
		}
		return n, seen
	}
	outcomes, seen := full()
	lastFull := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(lastFull) >= rescan {
			outcomes, seen = full()
			lastFull = time.Now()
			continue
		}
		n := state.Outcomes()
		if n == outcomes {
			continue
		}
		now := lastAttempts(state)
		for m, t := range now {
			if !t.Equal(seen[m]) {
				c.readMachine(m)
			}
		}
		outcomes, seen = n, now
	}
}

// lastAttempts maps each machine to its sources' newest attempt.
func lastAttempts(state State) map[string]time.Time {
	out := map[string]time.Time{}
	for _, s := range state.Sources() {
		if s.LastAttempt.After(out[s.Machine]) {
			out[s.Machine] = s.LastAttempt
		}
	}
	return out
}
