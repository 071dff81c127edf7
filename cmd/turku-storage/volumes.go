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

// checkVolumes runs the volume check and logs each unusable volume
// (daemon.CheckVolumes); it returns the unusable ones.
func checkVolumes(log *slog.Logger, varDir string, vols []config.Volume, mark bool) []backup.VolumeHealth {
	return daemon.CheckVolumes(log, varDir, vols, mark)
}
