package main

import (
	"log/slog"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
)

// wiring is what send and receive build their machine index from: the
// daemon package's wiring of a command that works on the disk only.
type wiring struct {
	cfg *config.Config
	log *slog.Logger
}

func (w *wiring) backupOptions() backup.Options { return daemon.Offline(w.cfg, w.log).BackupOptions() }

// registeredMachines reads the key cache (daemon.RegisteredMachines), for
// backup.ResolveMachine.
func registeredMachines(cfg *config.Config) func() (map[string]apiclient.MachineInfo, error) {
	return daemon.RegisteredMachines(cfg)
}

// historyDir is where the attempt history lives (daemon.HistoryDir).
func historyDir(cfg *config.Config) string { return daemon.HistoryDir(cfg) }
