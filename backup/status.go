package backup

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/turku-backup/turku-storage/monitor"
)

// reportsDirName is the report spool under VAR_DIR.
const reportsDirName = "reports"

// queued reports whether a spool directory entry is a report waiting
// for the API: a regular *.json file, not a temporary one (unreadable
// reports are renamed *.bad).
func queued(ent os.DirEntry) bool {
	return ent.Type().IsRegular() && strings.HasSuffix(ent.Name(), ".json") && !strings.HasPrefix(ent.Name(), ".")
}

// SpooledReports counts the reports waiting in varDir's spool; an
// unreadable spool counts none.
func SpooledReports(varDir string) int {
	entries, err := os.ReadDir(filepath.Join(varDir, reportsDirName))
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if queued(e) {
			n++
		}
	}
	return n
}

// VolumeStatus checks and measures every volume for the live status,
// writing nothing. A volume that is missing, not a directory or not
// mounted has no usage (its mount point's would mislead); a read-only one
// has.
func VolumeStatus(varDir string, vols []Volume) []monitor.Volume {
	health := CheckVolumes(varDir, vols, false)
	out := make([]monitor.Volume, 0, len(vols))
	for i, v := range vols {
		h := health[i]
		u := monitor.Volume{Name: v.Name, Path: v.Path, AcceptNew: v.AcceptNew, HighWaterPct: v.HighWaterPct,
			MaxUsagePct: v.MaxUsagePct, MaxInodeUsagePct: v.MaxInodeUsagePct, State: h.State}
		if err := h.Err(); err != nil {
			u.Message = err.Error()
		}
		switch h.State {
		case VolumeMissing, VolumeNotDir, VolumeNotMounted:
			u.Err = u.Message
			out = append(out, u)
			continue
		}
		du, err := DiskUsage(v.Path)
		if err != nil {
			u.Err = err.Error()
		}
		u.SizeBytes, u.UsedBytes, u.FreeBytes, u.UsedPct = du.SizeBytes, du.UsedBytes, du.FreeBytes, du.UsedPct
		u.Inodes, u.InodesFree, u.InodeUsedPct = du.Inodes, du.InodesFree, du.InodeUsedPct
		out = append(out, u)
	}
	return out
}
