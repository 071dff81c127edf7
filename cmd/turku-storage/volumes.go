package main

import (
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
)

// backupVolumes are the configured volumes as the backup package takes
// them (daemon.BackupVolumes).
func backupVolumes(vols []config.Volume) []backup.Volume { return daemon.BackupVolumes(vols) }
