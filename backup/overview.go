package backup

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/rsync"
)

// SnapshotEntry is one snapshot as `snapshots` lists it; the transfer's
// figures (the keys of its .json) and the duration are left out when its
// .json has none.
type SnapshotEntry struct {
	Name       string    `json:"name"`
	SyncFinish time.Time `json:"sync_finish"`
	Base       string    `json:"base,omitempty"`
	// BaseDeleted reports that Base is no longer on disk (retention
	// removed it); the snapshot itself is whole, its files are its own.
	BaseDeleted bool `json:"base_deleted,omitempty"`
	Latest      bool `json:"latest"`
	*rsync.TransferStats
	DurationSeconds *float64 `json:"duration_seconds,omitempty"`
}

// Entries lists one source's snapshots (oldest first), each base not
// among them marked deleted.
func Entries(snaps []Snapshot) []SnapshotEntry {
	list := make([]SnapshotEntry, 0, len(snaps))
	names := map[string]bool{}
	for _, s := range snaps {
		j := SnapshotEntry{Name: s.Name, SyncFinish: s.SyncFinish, Base: s.Base, Latest: s.Latest, TransferStats: s.Stats}
		if d := s.Duration(); s.Stats != nil && !s.SyncBegin.IsZero() {
			secs := d.Seconds()
			j.DurationSeconds = &secs
		}
		list = append(list, j)
		names[s.Name] = true
	}
	for i := range list {
		list[i].BaseDeleted = list[i].Base != "" && !names[list[i].Base]
	}
	return list
}

// MachineOverview is one machine in `snapshots` without arguments.
type MachineOverview struct {
	UUID  string   `json:"uuid"`
	Path  string   `json:"path"`
	Names []string `json:"names"`
	// UsageBytes is the space its snapshots take (MachineUsage); with
	// UsageKnown false, only that of the sources whose figure is known.
	UsageBytes int64            `json:"usage_bytes"`
	UsageKnown bool             `json:"usage_known"`
	Sources    []SourceOverview `json:"sources"`
	Error      string           `json:"error,omitempty"`
	// OrphanedSince is set for an orphan: no longer assigned here since.
	OrphanedSince *time.Time `json:"orphaned_since,omitempty"`
}

// SourceOverview is one source of a MachineOverview.
type SourceOverview struct {
	Name string `json:"name"`
	// Latest is the newest snapshot's name, "" if it has none.
	Latest   string     `json:"latest"`
	Finished *time.Time `json:"finished,omitempty"`
	Count    int        `json:"count"`
	// UsageBytes is the space of its snapshots, nil when unknown or it
	// has none (snapshot mode "none").
	UsageBytes *int64          `json:"usage_bytes,omitempty"`
	Snapshots  []SnapshotEntry `json:"snapshots"`
}

// OverviewOptions say how Overview lists.
type OverviewOptions struct {
	// LockDir holds the machine locks MeasureUsage takes.
	LockDir string
	// Location is the zone of the snapshot names.
	Location *time.Location
	// Du counts every machine's space first by walking its snapshots
	// (MeasureUsage); a machine it cannot count is passed to Skipped.
	Du      bool
	Skipped func(uuid string, err error)
	// Snapshots lists every snapshot with its base and figures
	// (SourceOverview.Snapshots), read from every snapshot's .json;
	// without it the overview comes from the snapshot index (Summaries)
	// and Snapshots stays nil.
	Snapshots bool
	// Rescan and Log are Summaries' IndexOptions.
	Rescan bool
	Log    *slog.Logger
}

// Overview is every machine (UUID, name links), each source with the
// newest snapshot, how many there are and the space they take.
func Overview(ctx context.Context, varDir string, o OverviewOptions) ([]MachineOverview, error) {
	if o.Du {
		if err := measureAll(ctx, varDir, o.LockDir, o.Skipped); err != nil {
			return nil, err
		}
	}
	var machines []MachineSummary
	if o.Snapshots {
		inv, err := Inventory(ctx, varDir, o.Location)
		if err != nil {
			return nil, err
		}
		machines = make([]MachineSummary, len(inv))
		for i, m := range inv {
			ms := MachineSummary{UUID: m.UUID, Dir: m.Dir, Names: m.Names, Err: m.Err}
			for _, src := range m.Sources {
				ms.Sources = append(ms.Sources, summary(src, true))
			}
			if m.Err == nil {
				ms.Usage, ms.UsageErr = MachineUsage(m.Dir)
			}
			machines[i] = ms
		}
	} else {
		var err error
		machines, err = Summaries(ctx, varDir, IndexOptions{Location: o.Location, Rescan: o.Rescan, Log: o.Log})
		if err != nil {
			return nil, err
		}
	}
	// An orphan's row says since when it is one; none when unknown.
	orphans, _ := history.New(filepath.Join(varDir, history.DirName)).Orphans()
	list := make([]MachineOverview, 0, len(machines))
	for _, m := range machines {
		mo := m.overview(o.Snapshots)
		if orphan, ok := orphans[m.UUID]; ok {
			mo.OrphanedSince = &orphan.Since
		}
		list = append(list, mo)
	}
	return list, nil
}

// measureAll counts the space of every machine whose directory can be
// read (MeasureUsage).
func measureAll(ctx context.Context, varDir, lockDir string, skipped func(uuid string, err error)) error {
	links, err := MachineLinks(varDir)
	if err != nil {
		return err
	}
	for _, uuid := range slices.Sorted(maps.Keys(links)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if fi, err := os.Stat(links[uuid].Dir); err != nil || !fi.IsDir() {
			continue
		}
		if _, err := MeasureUsage(lockDir, uuid, links[uuid].Dir); err != nil && skipped != nil {
			skipped(uuid, fmt.Errorf("space not counted: %w", err))
		}
	}
	return nil
}

// overview is m as Overview lists it, every snapshot's entry with
// entries.
func (m MachineSummary) overview(entries bool) MachineOverview {
	mo := MachineOverview{UUID: m.UUID, Path: m.Dir, Names: m.Names, Sources: []SourceOverview{}}
	usage := m.Usage
	switch {
	case m.Err != nil:
		mo.Error = m.Err.Error()
	case m.UsageErr != nil:
		mo.Error = m.UsageErr.Error()
		usage = SnapshotUsage{}
	}
	mo.UsageBytes, mo.UsageKnown = usage.Bytes, usage.Known
	for _, src := range m.Sources {
		so := SourceOverview{Name: src.Name, Count: src.Count}
		if entries {
			so.Snapshots = Entries(src.Snapshots)
		}
		if b, ok := usage.Sources[src.Name]; ok && b >= 0 {
			so.UsageBytes = &b
		}
		if n := src.Newest; n != nil {
			so.Latest = n.Name
			so.Finished = &n.SyncFinish
		}
		mo.Sources = append(mo.Sources, so)
	}
	return mo
}
