package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// DefaultMaxUsagePct is the disk guard's default threshold, BackupPC's
// DfMaxUsagePct default.
const DefaultMaxUsagePct = 95

// DefaultMaxInodeUsagePct is the inode guard's default threshold,
// BackupPC's DfMaxInodeUsagePct default.
const DefaultMaxInodeUsagePct = 95

// VolumeFullError is the disk guard's refusal: the volume holding the
// machine is filled above its max_usage_pct, or has more of its inodes in
// use than its max_inode_usage_pct, so no backup starts there. The agent
// sees its text.
type VolumeFullError struct {
	Volume  string
	UsedPct float64
	MaxPct  int
	// Inodes is set when the inodes are above their threshold
	// (UsedPct and MaxPct are then of inodes).
	Inodes bool
}

func (e *VolumeFullError) Error() string {
	if e.Inodes {
		return fmt.Sprintf("volume %s: %.1f%% of inodes used, above its limit of %d%% (max_inode_usage_pct): no backup started", e.Volume, e.UsedPct, e.MaxPct)
	}
	return fmt.Sprintf("volume %s is %.1f%% full, above its limit of %d%% (max_usage_pct): no backup started", e.Volume, e.UsedPct, e.MaxPct)
}

// maxUsage returns the volume's guard threshold, 0 meaning def (or 95 if
// def is 0).
func (v Volume) maxUsage(def int) int {
	return firstSet(v.MaxUsagePct, def, DefaultMaxUsagePct)
}

// maxInodeUsage returns the volume's inode threshold, 0 meaning def (or
// 95 if def is 0).
func (v Volume) maxInodeUsage(def int) int {
	return firstSet(v.MaxInodeUsagePct, def, DefaultMaxInodeUsagePct)
}

// firstSet returns own if it is set (above 0), else def if set, else
// fallback.
func firstSet(own, def, fallback int) int {
	switch {
	case own > 0:
		return own
	case def > 0:
		return def
	}
	return fallback
}

// over reports whether st is filled above v's guard threshold.
func (v Volume) over(st volumeStat) bool {
	return st.size > 0 && st.usedPct() > float64(v.MaxUsagePct)
}

// overInodes reports whether st has more inodes in use than v's inode
// threshold (def where v has none).
func (v Volume) overInodes(st volumeStat, def int) bool {
	return st.inodes > 0 && st.inodeUsedPct() > float64(v.maxInodeUsage(def))
}

// checkVolume runs the volume check on one configured volume, marking it
// on first healthy use, and returns its *VolumeError or nil. A directory
// outside every volume (a machine moved by hand) is only checked for
// being there and writable.
func (e *Engine) checkVolume(v Volume) error {
	if !e.configured(v) {
		return checkVolume(v, knownVolumes{}).Err()
	}
	h := CheckVolumes(e.varDir, []Volume{v}, true)[0]
	if h.Marked {
		e.log.Info("volume marked", "volume", v.Name, "file", filepath.Join(v.Path, MarkerFile))
	}
	if h.MarkErr != nil {
		e.log.Warn("volume marker not written", "volume", v.Name, "err", h.MarkErr)
	}
	return h.Err()
}

func (e *Engine) configured(v Volume) bool {
	for _, c := range e.volumes {
		if c.Path == v.Path {
			return true
		}
	}
	return false
}

// guard refuses a backup of an existing machine whose volume is missing,
// not mounted or read-only, or filled above either threshold. It writes
// nothing but the volume's marker, on a healthy volume's first use. A
// machine not placed yet passes: placement only picks healthy volumes
// below every threshold.
func (e *Engine) guard(uuid string) error {
	dir, err := e.readMachineLink(uuid)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	vol := e.volumeOf(dir)
	if err := e.checkVolume(vol); err != nil {
		return err
	}
	st, err := e.stat(dir)
	if err != nil {
		return fmt.Errorf("volume %s: %w", vol.Name, err)
	}
	if vol.over(st) {
		return &VolumeFullError{Volume: vol.Name, UsedPct: st.usedPct(), MaxPct: vol.MaxUsagePct}
	}
	if vol.overInodes(st, e.maxInodeUsage) {
		return &VolumeFullError{Volume: vol.Name, UsedPct: st.inodeUsedPct(), MaxPct: vol.maxInodeUsage(e.maxInodeUsage), Inodes: true}
	}
	return nil
}

// volumeTrouble explains a failure on the volume holding dir: when the
// volume check or the guard's thresholds now fail (it went read-only or
// ran out of inodes while rsync ran), it returns that error with cause
// attached; otherwise cause as it is.
func (e *Engine) volumeTrouble(dir string, cause error) error {
	vol := e.volumeOf(dir)
	if err := e.checkVolume(vol); err != nil {
		var ve *VolumeError
		if errors.As(err, &ve) {
			ve.Cause = cause
			return ve
		}
		return cause
	}
	st, err := e.stat(dir)
	if err != nil {
		return cause
	}
	switch {
	case vol.overInodes(st, e.maxInodeUsage) || (st.inodes > 0 && st.inodesFree == 0):
		return &VolumeError{Volume: vol.Name, State: "out of inodes",
			Detail: fmt.Sprintf("%.1f%% of inodes used", st.inodeUsedPct()), Cause: cause}
	case st.avail == 0 && st.size > 0:
		return &VolumeError{Volume: vol.Name, State: "full", Detail: "no space available", Cause: cause}
	}
	return cause
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
		return Volume{Name: dir, Path: dir, MaxUsagePct: e.maxUsage, MaxInodeUsagePct: e.maxInodeUsage}
	}
	return *best
}

// Usage is a filesystem's space and inodes as df(1) and df -i show them.
type Usage struct {
	SizeBytes int64
	// UsedBytes are f_blocks − f_bfree; FreeBytes what an unprivileged
	// user may still write (f_bavail). Blocks reserved for root are in
	// neither.
	UsedBytes, FreeBytes int64
	// UsedPct is df's Use%: UsedBytes / (UsedBytes + FreeBytes), the
	// figure placement and the disk guard compare.
	UsedPct float64
	// Inodes and InodesFree are f_files and f_ffree (0 where the
	// filesystem does not count inodes); InodeUsedPct is df -i's IUse%.
	Inodes, InodesFree int64
	InodeUsedPct       float64
}

// DiskUsage returns the usage of the filesystem holding path, as
// placement and the disk guard compute it.
func DiskUsage(path string) (Usage, error) {
	st, err := statVolume(path)
	if err != nil {
		return Usage{}, err
	}
	return Usage{
		SizeBytes: st.size, UsedBytes: st.used, FreeBytes: st.avail, UsedPct: st.usedPct(),
		Inodes: st.inodes, InodesFree: st.inodesFree, InodeUsedPct: st.inodeUsedPct(),
	}, nil
}
