package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// ErrNoVolume is returned when a new machine cannot be placed: no volume
// accepts new machines, or all that do are above their high-water mark.
var ErrNoVolume = errors.New("no volume accepts new machines (all are full, above their high-water mark, or closed to new machines)")

// volumeStat is what placement, Space and the disk guard need to know of
// a filesystem: its blocks as df(1) counts them, in bytes, and its inodes.
type volumeStat struct {
	dev uint64
	// size is f_blocks; used f_blocks − f_bfree (blocks reserved for root
	// are not used); avail f_bavail, what an unprivileged user may still
	// write.
	size, used, avail int64
	// inodes is f_files (0 where the filesystem does not count them, as
	// btrfs), inodesFree f_ffree.
	inodes, inodesFree int64
}

// usedPct is the fill level as df(1) shows it: used / (used + available).
// Blocks reserved for root count neither way, as in df's Use% and
// BackupPC's DfMaxUsagePct.
func (s volumeStat) usedPct() float64 {
	if s.used+s.avail <= 0 {
		return 0
	}
	return float64(s.used) / float64(s.used+s.avail) * 100
}

// inodeUsedPct is the share of inodes in use, as df -i's IUse%; 0 where
// the filesystem does not count inodes.
func (s volumeStat) inodeUsedPct() float64 {
	if s.inodes <= 0 {
		return 0
	}
	return float64(s.inodes-s.inodesFree) / float64(s.inodes) * 100
}

func (s volumeStat) totalMiB() int64 { return s.size >> 20 }
func (s volumeStat) availMiB() int64 { return s.avail >> 20 }

func statVolume(path string) (volumeStat, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return volumeStat{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	var sf unix.Statfs_t
	if err := unix.Statfs(path, &sf); err != nil {
		return volumeStat{}, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	bs := blockSize(&sf)
	return volumeStat{
		dev:        uint64(st.Dev),
		size:       int64(sf.Blocks) * bs,
		used:       int64(sf.Blocks-sf.Bfree) * bs,
		avail:      int64(sf.Bavail) * bs,
		inodes:     int64(sf.Files),
		inodesFree: int64(sf.Ffree),
	}, nil
}

// Space returns the total and available MiB to advertise in
// storage_update_config (docs/protocol.md §3.1): each filesystem (st_dev)
// counts once; a volume closed to new machines, above its high-water mark
// or its inode threshold contributes nothing available. A volume the
// volume check finds unusable (missing, not mounted, read-only) or that
// cannot be examined is left out: the caller logs what CheckVolumes says
// of it, and the keys still refresh.
func Space(varDir string, volumes []Volume) (totalMiB, availMiB int64) {
	seen := map[uint64]bool{}
	for _, h := range CheckVolumes(varDir, volumes, false) {
		if !h.OK() {
			continue
		}
		var v Volume
		for _, c := range volumes {
			if c.Path == h.Path {
				v = c
			}
		}
		st, err := statVolume(v.Path)
		if err != nil || seen[st.dev] || st.totalMiB() <= 0 {
			continue
		}
		seen[st.dev] = true
		totalMiB += st.totalMiB()
		if v.AcceptNew && st.usedPct() <= float64(v.HighWaterPct) && !v.overInodes(st, DefaultMaxInodeUsagePct) {
			availMiB += st.availMiB()
		}
	}
	return totalMiB, availMiB
}

// pickWeighted returns an index chosen at random with probability
// proportional to its weight, or uniformly if all weights are zero.
func pickWeighted(weights []int64) int {
	var total int64
	for _, w := range weights {
		total += max(w, 0)
	}
	if total <= 0 {
		return rand.IntN(len(weights))
	}
	r := rand.Int64N(total)
	for i, w := range weights {
		if r < max(w, 0) {
			return i
		}
		r -= max(w, 0)
	}
	return len(weights) - 1
}

// chooseVolume picks a volume for a new machine.
func (e *Engine) chooseVolume() (Volume, error) {
	var cands []Volume
	var weights []int64
	// Every volume is checked (and marked) before any is measured, so
	// the markers written do not skew the weights.
	var healthy []Volume
	for _, v := range e.volumes {
		if !v.AcceptNew {
			continue
		}
		if err := e.checkVolume(v); err != nil {
			e.log.Warn("volume unusable", "volume", v.Name, "err", err)
			continue
		}
		healthy = append(healthy, v)
	}
	for _, v := range healthy {
		st, err := e.stat(v.Path)
		if err != nil {
			e.log.Warn("volume unusable", "volume", v.Name, "err", err)
			continue
		}
		if st.totalMiB() <= 0 || st.usedPct() > float64(v.HighWaterPct) || v.over(st) || v.overInodes(st, e.maxInodeUsage) {
			continue
		}
		cands = append(cands, v)
		weights = append(weights, st.availMiB())
	}
	if len(cands) == 0 {
		return Volume{}, ErrNoVolume
	}
	return cands[e.pick(weights)], nil
}

func (e *Engine) machinesDir() string { return MachinesDir(e.varDir) }

// MachineDir returns the directory VAR_DIR/machines/<uuid> points to,
// without creating anything.
func (e *Engine) MachineDir(uuid string) (string, error) {
	if err := checkComponent("machine UUID", uuid); err != nil {
		return "", err
	}
	dir, err := e.readMachineLink(uuid)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("machine %s: %w", uuid, err)
	}
	return dir, nil
}

// readMachineLink resolves VAR_DIR/machines/<uuid>. Its target always
// contains a '/' (the old code wrote VOLUME_PATH/<uuid>); a bare name is a
// name link some unit name collided with, and is refused.
func (e *Engine) readMachineLink(uuid string) (string, error) {
	link := filepath.Join(e.machinesDir(), uuid)
	target, err := os.Readlink(link)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("machine %s has no directory: %w", uuid, err)
		}
		return "", fmt.Errorf("machine %s: read %s: %w", uuid, link, err)
	}
	if !strings.Contains(target, "/") {
		return "", fmt.Errorf("machine %s: %s points to %q, not to a machine directory", uuid, link, target)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(e.machinesDir(), target)
	}
	return target, nil
}

