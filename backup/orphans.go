package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/history"
)

// An orphan is a machine with data on this storage unit that the
// coordinator no longer assigns here (it was moved to another unit, or
// deactivated). The key refresh records which machines are orphans and
// since when (history.Store.RecordRefresh); nothing of theirs is deleted
// unless the operator purges one (PurgeMachine) or sets orphan_expiry.

// Orphan is an orphaned machine as found on disk.
type Orphan struct {
	UUID string
	// Unit is its unit name when it was last assigned here, if known.
	Unit string
	// Since is when the first key refresh found it no longer assigned.
	Since time.Time
	// Dir is its machine directory, Names its name links.
	Dir   string
	Names []string
	// Usage is the space its snapshots take, from their ledgers
	// (MachineUsage); UsageErr is why it could not be read.
	Usage    SnapshotUsage
	UsageErr error
}

// Orphans lists the machines the last key refresh recorded as orphans
// (hist's orphans.json) that still have a UUID link in VAR_DIR/machines,
// sorted by UUID, with their usage. It reads no snapshot tree.
func Orphans(varDir string, hist *history.Store) ([]Orphan, error) {
	out, err := orphansLinked(varDir, hist)
	for i := range out {
		out[i].Usage, out[i].UsageErr = MachineUsage(out[i].Dir)
	}
	return out, err
}

// orphansLinked is Orphans without their usage: no ledger read.
func orphansLinked(varDir string, hist *history.Store) ([]Orphan, error) {
	recorded, err := hist.Orphans()
	if err != nil {
		return nil, err
	}
	if len(recorded) == 0 {
		return nil, nil
	}
	links, err := MachineLinks(varDir)
	if err != nil {
		return nil, err
	}
	var out []Orphan
	for uuid, o := range recorded {
		l, ok := links[uuid]
		if !ok {
			continue // purged since
		}
		out = append(out, Orphan{UUID: uuid, Unit: o.Unit, Since: o.Since, Dir: l.Dir, Names: l.Names})
	}
	slices.SortFunc(out, func(a, b Orphan) int { return strings.Compare(a.UUID, b.UUID) })
	return out, nil
}

// OrphansIn is Orphans with the history kept in varDir
// (VAR_DIR/history).
func OrphansIn(varDir string) ([]Orphan, error) {
	return Orphans(varDir, history.New(filepath.Join(varDir, history.DirName)))
}

// OrphanedSince maps each orphan in varDir to when it was found
// unassigned, for snapshots and check; empty when unknown or unreadable.
func OrphanedSince(varDir string) map[string]time.Time {
	out := map[string]time.Time{}
	orphans, _ := orphansLinked(varDir, history.New(filepath.Join(varDir, history.DirName)))
	for _, o := range orphans {
		out[o.UUID] = o.Since
	}
	return out
}

// ErrAssigned is returned by PurgeMachine for a machine the coordinator
// assigns to this storage unit.
var ErrAssigned = errors.New("assigned to this storage unit")

// PurgeOptions is what PurgeMachine needs.
type PurgeOptions struct {
	VarDir, LockDir string
	// Volumes are the configured volumes: the machine directory must be
	// VOLUME/UUID on one of them.
	Volumes []Volume
	// Assigned returns the machines the coordinator last assigned to this
	// storage unit (the key cache). When it fails nothing is deleted.
	Assigned func() (map[string]apiclient.MachineInfo, error)
}

// Purged is what PurgeMachine removed.
type Purged struct {
	UUID string
	// Dir is the machine directory removed ("" when it was already gone).
	Dir string
	// Links are the VAR_DIR/machines entries removed: the name links,
	// then the UUID link.
	Links []string
	// Usage is what the ledgers said its snapshots took.
	Usage SnapshotUsage
}

