package daemon

import (
	"log/slog"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
)

// BackupVolumes are the configured volumes as the backup package takes
// them.
func BackupVolumes(vols []config.Volume) []backup.Volume {
	out := make([]backup.Volume, 0, len(vols))
	for _, v := range vols {
		out = append(out, backup.Volume{Name: v.Name, Path: v.Path, AcceptNew: v.AcceptNew, HighWaterPct: v.HighWaterPct,
			MaxUsagePct: v.MaxUsagePct, MaxInodeUsagePct: v.MaxInodeUsagePct})
	}
	return out
}

// CheckVolumes is backup.CheckVolumesLogged for the configured volumes:
// the volume check (with mark, a healthy volume gets its marker on first
// use), each unusable volume logged at ERROR; it returns the unusable ones.
func CheckVolumes(log *slog.Logger, varDir string, vols []config.Volume, mark bool) []backup.VolumeHealth {
	return backup.CheckVolumesLogged(log, varDir, BackupVolumes(vols), mark)
}
