package main

import (
	"log/slog"
	"path/filepath"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/monitor"
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

// checkVolumes runs the volume check (backup.CheckVolumes; with mark, a
// healthy volume gets its marker on first use) and logs each volume that
// is unusable at ERROR, naming what is wrong. It returns the unusable
// ones.
func checkVolumes(log *slog.Logger, varDir string, vols []config.Volume, mark bool) []backup.VolumeHealth {
	var bad []backup.VolumeHealth
	for _, h := range backup.CheckVolumes(varDir, backupVolumes(vols), mark) {
		if h.Marked {
			log.Info("volume marked", "volume", h.Volume, "file", filepath.Join(h.Path, backup.MarkerFile))
		}
		if h.MarkErr != nil {
			log.Warn("volume marker not written", "volume", h.Volume, "err", h.MarkErr)
		}
		if !h.OK() {
			log.Error("volume unusable", "volume", h.Volume, "state", h.State, "path", h.Path, "err", h.Err())
			bad = append(bad, h)
		}
	}
	return bad
}

// volumeUsage checks and measures every configured volume, writing
// nothing. A volume that is missing, not a directory or not mounted has
// no usage (its mount point's would mislead); a read-only one has.
func volumeUsage(varDir string, vols []config.Volume) []monitor.Volume {
	health := backup.CheckVolumes(varDir, backupVolumes(vols), false)
	out := make([]monitor.Volume, 0, len(vols))
	for i, v := range vols {
		h := health[i]
		u := monitor.Volume{Name: v.Name, Path: v.Path, AcceptNew: v.AcceptNew, HighWaterPct: v.HighWaterPct,
			MaxUsagePct: v.MaxUsagePct, MaxInodeUsagePct: v.MaxInodeUsagePct, State: h.State}
		if err := h.Err(); err != nil {
			u.Message = err.Error()
		}
		switch h.State {
		case backup.VolumeMissing, backup.VolumeNotDir, backup.VolumeNotMounted:
			u.Err = u.Message
			out = append(out, u)
			continue
		}
		du, err := backup.DiskUsage(v.Path)
		if err != nil {
			u.Err = err.Error()
		}
		u.SizeBytes, u.UsedBytes, u.FreeBytes, u.UsedPct = du.SizeBytes, du.UsedBytes, du.FreeBytes, du.UsedPct
		u.Inodes, u.InodesFree, u.InodeUsedPct = du.Inodes, du.InodesFree, du.InodeUsedPct
		out = append(out, u)
	}
	return out
}