// PurgeMachine deletes the machine uuid from this storage unit: its
// directory on a volume, then its name links and its UUID link in
// VAR_DIR/machines. It refuses a machine opts.Assigned lists (ErrAssigned)
// or when that cannot be read, a machine whose UUID link does not point at
// VOLUME/UUID on a configured volume (symbolic links resolved), and a
// machine whose backup runs (ErrBusy: it holds the machine lock for the
// whole removal). Removal never follows a symbolic link inside the
// machine directory. It touches nothing else: not the history, not other
// machines. Refusals change nothing on disk.
func PurgeMachine(opts PurgeOptions, uuid string) (Purged, error) {
	p := Purged{UUID: uuid}
	if err := checkComponent("machine UUID", uuid); err != nil {
		return p, err
	}
	assigned, err := opts.Assigned()
	if err != nil {
		return p, fmt.Errorf("machine %s: cannot tell whether it is assigned here, nothing deleted: %w", uuid, err)
	}
	if _, ok := assigned[uuid]; ok {
		return p, fmt.Errorf("machine %s: %w by the coordinator; nothing deleted", uuid, ErrAssigned)
	}
	machines := MachinesDir(opts.VarDir)
	link := filepath.Join(machines, uuid)
	target, err := os.Readlink(link)
	if err != nil {
		return p, fmt.Errorf("machine %s: no machine link %s: %w", uuid, link, err)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(machines, target)
	}
	dir, vol, err := machineDirOnVolume(target, uuid, opts.Volumes)
	if err != nil {
		return p, fmt.Errorf("machine %s: %w; nothing deleted", uuid, err)
	}
	// Not mounted, a machine directory looks gone: only its links would
	// go, its backups left unseen on the volume.
	if h := CheckVolumes(opts.VarDir, []Volume{vol}, false)[0]; !h.OK() {
		return p, fmt.Errorf("machine %s: %w; nothing deleted", uuid, h.Err())
	}
	lock, err := lockMachine(opts.LockDir, uuid)
	if err != nil {
		return p, fmt.Errorf("machine %s: %w; nothing deleted", uuid, err)
	}
	defer lock.Unlock()
	if dir != "" {
		p.Usage, _ = MachineUsage(dir)
		if err := removeTree(dir); err != nil {
			return p, fmt.Errorf("machine %s: remove %s: %w", uuid, dir, err)
		}
		p.Dir = dir
	}
	entries, err := os.ReadDir(machines)
	if err != nil {
		return p, fmt.Errorf("machine %s: %w", uuid, err)
	}
	for _, e := range entries {
		name := filepath.Join(machines, e.Name())
		if t, err := os.Readlink(name); err == nil && t == uuid {
			if err := os.Remove(name); err != nil {
				return p, fmt.Errorf("machine %s: %w", uuid, err)
			}
			p.Links = append(p.Links, name)
		}
	}
	if err := os.Remove(link); err != nil {
		return p, fmt.Errorf("machine %s: %w", uuid, err)
	}
	p.Links = append(p.Links, link)
	return p, nil
}

// machineDirOnVolume checks that target, a UUID link's target, is
// VOLUME/uuid on one of volumes once symbolic links in the volume's path
// are resolved, and is a directory itself (not a link). It returns the
// directory, or "" when it no longer exists, and the volume.
func machineDirOnVolume(target, uuid string, volumes []Volume) (string, Volume, error) {
	target = filepath.Clean(target)
	if filepath.Base(target) != uuid {
		return "", Volume{}, fmt.Errorf("its link points at %s, not at a directory named %s", target, uuid)
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(target))
	if err != nil {
		return "", Volume{}, fmt.Errorf("its link points at %s: %w", target, err)
	}
	i := slices.IndexFunc(volumes, func(v Volume) bool {
		vp, err := filepath.EvalSymlinks(v.Path)
		return err == nil && vp == parent
	})
	if i < 0 {
		return "", Volume{}, fmt.Errorf("its link points at %s, which is not on a configured volume", target)
	}
	dir := filepath.Join(parent, uuid)
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", volumes[i], nil
	case err != nil:
		return "", Volume{}, err
	case !fi.IsDir():
		return "", Volume{}, fmt.Errorf("%s is not a directory (%s)", dir, fi.Mode().Type())
	}
	return dir, volumes[i], nil
}
