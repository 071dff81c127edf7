package backup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// MachineOnDisk is one machine as VAR_DIR/machines shows it: its UUID
// link, the name links pointing at it, and its sources.
type MachineOnDisk struct {
	UUID string
	// Dir is the machine directory the UUID link points to.
	Dir string
	// Names are the ENV-SERVICE-UNIT name links pointing at the UUID.
	Names   []string
	Sources []SourceOnDisk
	// Err is why the machine directory could not be read; Sources is
	// then empty.
	Err error
}

// SourceOnDisk is one source of a machine with its snapshots, oldest
// first (none in snapshot mode "none").
type SourceOnDisk struct {
	Name      string
	Snapshots []Snapshot
}

// Newest returns the snapshot that finished last, or nil.
func (s SourceOnDisk) Newest() *Snapshot { return newest(s.Snapshots) }

// Inventory lists every machine under VAR_DIR/machines with its sources
// and snapshots, sorted by UUID and source name. A machine whose directory
// cannot be read is listed with Err; only a VAR_DIR/machines that cannot
// be read fails the whole listing, and ctx ending stops it (every
// snapshot's .json is read, which takes a while on a large unit). It
// changes nothing on disk.
func Inventory(ctx context.Context, varDir string, loc *time.Location) ([]MachineOnDisk, error) {
	dir := MachinesDir(varDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// UUID links point at machine directories (their target has a '/');
	// name links point at a UUID.
	byUUID := map[string]*MachineOnDisk{}
	names := map[string][]string{}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if filepath.IsAbs(target) || filepath.Dir(target) != "." {
			if !filepath.IsAbs(target) {
				target = filepath.Join(dir, target)
			}
			byUUID[e.Name()] = &MachineOnDisk{UUID: e.Name(), Dir: target, Names: []string{}}
		} else {
			names[target] = append(names[target], e.Name())
		}
	}
	out := make([]MachineOnDisk, 0, len(byUUID))
	for uuid, m := range byUUID {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.Names = append(m.Names, names[uuid]...)
		slices.Sort(m.Names)
		m.Sources, m.Err = sourcesOnDisk(m.Dir, loc)
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b MachineOnDisk) int {
		if a.UUID < b.UUID {
			return -1
		}
		if a.UUID > b.UUID {
			return 1
		}
		return 0
	})
	return out, nil
}

func sourcesOnDisk(machineDir string, loc *time.Location) ([]SourceOnDisk, error) {
	names, err := ListSources(machineDir)
	if err != nil {
		return nil, err
	}
	out := make([]SourceOnDisk, 0, len(names))
	for _, n := range names {
		snaps, err := ListSnapshots(machineDir, n, loc)
		if err != nil {
			return out, err
		}
		out = append(out, SourceOnDisk{Name: n, Snapshots: snaps})
	}
	return out, nil
}
