package main

import (
	"log/slog"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
)

// backupVolumes are the configured volumes as the backup package takes
// them.
func backupVolumes(vols []config.Volume) []backup.Volume {
	out := make([]backup.Volume, 0, len(vols))
	for _, v := range vols {
		out = append(out, backup.Volume{Name: v.Name, Path: v.Path, AcceptNew: v.AcceptNew, HighWaterPct: v.HighWaterPct,
			MaxUsagePct: v.MaxUsagePct, MaxInodeUsagePct: v.MaxInodeUsagePct})
	}
	return out
}

// checkVolumes is backup.CheckVolumesLogged for the configured volumes
// (with mark, a healthy volume gets its marker on first use).
func checkVolumes(log *slog.Logger, varDir string, vols []config.Volume, mark bool) []backup.VolumeHealth {
	return backup.CheckVolumesLogged(log, varDir, backupVolumes(vols), mark)
}
