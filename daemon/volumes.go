package daemon

import (
	"log/slog"
	"path/filepath"

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

// CheckVolumes runs the volume check (backup.CheckVolumes; with mark, a
// healthy volume gets its marker on first use) and logs each volume that
// is unusable at ERROR, naming what is wrong. It returns the unusable
// ones.
func CheckVolumes(log *slog.Logger, varDir string, vols []config.Volume, mark bool) []backup.VolumeHealth {
	var bad []backup.VolumeHealth
	for _, h := range backup.CheckVolumes(varDir, BackupVolumes(vols), mark) {
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
