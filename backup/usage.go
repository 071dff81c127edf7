package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// usageFile is a source's usage ledger, in its snapshot directory. The
// old storage unit lists only the directories there, and ListSnapshots
// skips dot-names, so neither takes it for a snapshot.
const usageFile = ".usage.json"

// usageLedger is the usage file: the bytes the source's snapshots hold,
// each file's data counted once however many snapshots link to it.
type usageLedger struct {
	Bytes int64 `json:"bytes"`
}

// readUsage returns the source's ledger; known is false when it has none
// (its snapshots were written by the old unit, or an event the ledger
// cannot follow dropped it).
func readUsage(snapDir string) (bytes int64, known bool, err error) {
	data, err := os.ReadFile(filepath.Join(snapDir, usageFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read usage: %w", err)
	}
	var l usageLedger
	if err := json.Unmarshal(data, &l); err != nil || l.Bytes < 0 {
		return 0, false, fmt.Errorf("read usage: %s: not a usage ledger", filepath.Join(snapDir, usageFile))
	}
	return l.Bytes, true, nil
}

// writeUsage replaces the source's ledger.
func writeUsage(snapDir string, bytes int64) error {
	data, _ := json.Marshal(usageLedger{Bytes: max(bytes, 0)})
	if err := atomicfile.WriteFile(filepath.Join(snapDir, usageFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write usage: %w", err)
	}
	return nil
}

// dropUsage removes the source's ledger: its figure is unknown until
// measured again (MeasureUsage).
func dropUsage(snapDir string) error {
	if err := os.Remove(filepath.Join(snapDir, usageFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("drop usage: %w", err)
	}
	return nil
}

// addUsage adds delta to the source's ledger, if it has one.
func addUsage(snapDir string, delta int64) error {
	bytes, known, err := readUsage(snapDir)
	if err != nil || !known {
		return err
	}
	return writeUsage(snapDir, bytes+delta)
}

// SnapshotUsage is the space a machine's snapshots take, du-like: the size of
// every regular file, each counted once however many snapshots link to
// it. Known is false when some source has no ledger yet (snapshots of the
// old storage unit) or its ledger was dropped; Bytes then sums the
// sources that do have one.
type SnapshotUsage struct {
	Bytes int64
	Known bool
	// Sources maps each source with a snapshot directory to its bytes, or
	// -1 when unknown.
	Sources map[string]int64
}

// snapshotDirs maps each source of the machine in machineDir that has a
// snapshot directory to it.
func snapshotDirs(machineDir string) (map[string]string, error) {
	sources, err := ListSources(machineDir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, src := range sources {
		dir := snapshotsDir(machineDir, src)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			out[src] = dir
		}
	}
	return out, nil
}

// MachineUsage reads the usage ledgers of machineDir's sources, without
// walking any tree. Working trees (snapshot mode "none", or what a failed
// run left) are not counted.
func MachineUsage(machineDir string) (SnapshotUsage, error) {
	dirs, err := snapshotDirs(machineDir)
	if err != nil {
		return SnapshotUsage{}, err
	}
	u := SnapshotUsage{Known: true, Sources: map[string]int64{}}
	for src, dir := range dirs {
		bytes, known, err := readUsage(dir)
		if err != nil {
			return SnapshotUsage{}, fmt.Errorf("source %s: %w", src, err)
		}
		if !known {
			u.Known = false
			u.Sources[src] = -1
			continue
		}
		u.Bytes += bytes
		u.Sources[src] = bytes
	}
	return u, nil
}

// MeasureUsage walks every source's snapshot directory of the machine in
// machineDir, counting each regular file's size once per inode, and
// writes the result to the sources' ledgers, which later backups and
// deletions then keep up to date. It takes the machine's lock in lockDir
// (ErrBusy while a backup of it runs), so no backup changes the trees
// while they are counted. It reads every inode: run it by hand, never on
// the backup path.
func MeasureUsage(lockDir, uuid, machineDir string) (SnapshotUsage, error) {
	lock, err := lockMachine(lockDir, uuid)
	if err != nil {
		return SnapshotUsage{}, err
	}
	defer lock.Unlock()
	dirs, err := snapshotDirs(machineDir)
	if err != nil {
		return SnapshotUsage{}, err
	}
	u := SnapshotUsage{Known: true, Sources: map[string]int64{}}
	for src, dir := range dirs {
		bytes, err := walkUsage(dir)
		if err != nil {
			return SnapshotUsage{}, fmt.Errorf("source %s: %w", src, err)
		}
		if err := writeUsage(dir, bytes); err != nil {
			return SnapshotUsage{}, fmt.Errorf("source %s: %w", src, err)
		}
		u.Bytes += bytes
		u.Sources[src] = bytes
	}
	return u, nil
}

// walkUsage sums the sizes of the distinct regular files in the
// directories under dir: the snapshots, and any "save" tree or removal
// left over, but not the .json files and the ledger beside them.
func walkUsage(dir string) (int64, error) {
	type fileID struct{ dev, ino uint64 }
	seen := map[fileID]struct{}{}
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || filepath.Dir(path) == dir {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no inode number", path)
		}
		id := fileID{uint64(st.Dev), st.Ino}
		if _, dup := seen[id]; dup {
			return nil
		}
		seen[id] = struct{}{}
		total += fi.Size()
		return nil
	})
	return total, err
}
