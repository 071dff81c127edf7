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
	links, err := MachineLinks(varDir)
	if err != nil {
		return nil, err
	}
	out := make([]MachineOnDisk, 0, len(links))
	for uuid, l := range links {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m := MachineOnDisk{UUID: uuid, Dir: l.Dir, Names: l.Names}
		m.Sources, m.Err = sourcesOnDisk(m.Dir, loc)
		out = append(out, m)
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

// MachineLink is a machine's entries in VAR_DIR/machines.
type MachineLink struct {
	// Dir is the machine directory its UUID link points to.
	Dir string
	// Names are the ENV-SERVICE-UNIT name links pointing at the UUID,
	// sorted.
	Names []string
}

// MachineLinks reads VAR_DIR/machines without reading any machine
// directory: each UUID link with the directory it points to and the name
// links pointing at it. A missing VAR_DIR/machines has none.
func MachineLinks(varDir string) (map[string]MachineLink, error) {
	dir := MachinesDir(varDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]MachineLink{}, nil
	}
	if err != nil {
		return nil, err
	}
	// UUID links point at machine directories (their target has a '/');
	// name links point at a UUID.
	out := map[string]MachineLink{}
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
			out[e.Name()] = MachineLink{Dir: target}
		} else {
			names[target] = append(names[target], e.Name())
		}
	}
	for uuid, l := range out {
		l.Names = append([]string{}, names[uuid]...)
		slices.Sort(l.Names)
		out[uuid] = l
	}
	return out, nil
}