// placeMachine returns the machine's directory, placing a new machine on
// a volume first (docs/protocol.md §6.1). An existing machines/<uuid> link always
// wins. The machine directory itself is created if missing, but not the
// volume: an unmounted volume must not fill the root filesystem.
func (e *Engine) placeMachine(uuid string) (string, error) {
	machines := e.machinesDir()
	if err := os.MkdirAll(machines, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", machines, err)
	}
	dir, err := e.readMachineLink(uuid)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		vol, err := e.chooseVolume()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(vol.Path, uuid)
		if err := os.Symlink(dir, filepath.Join(machines, uuid)); err != nil {
			return "", fmt.Errorf("machine %s: link to %s: %w", uuid, dir, err)
		}
		if err := atomicfile.SyncDir(machines); err != nil {
			return "", err
		}
		e.log.Info("machine placed", "machine", uuid, "volume", vol.Name, "dir", dir)
	default:
		return "", err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("machine %s: create %s: %w", uuid, dir, err)
	}
	return dir, nil
}

// linkMachineName points VAR_DIR/machines/<env>-<service>-<unit> at the
// UUID link. It never replaces anything but another name link (a symlink
// to a bare name) of a machine no longer registered: not a machine link,
// not a real file, not a registered machine's name, and no name that
// looks like a UUID, so a unit name cannot hijack another machine.
func (e *Engine) linkMachineName(uuid, name string) error {
	if name == uuid || IsUUID(name) {
		e.log.Warn("machine name link skipped: name looks like a UUID", "machine", uuid, "unit", name)
		return nil
	}
	link := filepath.Join(e.machinesDir(), name)
	fi, err := os.Lstat(link)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.Symlink(uuid, link)
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink == 0:
		e.log.Warn("machine name link skipped: not a symlink", "machine", uuid, "unit", name)
		return nil
	}
	target, err := os.Readlink(link)
	if err != nil {
		return err
	}
	if target == uuid {
		return nil
	}
	if strings.Contains(target, "/") {
		e.log.Warn("machine name link skipped: a machine link has that name", "machine", uuid, "unit", name)
		return nil
	}
	if e.isRegistered(target) {
		// Another machine still registered here claims the name: keep
		// its link, or an operator restoring it would get our files.
		if e.names.first(name, uuid) {
			e.log.Warn("machine name link conflict: the name belongs to another registered machine, keeping its link",
				"machine", uuid, "unit", name, "owner", target)
		}
		return nil
	}
	return replaceSymlink(uuid, link)
}
