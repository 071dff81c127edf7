package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultMaxUsagePct is the disk guard's default threshold, BackupPC's
// DfMaxUsagePct default.
const DefaultMaxUsagePct = 95

// VolumeFullError is the disk guard's refusal: the volume holding the
// machine is filled above its max_usage_pct, so no backup starts there.
// The agent sees its text.
type VolumeFullError struct {
	Volume  string
	UsedPct float64
	MaxPct  int
}

func (e *VolumeFullError) Error() string {
	return fmt.Sprintf("volume %s is %.1f%% full, above its limit of %d%% (max_usage_pct): no backup started", e.Volume, e.UsedPct, e.MaxPct)
}

// maxUsage returns the volume's guard threshold, 0 meaning def (or 95 if
// def is 0).
func (v Volume) maxUsage(def int) int {
	switch {
	case v.MaxUsagePct > 0:
		return v.MaxUsagePct
	case def > 0:
		return def
	}
	return DefaultMaxUsagePct
}

// over reports whether st is filled above v's guard threshold.
func (v Volume) over(st volumeStat) bool {
	return st.totalMiB > 0 && st.usedPct() > float64(v.MaxUsagePct)
}

// guard refuses a backup of an existing machine whose volume is filled
// above its threshold. It writes nothing. A machine not placed yet passes:
// placement only picks volumes below both thresholds.
func (e *Engine) guard(uuid string) error {
	dir, err := e.readMachineLink(uuid)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	vol := e.volumeOf(dir)
	st, err := e.stat(dir)
	if err != nil {
		return fmt.Errorf("volume %s: %w", vol.Name, err)
	}
	if vol.over(st) {
		return &VolumeFullError{Volume: vol.Name, UsedPct: st.usedPct(), MaxPct: vol.MaxUsagePct}
	}
	return nil
}

// volumeOf returns the configured volume whose path holds dir, or, for a
// machine directory outside every volume (moved by hand), a volume named
// after dir with the default threshold.
func (e *Engine) volumeOf(dir string) Volume {
	var best *Volume
	for i, v := range e.volumes {
		if dir != v.Path && !strings.HasPrefix(dir, v.Path+string(filepath.Separator)) {
			continue
		}
		if best == nil || len(v.Path) > len(best.Path) {
			best = &e.volumes[i]
		}
	}
	if best == nil {
		return Volume{Name: dir, Path: dir, MaxUsagePct: e.maxUsage}
	}
	return *best
}

// Usage returns the size of the filesystem holding path, the bytes
// available to unprivileged users (statvfs f_bavail), and its fill level
// as placement and the disk guard compute it.
func Usage(path string) (sizeBytes, freeBytes int64, usedPct float64, err error) {
	var sf unix.Statfs_t
	if err := unix.Statfs(path, &sf); err != nil {
		return 0, 0, 0, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	bs := blockSize(&sf)
	sizeBytes, freeBytes = int64(sf.Blocks)*bs, int64(sf.Bavail)*bs
	if sizeBytes > 0 {
		usedPct = (1 - float64(freeBytes)/float64(sizeBytes)) * 100
	}
	return sizeBytes, freeBytes, usedPct, nil
}
