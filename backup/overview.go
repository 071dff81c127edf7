package backup

import (
	"context"
	"fmt"
	"time"

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

// Overview is every machine (UUID, name links), each source with its
// snapshots, the newest one and the space they take. With du, that space
// is first counted by walking every machine's snapshots (MeasureUsage);
// a machine it cannot count is passed to skipped.
func Overview(ctx context.Context, varDir, lockDir string, loc *time.Location, du bool, skipped func(uuid string, err error)) ([]MachineOverview, error) {
	machines, err := Inventory(ctx, varDir, loc)
	if err != nil {
		return nil, err
	}
	list := make([]MachineOverview, 0, len(machines))
	for _, m := range machines {
		mo := MachineOverview{UUID: m.UUID, Path: m.Dir, Names: m.Names, Sources: []SourceOverview{}}
		if m.Err != nil {
			mo.Error = m.Err.Error()
		}
		var usage SnapshotUsage
		if m.Err == nil {
			if du {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				if _, err := MeasureUsage(lockDir, m.UUID, m.Dir); err != nil {
					skipped(m.UUID, fmt.Errorf("space not counted: %w", err))
				}
			}
			if usage, err = MachineUsage(m.Dir); err != nil {
				mo.Error = err.Error()
			}
			mo.UsageBytes, mo.UsageKnown = usage.Bytes, usage.Known
		}
		for _, src := range m.Sources {
			so := SourceOverview{Name: src.Name, Count: len(src.Snapshots), Snapshots: Entries(src.Snapshots)}
			if b, ok := usage.Sources[src.Name]; ok && b >= 0 {
				so.UsageBytes = &b
			}
			if n := src.Newest(); n != nil {
				so.Latest = n.Name
				so.Finished = &n.SyncFinish
			}
			mo.Sources = append(mo.Sources, so)
		}
		list = append(list, mo)
	}
	return list, nil
}
