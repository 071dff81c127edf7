package main

import (
	"log/slog"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
)

// backupVolumes are the configured volumes as the backup package takes
// them (daemon.BackupVolumes).
func backupVolumes(vols []config.Volume) []backup.Volume { return daemon.BackupVolumes(vols) }

// checkVolumes is backup.CheckVolumesLogged for the configured volumes
// (with mark, a healthy volume gets its marker on first use).
func checkVolumes(log *slog.Logger, varDir string, vols []config.Volume, mark bool) []backup.VolumeHealth {
	return backup.CheckVolumesLogged(log, varDir, backupVolumes(vols), mark)
}
